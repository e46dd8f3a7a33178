#!/usr/bin/env bash
# This node's health, for HAProxy's checks (writer: only the writable node passes) and the
# container healthcheck:
#   GET /alive     200 when mysqld answers
#   GET /writable  200 when mysqld answers and read_only is OFF (the primary)
#   GET /readable  200 when mysqld answers (any node can serve reads)
#
#   db-agent.sh poll    keep STATE_FILE current: one long-lived client asks mysqld every
#                       POLL_S seconds (a client per check cost a third of a core per lab),
#                       over the socket, or over TCP with LABCTL_AGENT_PROTOCOL=tcp
#   db-agent.sh         answer one HTTP request on stdin from STATE_FILE (socat runs this)
STATE_FILE=/run/labctl-agent/state
POLL_S=0.05
STALE_S=2

# STATE_FILE holds "<read_only: 0, 1 or x> <epoch seconds>", rewritten in place.
write_state() {
  printf '%s %s\n' "$1" "$EPOCHSECONDS" 1<>"$STATE_FILE"
}

poll() {
  local client tick answer where=(--protocol=socket)
  # A client that exits at once (the server still starting) leaves a broken pipe: without
  # this the next printf's SIGPIPE ends the poller for good (one try in eight, measured) and
  # the node never turns healthy.
  trap '' PIPE
  client=$(command -v mariadb || command -v mysql)
  if [ "${LABCTL_AGENT_PROTOCOL:-socket}" = tcp ]; then
    where=(--protocol=tcp -h127.0.0.1 -P3306)
  fi
  mkdir -p "${STATE_FILE%/*}"
  write_state x
  exec {tick}<> <(:)  # read -t on a pipe nobody writes to: a sleep without a process
  while true; do
    coproc SQL { MYSQL_PWD=${MYSQL_ROOT_PASSWORD:-} exec "$client" "${where[@]}" -uroot -N -B \
      --unbuffered 2>&1; }
    while printf 'SELECT @@global.read_only;\n' >&"${SQL[1]}" 2>/dev/null \
        && read -r -t 2 answer <&"${SQL[0]}" && [[ $answer == [01] ]]; do
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
  local path read_only at status body
  read -r _ path _
  read -r read_only at < "$STATE_FILE" 2>/dev/null
  if [[ $read_only != [01] ]] || ((EPOCHSECONDS - ${at:-0} > STALE_S)); then
    read_only=""
  fi
  case "$path" in
    /alive | /readable) [ -n "$read_only" ] ;;
    /writable) [ "$read_only" = 0 ] ;;
    *) false ;;
  esac && status="200 OK" || status="503 Service Unavailable"
  body="read_only=${read_only:-unreachable}"
  printf 'HTTP/1.0 %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s\n' \
    "$status" "$((${#body} + 1))" "$body"
}

if [ "${1:-}" = poll ]; then
  poll
else
  serve
fi
