#!/bin/sh
# One load balancer node: keepalived claims or releases the floating address, HAProxy serves
# on every node. Killing the container kills both, which is the failure the lab shows; a
# clean stop (TERM) lets keepalived hand the address over at once (priority 0 advert).
set -e
keepalived --dont-fork --log-console --vrrp -f /etc/keepalived/keepalived.conf &
keepalived_pid=$!
haproxy -W -db -f /usr/local/etc/haproxy/haproxy.cfg &
haproxy_pid=$!
trap 'kill -TERM $keepalived_pid $haproxy_pid 2>/dev/null' TERM INT
# `labctl up` with a changed config: keepalived rereads its file on HUP, HAProxy's master on USR2.
trap 'kill -HUP $keepalived_pid; kill -USR2 $haproxy_pid' HUP
# Either one ending ends the node: a node without HAProxy must not keep the address.
while kill -0 $keepalived_pid 2>/dev/null && kill -0 $haproxy_pid 2>/dev/null; do sleep 0.2; done
kill -TERM $keepalived_pid $haproxy_pid 2>/dev/null || true
wait
