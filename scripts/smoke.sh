#!/usr/bin/env bash
# Smoke test of a deployed Enclose, after every deploy: the checks are in scripts/smoke.py (standard
# library only), run with the project's .venv when there is one, else any python3 (3.11+).
#
#   TOKEN=<bearer token> scripts/smoke.sh --url https://<app>.azurewebsites.net --mobile <your mobile> [--no-sms]
#
# One line per check (PASS, FAIL or SKIP); exit 1 if any check failed. `--help` lists the options.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python="$here/../.venv/bin/python"
[[ -x "$python" ]] || python="$(command -v python3 || true)"
if [[ -z "$python" ]]; then
  echo "smoke.sh: Python 3.11 or later is needed (python3 was not found)" >&2
  exit 2
fi
exec "$python" "$here/smoke.py" "$@"
