#!/usr/bin/env bash
# The official mysql/mariadb images' contract, for the local profile: MYSQL_ROOT_PASSWORD
# (or MARIADB_ROOT_PASSWORD), MYSQL_DATABASE, MYSQL_USER/MYSQL_PASSWORD, first-run scripts
# from /docker-entrypoint-initdb.d, config from /etc/mysql/conf.d, datadir /var/lib/mysql.
set -euo pipefail
server=${1:-mysqld}
shift || true
datadir=/var/lib/mysql
root_password=${MYSQL_ROOT_PASSWORD:-${MARIADB_ROOT_PASSWORD:-}}
client=$(command -v mariadb || command -v mysql)

write_config() {
  mkdir -p /etc/mysql/conf.d
  cat > /etc/mysql/labctl-base.cnf <<CNF
[mysqld]
user=mysql
datadir=$datadir
bind-address=0.0.0.0
port=3306
socket=/run/mysqld/mysqld.sock
skip-name-resolve
!includedir /etc/mysql/conf.d/
[client]
socket=/run/mysqld/mysqld.sock
CNF
  mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld "$datadir"
}

initialize() {
  if [ "$server" = "mariadbd" ]; then
    mariadb-install-db --defaults-file=/etc/mysql/labctl-base.cnf --auth-root-authentication-method=normal \
      --skip-test-db >/dev/null
  else
    mysqld --defaults-file=/etc/mysql/labctl-base.cnf --initialize-insecure
  fi
  # A lab's config may start every node read-only; the first-run users still need writing.
  "$server" --defaults-file=/etc/mysql/labctl-base.cnf --skip-networking --read-only=0 --loose-super-read-only=0 \
    --loose-event-scheduler=OFF &
  local pid=$!
  for _ in $(seq 1 60); do
    "$client" --protocol=socket -uroot -e 'SELECT 1' >/dev/null 2>&1 && break
    sleep 0.5
  done
  {
    # mariadb-install-db also makes password-less root users for these hosts; they would win over root@'%'.
    echo "DROP USER IF EXISTS 'root'@'127.0.0.1', 'root'@'::1', 'root'@'$(hostname)';"
    echo "CREATE USER IF NOT EXISTS 'root'@'%' IDENTIFIED BY '${root_password}';"
    echo "GRANT ALL PRIVILEGES ON *.* TO 'root'@'%' WITH GRANT OPTION;"
    echo "ALTER USER 'root'@'localhost' IDENTIFIED BY '${root_password}';"
    [ -n "${MYSQL_DATABASE:-}" ] && echo "CREATE DATABASE IF NOT EXISTS \`${MYSQL_DATABASE}\`;"
    if [ -n "${MYSQL_USER:-}" ]; then
      echo "CREATE USER IF NOT EXISTS '${MYSQL_USER}'@'%' IDENTIFIED BY '${MYSQL_PASSWORD:-}';"
      [ -n "${MYSQL_DATABASE:-}" ] && echo "GRANT ALL PRIVILEGES ON \`${MYSQL_DATABASE}\`.* TO '${MYSQL_USER}'@'%';"
    fi
    echo "FLUSH PRIVILEGES;"
  } | "$client" --protocol=socket -uroot
  for script in /docker-entrypoint-initdb.d/*; do
    case "$script" in
      *.sql) "$client" --protocol=socket -uroot -p"${root_password}" ${MYSQL_DATABASE:+"$MYSQL_DATABASE"} < "$script" ;;
      *.sh) bash "$script" ;;
    esac
  done
  kill "$pid"
  wait "$pid" || true
}

# The health agent answers HAProxy's and Docker's checks on :9200 from the state its poller
# keeps (see db-agent.sh).
start_agent() {
  if command -v socat >/dev/null && [ -f /usr/local/bin/db-agent.sh ]; then
    bash /usr/local/bin/db-agent.sh poll &
    # Every check that hangs up early makes socat log a reset; those lines would push the
    # server's own out of the log tail that a failed `labctl up` shows.
    socat -T 5 TCP-LISTEN:9200,fork,reuseaddr SYSTEM:"bash --noprofile --norc /usr/local/bin/db-agent.sh" 2>/dev/null &
  fi
}

if [ "$server" = "mysqld" ] || [ "$server" = "mariadbd" ]; then
  write_config
  if [ ! -d "$datadir/mysql" ]; then
    if [ -z "$root_password" ] && [ -z "${MYSQL_ALLOW_EMPTY_PASSWORD:-}" ]; then
      echo "error: set MYSQL_ROOT_PASSWORD (or MYSQL_ALLOW_EMPTY_PASSWORD=1)" >&2
      exit 1
    fi
    initialize
  fi
  start_agent
  exec "$server" --defaults-file=/etc/mysql/labctl-base.cnf "$@"
fi
exec "$server" "$@"
