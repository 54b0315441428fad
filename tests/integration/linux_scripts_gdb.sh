#!/bin/sh
# The kernel's own gdb scripts (scripts/gdb) for the dumped release, from Debian's linux-source
# tarball, with scripts/gdb/linux/constants.py generated the way `make scripts_gdb` does it
# (the C preprocessor over constants.py.in) but configured by the Debian kernel's own generated
# headers (linux-headers-RELEASE), so the constants are exactly those of the dumped kernel.
# Idempotent: the result is OUT/vmlinux-gdb.py + OUT/scripts/gdb, kept in the cache.
# usage: linux_scripts_gdb.sh /usr/src/linux-source-X.tar.xz RELEASE OUT
set -eu
tarball=$1 release=$2 out=$3
[ -f "$out/vmlinux-gdb.py" ] && exit 0
[ -f "$tarball" ] || { echo "linux_scripts_gdb: no linux-source tarball '$tarball' (apt-get install linux-source-6.1)" >&2; exit 1; }
hdr=/usr/src/linux-headers-$release
common=/usr/src/linux-headers-${release%-*}-common
[ -f "$hdr/include/generated/autoconf.h" ] && [ -d "$common/include/linux" ] || {
	echo "linux_scripts_gdb: no configured headers for $release in $hdr and $common (apt-get install linux-headers-$release)" >&2
	exit 1
}
work=$out.tmp
rm -rf "$work"
mkdir -p "$work"
top=$(tar -tf "$tarball" | head -1 | cut -d/ -f1)
tar -xf "$tarball" -C "$work" --strip-components=1 "$top/scripts/gdb"
gdbdir=$work/scripts/gdb/linux
# The include order and flags of the kernel's own c_flags for x86.
cpp -E -x c -P -nostdinc -D__KERNEL__ -DKBUILD_MODNAME='"constants"' \
	-I"$common/arch/x86/include" -I"$hdr/arch/x86/include/generated" \
	-I"$common/include" -I"$hdr/include" \
	-I"$common/arch/x86/include/uapi" -I"$hdr/arch/x86/include/generated/uapi" \
	-I"$common/include/uapi" -I"$hdr/include/generated/uapi" \
	-include "$common/include/linux/compiler-version.h" \
	-include "$common/include/linux/kconfig.h" \
	"$gdbdir/constants.py.in" > "$gdbdir/constants.py.tmp"
sed '1,/<!-- end-c-headers -->/d' "$gdbdir/constants.py.tmp" > "$gdbdir/constants.py"
rm "$gdbdir/constants.py.tmp"
# vmlinux-gdb.py adds <its own directory>/scripts/gdb to sys.path.
cp "$work/scripts/gdb/vmlinux-gdb.py" "$work/vmlinux-gdb.py"
rm -rf "$out"
mv "$work" "$out"
