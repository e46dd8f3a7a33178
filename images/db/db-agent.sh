#!/usr/bin/env bash
# Answers one HTTP request on stdin with this node's state, for HAProxy's checks
# (writer: only the writable node passes) and the container healthcheck:
#   GET /alive     200 when mysqld answers
#   GET /writable  200 when mysqld answers and read_only is OFF (the primary)
#   GET /readable  200 when mysqld answers (any node can serve reads)
read -r _ path _
client=$(command -v mariadb || command -v mysql)
read_only=$(MYSQL_PWD=${MYSQL_ROOT_PASSWORD:-} timeout 2 "$client" --protocol=socket -uroot -N -B \
  -e 'SELECT @@global.read_only' 2>/dev/null)
case "$path" in
  /alive | /readable) [ -n "$read_only" ] ;;
  /writable) [ "$read_only" = 0 ] ;;
  *) false ;;
esac && status="200 OK" || status="503 Service Unavailable"
body="read_only=${read_only:-unreachable}"
printf 'HTTP/1.0 %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s\n' \
  "$status" "$((${#body} + 1))" "$body"
