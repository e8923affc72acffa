#!/bin/sh
# Module code statistics: Rust lines in pure files (no `kernel` crate, no
# unsafe: the ones hosttest/ compiles) and in kernel-bound files, and the
# unsafe sites (unsafe blocks, fns, impls and traits; comments excluded)
# per file. Files named in $NAMED are the places unsafe may live.
cd "$(dirname "$0")/.." || exit 1
NAMED='^\./(vmx/insn\.rs|vmx/run\.rs|kapi/.*|ept/pages\.rs)$'
files=$(find . -name '*.rs' -not -path './gen/*' -not -path './clients/*' \
	-not -path './hosttest/*' -not -path './target/*' -not -path './build/*' | sort)
pure=0 kern=0
for f in $files; do
	n=$(wc -l < "$f")
	if sed 's://.*$::' "$f" | grep -qE '\bkernel\b|\bunsafe\b'; then kern=$((kern + n)); else pure=$((pure + n)); fi
done
echo "lines: pure $pure, kernel-bound $kern"
echo "unsafe sites (file: count):"
total=0 outside=0
for f in $files; do
	n=$(sed 's://.*$::' "$f" | grep -oE '\bunsafe\b' | wc -l)
	[ "$n" -gt 0 ] || continue
	total=$((total + n))
	if echo "$f" | grep -qE "$NAMED"; then tag=""; else tag="  <- outside the named places"; outside=$((outside + n)); fi
	echo "  $f: $n$tag"
done
echo "unsafe sites: $total, outside vmx/insn.rs, vmx/run.rs (the stub's caller), kapi/ and ept/pages.rs: $outside"
