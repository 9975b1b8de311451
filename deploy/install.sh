#!/bin/sh
# Installs an ovms_rs wheel (and its dependencies) into a new virtual environment at PREFIX: the one
# install step of the container image (deploy/Dockerfile), and what tests/deploy/test_install.py runs.
#   deploy/install.sh WHEEL PREFIX        (PYTHON: the interpreter to base the venv on, default python3)
set -eu
if [ $# -ne 2 ]; then
    echo "usage: $0 WHEEL PREFIX" >&2
    exit 2
fi
wheel=$1
prefix=$2
"${PYTHON:-python3}" -m venv "$prefix"
"$prefix/bin/pip" install --quiet --disable-pip-version-check "$wheel"
# Fail here, not at the first request, if the extension does not load on this system.
"$prefix/bin/python" -c "import ovms_rs._native"
echo "installed $("$prefix/bin/python" -c 'import ovms_rs; print(ovms_rs.__file__)')"
