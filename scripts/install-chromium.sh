#!/usr/bin/env bash
# Installs headless Chromium (Debian's `chromium` package) for the report's browser test
# (tests/integration/report.rs). No-op when it is already there or when not root on Debian.
set -euo pipefail
if command -v chromium >/dev/null || [ -n "${CHROMIUM:-}" ]; then
    exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y chromium >/dev/null 2>&1 || {
        apt-get update >/dev/null
        apt-get install -y chromium >/dev/null
    }
else
    echo "chromium is not installed; the report's browser test needs it (apt-get install chromium)" >&2
fi
