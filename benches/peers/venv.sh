# Sourced by the bench scripts: creates or updates the peer pipeline's venv
# (benches/peers/.venv, from benches/peers/requirements.txt) and sets $py to its python.
venv=benches/peers/.venv
req=benches/peers/requirements.txt
if [ ! -x "$venv/bin/python" ]; then
  echo "creating $venv" >&2
  python3 -m venv "$venv"
fi
if [ ! -f "$venv/.installed" ] || [ "$req" -nt "$venv/.installed" ]; then
  echo "installing $req into $venv" >&2
  "$venv/bin/pip" install --quiet -r "$req"
  touch "$venv/.installed"
fi
py=$venv/bin/python
