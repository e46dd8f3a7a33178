#!/usr/bin/env bash
# Installs Docker Compose v2 as a CLI plugin from Debian trixie's docker-compose
# package, without touching the host's apt sources (bookworm's own package is
# the retired v1). Usage: install-compose-v2.sh [PLUGIN_DIR]
set -euo pipefail

plugin_dir=${1:-/usr/local/lib/docker/cli-plugins}
if docker compose version 2>/dev/null | grep -qE 'version v?2\.'; then
  exit 0
fi

mirror=$(bash "$(dirname "$0")/debian-mirror.sh")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial" "$work/archives/partial"
echo "deb $mirror trixie main" > "$work/sources.list"
apt_opts=(-o "Dir::Etc::SourceList=$work/sources.list" -o "Dir::Etc::SourceParts=/dev/null"
  -o "Dir::State::Lists=$work/lists" -o "Dir::Cache::Archives=$work/archives"
  -o "Dir::Cache::pkgcache=" -o "Dir::Cache::srcpkgcache=")
apt-get "${apt_opts[@]}" update -qq
(cd "$work" && apt-get "${apt_opts[@]}" download docker-compose -qq)
dpkg -x "$work"/docker-compose_*.deb "$work/root"
mkdir -p "$plugin_dir"
install -m 0755 "$work/root/usr/libexec/docker/cli-plugins/docker-compose" "$plugin_dir/docker-compose"
docker compose version
