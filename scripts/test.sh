#!/usr/bin/env bash
# The whole test suite on a fresh Debian machine: sets the machine up, then runs unit
# and integration tests (integration tests stand up real labs on the real Docker engine).
# Usage: scripts/test.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-host.sh
export LABCTL_REQUIRE_DOCKER=1
exec .venv/bin/pytest tests "$@"
