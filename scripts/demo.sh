#!/usr/bin/env bash
# Install everything (scripts/setup.sh, idempotent) and run the demo: `ivr demo`, passing any arguments on.
# Then add a console user to the demo's database and print how to open the staff console on it.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
.venv/bin/ivr demo "$@"

# a fresh password each run: the demo database is local, but a fixed password would end up everywhere
password="demo-$(.venv/bin/python -c 'import secrets; print(secrets.token_hex(6))')"
printf '%s\n' "$password" | .venv/bin/ivr --config data/demo/config.yaml user add demo --role admin --password-stdin >/dev/null
port="$(.venv/bin/python -c 'from ivr.config import load_config; print(load_config().web.port)')"
echo
echo "Staff console on the demo's evening:"
echo "  .venv/bin/ivr --config data/demo/config.yaml web     then open http://127.0.0.1:${port}/"
echo "  login: demo   password: ${password}"
