#!/usr/bin/env bash
# Build (or find in the cache) the test kernel. Prints its build directory.
# The cache key covers the source package version, the config fragment and
# the toolchain, so an unchanged kernel is never rebuilt.
. "$(dirname "$0")/lib.sh"
rvmx_path
frag=$RVMX_ROOT/tools/kernel.config

src_ver=$(dpkg-query -W -f='${Version}' linux-source-6.12 2>/dev/null) || die "linux-source-6.12 missing: run tools/setup.sh"
key=$( { echo "$src_ver"; cat "$frag"; rustc --version; bindgen --version; clang --version | head -1; } | sha256sum | cut -c1-16)
kdir=$RVMX_CACHE/linux-6.12-$key

if [ -f "$kdir/.rvmx-built" ]; then
	echo "$kdir"; exit 0
fi

t0=$(date +%s)
rm -rf "$kdir" "$kdir.tmp"
mkdir -p "$kdir.tmp"
say "unpacking linux-source-6.12 $src_ver"
tar -C "$kdir.tmp" --strip-components=1 -xf "$KSRC_TARBALL"
mv "$kdir.tmp" "$kdir"
cd "$kdir"
mk() { make -s ARCH=x86_64 LLVM=1 "$@"; }
mk rustavailable >&2 || die "Rust is not available to this kernel tree"
mk tinyconfig >/dev/null
ARCH=x86_64 scripts/kconfig/merge_config.sh -m .config "$frag" >/dev/null
mk olddefconfig >/dev/null

# Every option we asked for must have survived olddefconfig.
bad=0
while IFS= read -r line; do
	case "$line" in
	CONFIG_*=*) grep -qx "$line" .config || { echo "kernel config: $line did not survive" >&2; bad=1; } ;;
	"# CONFIG_"*" is not set") opt=${line#\# }; opt=${opt%% *}
		grep -q "^$opt=" .config && { echo "kernel config: $opt is still set" >&2; bad=1; } ;;
	esac
done < "$frag"
[ $bad = 0 ] || die "kernel config check failed (see above)"

say "building the test kernel in $kdir (about 5 minutes on 2 cores)"
# Progress: a line every 250 objects; errors and warnings as they come.
make ARCH=x86_64 LLVM=1 -j"$JOBS" bzImage modules 2>&1 | awk '
	/^  [A-Z]/ { if (++n % 250 == 0) printf "  ... %d objects built (%d s)\n", n, systime() - start > "/dev/stderr"; next }
	{ print > "/dev/stderr" }' start="$(date +%s)"
touch .rvmx-built
say "test kernel built in $(since "$t0") s"
# Keep the two newest kernel builds (each is a few GiB).
ls -dt "$RVMX_CACHE"/linux-6.12-*/ 2>/dev/null | tail -n +3 | xargs -r rm -rf
echo "$kdir"
