#!/usr/bin/env bash
# Build (or find in the cache) the test kernel. Prints its build directory.
# Usage: tools/kernel.sh [FLAVOUR]: tools/kernel.config, plus
# tools/kernel-FLAVOUR.config merged over it when a flavour is named.
# The cache key covers the source package version, the config fragment and
# the toolchain, so an unchanged kernel is never rebuilt.
. "$(dirname "$0")/lib.sh"
rvmx_path
frag=$RVMX_ROOT/tools/kernel.config
flavour=${1:-}
if [ -n "$flavour" ]; then
	[ -f "$RVMX_ROOT/tools/kernel-$flavour.config" ] || die "no flavour $flavour"
	cat "$frag" "$RVMX_ROOT/tools/kernel-$flavour.config" > "$RVMX_CACHE/kernel-$flavour.config.tmp"
	frag=$RVMX_CACHE/kernel-$flavour.config.tmp
fi

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

# Every option we asked for (the last word on it counts) must have
# survived olddefconfig.
python3 - "$frag" .config <<'PY' || die "kernel config check failed (see above)"
import re, sys
want = {}
for line in open(sys.argv[1]):
    m = re.match(r"(CONFIG_\w+)=(.*)$", line.strip()) or re.match(r"# (CONFIG_\w+) is not set$", line.strip())
    if m:
        want[m.group(1)] = m.group(2) if m.lastindex == 2 else None
have = {}
for line in open(sys.argv[2]):
    m = re.match(r"(CONFIG_\w+)=(.*)$", line.strip())
    if m:
        have[m.group(1)] = m.group(2)
bad = [f"{k}={v}" if v is not None else f"{k} unset" for k, v in want.items() if have.get(k) != v]
for b in bad:
    print(f"kernel config: wanted {b}, got {b.split('=')[0].split()[0]}={have.get(b.split('=')[0].split()[0])}", file=sys.stderr)
sys.exit(1 if bad else 0)
PY

say "building the test kernel in $kdir (about 5 minutes on 2 cores)"
# Progress: a line every 250 objects; errors and warnings as they come.
make ARCH=x86_64 LLVM=1 -j"$JOBS" bzImage modules 2>&1 | awk '
	/^  [A-Z]/ { if (++n % 250 == 0) printf "  ... %d objects built (%d s)\n", n, systime() - start > "/dev/stderr"; next }
	{ print > "/dev/stderr" }' start="$(date +%s)"
touch .rvmx-built
say "test kernel built in $(since "$t0") s"
# Keep the three newest kernel builds (each is a few GiB).
ls -dt "$RVMX_CACHE"/linux-6.12-*/ 2>/dev/null | tail -n +4 | xargs -r rm -rf
echo "$kdir"
