#!/bin/sh
# ensure-deps.sh: make sure the cross compiler, QEMU and Debian's Python
# test packages are here. As root, install what is missing with apt-get
# (--no-install-recommends); otherwise say exactly what to install and fail.
# Quiet when everything is present. Used by `make check`, `make test`, `make bench`;
# `ensure-deps.sh gdb` (make gdb, make test) also wants gdb-multiarch.
set -u

PY=/usr/bin/python3
missing=""

want_cmd() { command -v "$1" >/dev/null 2>&1 || missing="$missing $2"; }
want_py()  { [ -x "$PY" ] && "$PY" -c "import $1" >/dev/null 2>&1 || missing="$missing $2"; }

want_cmd aarch64-linux-gnu-gcc gcc-aarch64-linux-gnu
want_cmd aarch64-linux-gnu-ld binutils-aarch64-linux-gnu
want_cmd qemu-system-aarch64 qemu-system-arm
[ -x "$PY" ] || missing="$missing python3"
want_py pytest python3-pytest
want_py pexpect python3-pexpect
want_py xdist python3-pytest-xdist
want_py jinja2 python3-jinja2          # grading reports (harness/grade.py)
# the rubric's TOML: tomllib from Python 3.11, else tomli (Ubuntu 22.04's 3.10)
[ -x "$PY" ] && "$PY" -c "import tomllib" >/dev/null 2>&1 || want_py tomli python3-tomli
want_cmd bwrap bubblewrap              # sandboxed student builds (harness/port.py)
want_cmd patch patch                   # the broken-kernel proofs
[ "${1:-}" = gdb ] && want_cmd gdb-multiarch gdb-multiarch   # make gdb and make test only

[ -z "$missing" ] && exit 0
# The same package can be named twice (python3 missing means all of them).
missing=$(printf '%s\n' $missing | sort -u | tr '\n' ' ')

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "ensure-deps: installing: $missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || exit 1
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing || exit 1
    exit 0
fi

echo "ensure-deps: missing: $missing" >&2
echo "Install them (Debian 12) with:" >&2
echo "    sudo apt-get install --no-install-recommends $missing" >&2
exit 1
