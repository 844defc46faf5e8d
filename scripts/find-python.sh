#!/usr/bin/env bash
# Prints the path of a Python X.Y interpreter, or stops with one line saying how to get it.
#
#   scripts/find-python.sh 3.9
#
# The local stack runs the Glue job on Python 3.9 and the Lambdas on Python 3.12, as AWS does,
# so both must be on this machine: pyenv's versions, uv's managed Pythons, or pythonX.Y on PATH.
set -uo pipefail
version="${1:?usage: find-python.sh X.Y}"

runs() { [ -n "$1" ] && "$1" -c 'import sys' >/dev/null 2>&1; }

for candidate in $(ls -d "${PYENV_ROOT:-$HOME/.pyenv}/versions/$version".*/bin/python 2>/dev/null | sort -V -r); do
  runs "$candidate" && { echo "$candidate"; exit 0; }
done
if command -v uv >/dev/null 2>&1; then
  candidate="$(uv python find "$version" 2>/dev/null)"
  runs "$candidate" && { echo "$candidate"; exit 0; }
fi
candidate="$(command -v "python$version" 2>/dev/null)"
runs "$candidate" && { echo "$candidate"; exit 0; }

echo "Python $version not found: install it with \`pyenv install $version\` or \`uv python install $version\`" >&2
exit 1
