#!/usr/bin/env bash
# Fresh machine → the test suite (export extra + dev tools). Extra arguments go to pytest;
# without any, the slow tests (a full-size VideoMAE-Base export) are left out, as in CI.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh export,dev,bench,ray,serve,plot
# The server's page test drives Debian's Chromium through Playwright (Playwright's own browser
# download cannot work offline): install it when missing.
if ! command -v chromium >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "installing chromium (Debian) ..."
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } \
            >.venv/chromium-install.log 2>&1 || { cat .venv/chromium-install.log; exit 1; }
    else
        echo "no chromium and no root to install it: the page test will be skipped" >&2
    fi
fi
. .venv/bin/activate
ruff check runtime export tests benchmarks
if [ $# -eq 0 ]; then set -- -m "not slow"; fi
HF_HUB_OFFLINE=1 python -m pytest -q "$@"
