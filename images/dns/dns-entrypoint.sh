#!/bin/sh
# The rendered zone is mounted read-only; named serves a copy, so a drill can withdraw a
# record (edit the copy, SIGHUP named) and heal can put the rendered one back.
set -e
cp /etc/labctl-dns/db.zone /var/lib/bind/db.zone
chown bind:bind /var/lib/bind/db.zone
exec named -g -u bind -c /etc/labctl-dns/named.conf
