#!/usr/bin/env bash
# Rendered by labctl for lab db-group-replication: a Group Replication member's health on :9200,
# mounted over the image's db-agent.sh (the image's entrypoint starts it the same way):
#   GET /alive     200 when mysqld answers (the container healthcheck)
#   GET /writable  200 when this member is ONLINE, PRIMARY, writable (super_read_only OFF)
#                  and in a majority of its group's view: a primary cut off in a minority
#                  still calls itself ONLINE and PRIMARY, but can commit nothing
#   GET /readable  200 when it is ONLINE in a majority, whatever its role
#
#   gr-agent poll   keep STATE_FILE current: one long-lived client asks every POLL_S s
#   gr-agent        answer one HTTP request on stdin from STATE_FILE (socat runs this)

STATE_FILE=/run/labctl-agent/state
POLL_S=0.05
STALE_S=2
MEMBERS=performance_schema.replication_group_members
QUERY="SELECT CONCAT_WS(',', \
IFNULL((SELECT MEMBER_STATE FROM $MEMBERS WHERE MEMBER_ID = @@server_uuid), 'NONE'), \
IFNULL((SELECT MEMBER_ROLE FROM $MEMBERS WHERE MEMBER_ID = @@server_uuid), 'NONE'), \
(SELECT COUNT(*) FROM $MEMBERS WHERE MEMBER_STATE = 'ONLINE'), \
(SELECT COUNT(*) FROM $MEMBERS), @@global.super_read_only);"

# STATE_FILE holds "<state>,<role>,<online>,<members>,<super_read_only> <epoch seconds>" or "x <epoch>".
write_state() {
  printf '%s %s\n' "$1" "$EPOCHSECONDS" >"$STATE_FILE.new" && mv -f "$STATE_FILE.new" "$STATE_FILE"
}

poll() {
  local tick answer where=(--protocol=socket)
  # A client that exits at once (the server still starting) leaves a broken pipe: without
  # this the next printf's SIGPIPE ends the poller for good (one try in eight, measured) and
  # the node never turns healthy.
  trap '' PIPE
  if [ "${LABCTL_AGENT_PROTOCOL:-socket}" = tcp ]; then
    where=(--protocol=tcp -h127.0.0.1 -P3306)
  fi
  mkdir -p "${STATE_FILE%/*}"
  write_state x
  exec {tick}<> <(:)
  while true; do
    coproc SQL { MYSQL_PWD=${MYSQL_ROOT_PASSWORD:-} exec mysql "${where[@]}" -uroot -N -B \
      --unbuffered 2>&1; }
    while printf '%s\n' "$QUERY" >&"${SQL[1]}" 2>/dev/null \
        && read -r -t 2 answer <&"${SQL[0]}" && [[ $answer == *,*,*,*,* ]]; do
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
  local path state at status member role online count read_only majority=0
  read -r _ path _
  read -r state at < "$STATE_FILE" 2>/dev/null
  if [[ $state != *,*,*,*,* ]] || ((EPOCHSECONDS - ${at:-0} > STALE_S)); then
    state=""
  fi
  IFS=, read -r member role online count read_only <<<"$state"
  if [ -n "$state" ] && ((2 * online > count)); then
    majority=1
  fi
  case "$path" in
    /alive) [ -n "$state" ] ;;
    /writable) [ "$member,$role,$majority,$read_only" = "ONLINE,PRIMARY,1,0" ] ;;
    /readable) [ "$member,$majority" = "ONLINE,1" ] ;;
    *) false ;;
  esac && status="200 OK" || status="503 Service Unavailable"
  body="group=${state:-unreachable}"
  printf 'HTTP/1.0 %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s\n' \
    "$status" "$((${#body} + 1))" "$body" 2>/dev/null
}

if [ "${1:-}" = poll ]; then
  poll
else
  serve
fi
