#!/usr/bin/env bash
# Third-party material for the WinRM transport tests (tests/winrm_*.rs), fetched from PyPI and
# cached outside the repository; nothing here is committed.
#  - pypsrp 0.9.1's source distribution: its tests/tests_pypsrp/responses/*.yml are real WinRM
#    exchanges captured against Windows (MIT); our SOAP parser and builder are checked on them.
#  - a virtualenv with pywinrm 0.5.0, pypsrp 0.9.1 and pyspnego: independent WinRM clients and an
#    NTLM peer to run against our server and client.
# Idempotent: a second run reuses the cache. Prints the `export` lines for scripts/test.sh to eval;
# progress goes to stderr.
set -euo pipefail

cache="${LYNCDR_CACHE:-$HOME/.cache/lyncdr}/winrm"
mkdir -p "$cache"
python="${PYTHON:-python3}"

# 1. The captured exchanges.
responses="$cache/pypsrp-0.9.1/tests/tests_pypsrp/responses"
if [ ! -f "$responses/test_winrs_standard.yml" ]; then
  echo "winrm-fixtures: downloading the pypsrp 0.9.1 sdist" >&2
  dl="$cache/sdist"
  mkdir -p "$dl"
  "$python" -m pip download --quiet --no-deps --no-binary :all: -d "$dl" pypsrp==0.9.1 >&2
  tar -xzf "$dl"/pypsrp-0.9.1.tar.gz -C "$cache"
  test -f "$responses/test_winrs_standard.yml"
fi

# 2. The Python clients and the NTLM peer.
venv="$cache/venv"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import winrm, pypsrp, spnego' 2>/dev/null; then
  echo "winrm-fixtures: creating the Python virtualenv (pywinrm 0.5.0, pypsrp 0.9.1, pyspnego)" >&2
  rm -rf "$venv"
  "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check pywinrm==0.5.0 pypsrp==0.9.1 pyspnego >&2
  "$venv/bin/python" -c 'import winrm, pypsrp, spnego'
fi

echo "export LYNCDR_PYPSRP_RESPONSES='$responses'"
echo "export LYNCDR_WINRM_PYTHON='$venv/bin/python'"
