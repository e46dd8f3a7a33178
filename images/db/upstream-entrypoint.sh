#!/usr/bin/env bash
# The upstream profile's db nodes: the official image's own entrypoint, with labctl's health
# agent (db-agent.sh, port 9200) started beside it.
set -euo pipefail
INIT_OVERRIDE=/etc/mysql/conf.d/zz-labctl-init.cnf

# Every node's config starts it read-only, but the official entrypoint's first-run server
# must write the root user and the database. That server alone reads this override: the
# last first-run script (upstream-init-done.sh) removes it before the real server starts.
rm -f "$INIT_OVERRIDE"  # one a first run cut short left behind
if [ ! -d /var/lib/mysql/mysql ]; then
  printf '[mysqld]\nread_only = OFF\nloose_super_read_only = OFF\nevent_scheduler = OFF\n' > "$INIT_OVERRIDE"
  chown mysql:mysql "$INIT_OVERRIDE" 2>/dev/null || true
fi

# The agent asks over TCP, which the first-run server (started with --skip-networking) never
# answers: so no check passes before the real server is up.
export LABCTL_AGENT_PROTOCOL=tcp
bash /usr/local/bin/db-agent.sh poll &
socat -T 5 TCP-LISTEN:9200,fork,reuseaddr SYSTEM:"bash --noprofile --norc /usr/local/bin/db-agent.sh" &
exec bash /usr/local/bin/docker-entrypoint.sh "$@"
