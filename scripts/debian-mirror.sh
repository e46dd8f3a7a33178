#!/usr/bin/env bash
# Prints the Debian mirror URL this machine's apt already uses (never a hard-coded host
# when the machine has its own), for debootstrap and the trixie side-download.
set -uo pipefail
uri=$(apt-get indextargets --format '$(REPO_URI)' 2>/dev/null | grep -v -- '-security' | grep '/debian/\?$' | head -n1)
echo "${uri:-http://deb.debian.org/debian/}"
