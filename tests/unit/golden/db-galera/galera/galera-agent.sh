#!/usr/bin/env bash
# Rendered by labctl for lab db-galera: a Galera node's health on :9200, mounted over the
# image's db-agent.sh (the image's entrypoint starts it the same way):
#   GET /alive     200 when mariadbd answers (the container healthcheck)
#   GET /synced    200 when the node is Synced (wsrep_local_state 4), in the Primary component
#                  and wsrep_ready is ON: the only state in which it takes reads and writes
#   GET /writable, GET /readable   the same as /synced (HAProxy's usual paths)
#
#   galera-agent poll   keep STATE_FILE current: one long-lived client asks every POLL_S s
#   galera-agent        answer one HTTP request on stdin from STATE_FILE (socat runs this)

STATE_FILE=/run/labctl-agent/state
POLL_S=0.05
STALE_S=2
# The status table answers in a non-Primary component too, where queries on data fail.
QUERY="SELECT CONCAT_WS(',', MAX(IF(VARIABLE_NAME = 'WSREP_LOCAL_STATE', VARIABLE_VALUE, NULL)), \
MAX(IF(VARIABLE_NAME = 'WSREP_CLUSTER_STATUS', VARIABLE_VALUE, NULL)), \
MAX(IF(VARIABLE_NAME = 'WSREP_READY', VARIABLE_VALUE, NULL))) FROM information_schema.GLOBAL_STATUS \
WHERE VARIABLE_NAME IN ('WSREP_LOCAL_STATE', 'WSREP_CLUSTER_STATUS', 'WSREP_READY');"

# STATE_FILE holds "<local_state>,<cluster_status>,<ready> <epoch seconds>" or "x <epoch>".
write_state() {
  printf '%s %s\n' "$1" "$EPOCHSECONDS" >"$STATE_FILE.new" && mv -f "$STATE_FILE.new" "$STATE_FILE"
}

poll() {
  local client tick answer where=(--protocol=socket)
  # A client that exits at once (the server mid-SST) leaves a broken pipe: without this the
  # next printf's SIGPIPE would end the poller for good and the node would never be healthy.
  trap '' PIPE
  client=$(command -v mariadb || command -v mysql)
  if [ "${LABCTL_AGENT_PROTOCOL:-socket}" = tcp ]; then
    where=(--protocol=tcp -h127.0.0.1 -P3306)
  fi
  mkdir -p "${STATE_FILE%/*}"
  write_state x
  exec {tick}<> <(:)
  while true; do
    coproc SQL { MYSQL_PWD=${MYSQL_ROOT_PASSWORD:-} exec "$client" "${where[@]}" -uroot -N -B \
      --unbuffered 2>&1; }
    while printf '%s\n' "$QUERY" >&"${SQL[1]}" 2>/dev/null \
        && read -r -t 2 answer <&"${SQL[0]}" && [[ $answer == *,*,* ]]; do
      write_state "$answer"
      read -r -t "$POLL_S" -u "$tick"
    done
    write_state x
    kill "$SQL_PID" 2>/dev/null
    wait "$SQL_PID" 2>/dev/null
    read -r -t 0.2 -u "$tick"
  done
}

serve() {
  local path state at status
  read -r _ path _
  read -r state at < "$STATE_FILE" 2>/dev/null
  if [[ $state != *,*,* ]] || ((EPOCHSECONDS - ${at:-0} > STALE_S)); then
    state=""
  fi
  case "$path" in
    /alive) [ -n "$state" ] ;;
    /synced | /writable | /readable) [ "$state" = "4,Primary,ON" ] ;;
    *) false ;;
  esac && status="200 OK" || status="503 Service Unavailable"
  body="wsrep=${state:-unreachable}"
  printf 'HTTP/1.0 %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s\n' \
    "$status" "$((${#body} + 1))" "$body"
}

if [ "${1:-}" = poll ]; then
  poll
else
  serve
fi
