#!/usr/bin/env bash
# Fresh machine → the test suite (export extra + dev tools). Extra arguments go to pytest;
# without any, the slow tests (a full-size VideoMAE-Base export) are left out, as in CI.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh export,dev,bench,ray
. .venv/bin/activate
ruff check runtime export tests benchmarks
if [ $# -eq 0 ]; then set -- -m "not slow"; fi
HF_HUB_OFFLINE=1 python -m pytest -q "$@"
