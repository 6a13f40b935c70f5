#!/bin/sh
# Build the reference LTFS (mkltfs, ltfs, ltfsck and the `file` tape backend, the default here) from
# the vendored source into PREFIX: sh build.sh TARBALL SHA256 PREFIX. The tarball is checked before it
# is unpacked and the build happens in a scratch folder. The binaries keep PREFIX compiled in (their
# ltfs.conf and backends), so they are installed there directly, and PREFIX/.built, written last,
# says the install is whole.
set -eu
tarball=$1 sha256=$2 prefix=$3
here=$(cd "$(dirname "$0")" && pwd)
echo "$sha256  $tarball" | sha256sum --check --quiet
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
tar -xJf "$tarball" -C "$work" --strip-components=1
mkdir -p "$prefix"
prefix=$(cd "$prefix" && pwd)
rm -rf "${prefix:?}"/*
cd "$work"
export PATH="$here:$PATH"  # our icu-config
./autogen.sh >build.log 2>&1 || { tail -20 build.log; exit 1; }
./configure --prefix="$prefix" --disable-snmp --enable-icu-6x --enable-fast DEFAULT_TAPE=file \
  >>build.log 2>&1 || { tail -20 build.log; exit 1; }
make -j2 >>build.log 2>&1 || { tail -30 build.log; exit 1; }
make install >>build.log 2>&1 || { tail -20 build.log; exit 1; }
"$prefix/bin/ltfs" -V 2>&1 | head -1
touch "$prefix/.built"
