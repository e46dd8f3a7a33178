#!/usr/bin/env bash
# Rendered by labctl for lab db-galera: the entrypoint of every node of galera.
# galera_new_cluster's rule: only the first node, and only on its first start, forms a new
# cluster (--wsrep-new-cluster); every other start joins the cluster named in
# wsrep_cluster_address. A node that was killed and comes back has its grastate.dat: it
# rejoins (IST from a donor's gcache, or SST) instead of forming a second cluster.
set -euo pipefail
# The provider is given here, not in labctl.cnf: the image's first-run server (which writes
# the root user) reads labctl.cnf too, and must stay a standalone server.
args=(--wsrep-provider=/usr/lib/galera/libgalera_smm.so)
if [ "${LABCTL_GALERA_BOOTSTRAP:-0}" = 1 ] && [ ! -e /var/lib/mysql/grastate.dat ]; then
  echo "labctl: first start of the first node: bootstrapping a new cluster" >&2
  args+=(--wsrep-new-cluster)
fi
# A node that was killed left seqno -1 in grastate.dat: without its position it would ask for a
# full SST. galera_recovery's way: read the position from InnoDB (--wsrep-recover) and start
# from it, so a donor sends only the writesets it missed (IST) while its gcache has them.
grastate=/var/lib/mysql/grastate.dat
if [ -e "$grastate" ] && grep -qE '^seqno:[[:space:]]+-1' "$grastate"; then
  defaults=()
  [ -f /etc/mysql/labctl-base.cnf ] && defaults=(--defaults-file=/etc/mysql/labctl-base.cnf)
  recovery=$(mktemp)
  chown mysql "$recovery" 2>/dev/null || true
  mariadbd "${defaults[@]}" --user=mysql "${args[@]}" --wsrep-recover --log-error="$recovery" || true
  position=$(sed -n 's/.*WSREP: Recovered position: *//p' "$recovery" | tail -n1)
  rm -f "$recovery"
  if [ -n "$position" ]; then
    echo "labctl: recovered position $position from InnoDB" >&2
    args+=(--wsrep-start-position="$position")
  fi
fi
entry=/usr/local/bin/upstream-entrypoint.sh
[ -f "$entry" ] || entry=/usr/local/bin/docker-entrypoint.sh
exec bash "$entry" mariadbd "${args[@]}" "$@"
