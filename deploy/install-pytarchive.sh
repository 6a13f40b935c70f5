#!/bin/sh
# Installs pytarchive system-wide, as the tape host needs it: the project in /opt/pytarchive with its
# own .venv made by the SYSTEM's python3 (not one under root's home, which members of the read-only
# group could not run), the client linked as /usr/local/bin/pytarchive, the systemd unit in
# /etc/systemd/system. Run as root from the checkout:  sudo sh deploy/install-pytarchive.sh
# Then write /etc/pytarchive/pytarchive.conf and `systemctl enable --now pytarchive`.
#
# PREFIX, BIN, UNITS and PYTHON move it elsewhere (the tests install into a scratch folder).
# Run again to upgrade: the files are replaced, the .venv is kept and brought up to date.
set -eu

PREFIX=${PREFIX:-/opt/pytarchive}
BIN=${BIN:-/usr/local/bin}
UNITS=${UNITS:-/etc/systemd/system}
PYTHON=${PYTHON:-/usr/bin/python3}
SOURCE=$(cd "$(dirname "$0")/.." && pwd)

if ! "$PYTHON" -c 'import sys, venv; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "install-pytarchive: $PYTHON must be Python 3.11 or later with the venv module (apt-get install python3-venv)" >&2
    exit 1
fi

umask 022  # everything readable by the read-only group's members: they run the client from here
mkdir -p "$PREFIX" "$BIN" "$UNITS"
# The client and the service need common/ and pytarchive/; nothing of the other tools or the stand-ins.
for part in common pytarchive pytarchive_client.py requirements.txt README.md deploy; do
    rm -rf "${PREFIX:?}/$part"
    cp -R "$SOURCE/$part" "$PREFIX/$part"
done
find "$PREFIX" -name __pycache__ -prune -exec rm -rf {} +
chmod -R a+rX "$PREFIX"

if [ ! -x "$PREFIX/.venv/bin/python" ]; then
    "$PYTHON" -m venv "$PREFIX/.venv"
fi
"$PREFIX/.venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$PREFIX/requirements.txt"
chmod -R a+rX "$PREFIX/.venv"

ln -sfn "$PREFIX/pytarchive_client.py" "$BIN/pytarchive"
sed "s#/opt/pytarchive#$PREFIX#g" "$SOURCE/deploy/pytarchive.service" > "$UNITS/pytarchive.service"
chmod 0644 "$UNITS/pytarchive.service"
echo "pytarchive installed in $PREFIX (Python $("$PREFIX/.venv/bin/python" -c 'import platform; print(platform.python_version())')); client: $BIN/pytarchive; unit: $UNITS/pytarchive.service"
