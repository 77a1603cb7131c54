#!/bin/sh
# Gradescope's setup.sh (docs/autograder.md): runs once, as root, when
# Gradescope builds the autograder's image from build/autograder.zip
# (unpacked in /autograder/source). Works on Gradescope's Ubuntu 22.04 base
# image and on Debian 12. It installs the suite's packages with apt, makes
# sure pytest is at least 7 (Ubuntu 22.04's python3-pytest is 6.2.5), builds
# the suite once and says whether student code will run in a jail.
#
# KT_SETUP_APT=0 skips apt (a machine that already has the packages: the
# self-test of the bundle).
set -eu
cd "$(dirname "$0")"

# Every name exists in Debian 12 (bookworm) and Ubuntu 22.04 (jammy).
PACKAGES="make patch gcc-aarch64-linux-gnu binutils-aarch64-linux-gnu qemu-system-arm bubblewrap
python3 python3-pip python3-pytest python3-pexpect python3-jinja2 python3-tomli"
PY=/usr/bin/python3

if [ "${KT_SETUP_APT:-1}" != 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $PACKAGES
fi

if ! "$PY" -c 'import sys, pytest; sys.exit(int(pytest.__version__.split(".")[0]) < 7)'; then
    echo "setup.sh: pytest is older than 7; installing pytest 7 with pip"
    "$PY" -m pip install --no-cache-dir 'pytest>=7,<8'
fi

make -s all PYTHON="$PY"
# The fixture images, so a copy of one is recognised as not the student's work.
[ ! -f fixtures/images/Makefile ] || make -s -C fixtures/images
"$PY" -m harness autograde --check
