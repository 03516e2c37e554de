#!/usr/bin/env bash
# Install everything (scripts/setup.sh, idempotent) and run the demo: `ivr demo`, passing any arguments on.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
exec .venv/bin/ivr demo "$@"
