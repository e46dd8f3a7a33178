# Sourced by the official entrypoint as its last first-run script (upstream profile): from
# here on the node's own config holds, read-only until labctl says it is the primary.
rm -f /etc/mysql/conf.d/zz-labctl-init.cnf
