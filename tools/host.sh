# The emulated test host: build, pack into an initramfs and ISO, boot in
# Bochs, read the results from the serial console. Sourced by tools/rvmx.

BUILD=$RVMX_ROOT/build
BOOT_TIMEOUT=${BOOT_TIMEOUT:-600}

# Sets KDIR; builds the kernel (cached), rvmx.ko and the selftests.
# build_module KDIR SRCDIR LOG: rvmx.ko from SRCDIR against KDIR. Fails,
# showing what went wrong, on an error or on any warning: objtool and rustc
# warnings are errors for us (the stub must be objtool-clean).
build_module() {
	if ! make -C "$1" M="$2" LLVM=1 -j"$JOBS" modules >"$3" 2>&1; then
		grep -iE 'warning|objtool|error' "$3" | head -40 >&2
		return 1
	fi
	! grep -iE 'warning|objtool' "$3" >&2
}

build_all() {
	local t0
	"$RVMX_ROOT/tools/setup.sh"
	rvmx_path
	KDIR=$("$RVMX_ROOT/tools/kernel.sh")
	t0=$(date +%s)
	say "building rvmx.ko"
	mkdir -p "$BUILD"
	build_module "$KDIR" "$RVMX_ROOT" "$BUILD/module-build.log" \
		|| die "module build failed or printed warnings (full log: $BUILD/module-build.log)"
	say "rvmx.ko built in $(since "$t0") s"
	make -s -C "$RVMX_ROOT/selftests" KSRC="$KDIR" OUT="$BUILD/bin" >&2 \
		|| die "selftests build failed"
	make -s -C "$RVMX_ROOT/clients/c" OUT="$BUILD/clients" >&2 || die "C clients build failed"
	cp "$BUILD/clients/rvmx_info" "$BUILD/clients/rvmx_hello" "$BUILD/bin/"
	make -s -C "$RVMX_ROOT/bench" OUT="$BUILD/bin" >&2 || die "benchmark build failed"
	build_rust_in_vm_tests
}

# Builds rvmx.ko, in a copy of the tree, against kernel flavour $1 (see
# tools/kernel-$1.config); any warning (objtool's above all) fails it.
# Appends a PASS/FAIL line for tools/report.py to $BUILD/checks.txt.
check_flavour() {
	local f=$1 kdir out=$BUILD/flavour-$1 log=$BUILD/module-build-$1.log
	if ! kdir=$("$RVMX_ROOT/tools/kernel.sh" "$f"); then
		echo "FAIL flavour-$f: the kernel did not build" >> "$BUILD/checks.txt"; return
	fi
	rm -rf "$out"; mkdir -p "$out"
	rsync -a --exclude /build --exclude /target --exclude /gen --exclude '*.o' --exclude '*.ko' \
		--exclude '.*.cmd' --exclude '*.mod*' --exclude .git "$RVMX_ROOT/" "$out/"
	if build_module "$kdir" "$out" "$log"; then
		echo "PASS flavour-$f/rvmx.ko builds with no warning (objtool$(grep -o 'objtool/objtool[^;]*' "$out/.rvmx.o.cmd" | grep -o -- ' --[a-z]*' | sort -u | tr -d '\n'))" >> "$BUILD/checks.txt"
		# The entry/exit stub's speculation defences, as built for this kernel.
		python3 "$RVMX_ROOT/tools/check-stub.py" "$out/rvmx.ko" > "$out/stub-check.txt" 2>&1 ||
			grep -q '^FAIL' "$out/stub-check.txt" || echo "FAIL stub: tools/check-stub.py did not run (see $out/stub-check.txt)" >> "$out/stub-check.txt"
		sed "s#^\(PASS\|FAIL\) #\1 flavour-$f/#" "$out/stub-check.txt" | grep -E '^(PASS|FAIL) ' >> "$BUILD/checks.txt"
	else
		echo "FAIL flavour-$f: see $log" >> "$BUILD/checks.txt"
	fi
}

# The Rust client's tests that need /dev/rvmx, as a static binary for the
# emulated host (bin/rust_client_test).
build_rust_in_vm_tests() {
	local exe
	exe=$(cd "$RVMX_ROOT" && RUSTFLAGS="-C target-feature=+crt-static" \
		cargo test -q -p rvmx --test in_vm --no-run --release --target x86_64-unknown-linux-gnu \
		--target-dir "$BUILD/rust-static" --message-format=json 2>/dev/null |
		python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m.get("executable"): print(m["executable"])') \
		|| die "Rust client build failed"
	[ -x "$exe" ] || die "Rust client test binary not found"
	cp "$exe" "$BUILD/bin/rust_client_test"
}

gen_init_cpio() {
	local bin=$RVMX_CACHE/bin/gen_init_cpio
	if [ ! -x "$bin" ]; then
		mkdir -p "$(dirname "$bin")"
		cc -O2 -o "$bin" "$KDIR/usr/gen_init_cpio.c"
	fi
	"$bin" "$@"
}

# make_iso NAME RUNLIST: an ISO whose /init runs each "name command" line of
# RUNLIST (commands run in /tests) and then powers off.
make_iso() {
	local name=$1 runlist=$2 dir=$BUILD/boot/$1
	rm -rf "$dir"; mkdir -p "$dir/iso/isolinux"
	cp "$runlist" "$dir/run"
	cp "$RVMX_ROOT/tools/init.sh" "$dir/init"
	{
		for d in /dev /proc /sys /tmp /bin /sbin /usr /usr/bin /usr/sbin /etc /modules /tests /root; do
			echo "dir $d 0755 0 0"
		done
		echo "nod /dev/console 0600 0 0 c 5 1"
		echo "file /bin/busybox /bin/busybox 0755 0 0"
		echo "slink /bin/sh busybox 0777 0 0"
		echo "file /init $dir/init 0755 0 0"
		echo "file /etc/rvmx-run $dir/run 0644 0 0"
		echo "file /modules/rvmx.ko ${MODULE_KO:-$RVMX_ROOT/rvmx.ko} 0644 0 0"
		echo "file /modules/irqbypass.ko $KDIR/virt/lib/irqbypass.ko 0644 0 0"
		echo "file /modules/kvm.ko $KDIR/arch/x86/kvm/kvm.ko 0644 0 0"
		echo "file /modules/kvm-intel.ko $KDIR/arch/x86/kvm/kvm-intel.ko 0644 0 0"
		for t in "$BUILD"/bin/*; do
			echo "file /tests/$(basename "$t") $t 0755 0 0"
		done
	} > "$dir/cpio.list"
	gen_init_cpio "$dir/cpio.list" > "$dir/iso/initrd.img"
	cp "$KDIR/arch/x86/boot/bzImage" "$dir/iso/bzImage"
	cp /usr/lib/ISOLINUX/isolinux.bin /usr/lib/syslinux/modules/bios/ldlinux.c32 "$dir/iso/isolinux/"
	cat > "$dir/iso/isolinux/isolinux.cfg" <<-CFG
	SERIAL 0 115200
	PROMPT 0
	TIMEOUT 0
	DEFAULT rvmx
	LABEL rvmx
	  KERNEL /bzImage
	  APPEND initrd=/initrd.img console=ttyS0,115200 earlyprintk=serial,ttyS0,115200 ${MITIGATIONS-mitigations=off} panic=0 ${KERNEL_ARGS:-}
	CFG
	genisoimage -quiet -o "$dir/boot.iso" -b isolinux/isolinux.bin -c isolinux/boot.cat \
		-no-emul-boot -boot-load-size 4 -boot-info-table -J -R "$dir/iso" 2>/dev/null
}

# bochsrc NAME CPUS MODEL [SERIAL-LINE]
bochsrc() {
	local dir=$BUILD/boot/$1
	cat > "$dir/bochsrc" <<-RC
	megs: 512
	cpu: model=$3, count=$2, ips=10000000, reset_on_triple_fault=0
	romimage: file=/usr/share/bochs/BIOS-bochs-latest
	vgaromimage: file=/usr/share/bochs/VGABIOS-lgpl-latest
	pci: enabled=1, chipset=i440fx
	ata0-master: type=cdrom, path=$dir/boot.iso, status=inserted
	boot: cdrom
	${4:-com1: enabled=1, mode=file, dev=$dir/serial.log}
	clock: sync=none
	mouse: enabled=0
	speaker: enabled=0
	sound: waveoutdrv=dummy, waveindrv=dummy, midioutdrv=dummy
	log: $dir/bochs.log
	panic: action=fatal
	display_library: rfb, options="timeout=0"
	${BOCHS_EXTRA:-}
	RC
	printf '%b\n' "${BOCHS_RC:-c}" > "$dir/bochs.rc"
}

# The prefix that runs a command in an empty network namespace (Bochs's rfb
# display listens on TCP: nothing may reach it).
no_network() {
	if [ "$(id -u)" = 0 ]; then echo "unshare -n"; else echo "unshare -rn"; fi
}

# Runs Bochs for NAME with no network (the rfb display listens on TCP),
# until it powers off, the kernel panics, or BOOT_TIMEOUT passes.
boot() {
	local name=$1 cpus=$2 model=$3 runlist=$4 dir=$BUILD/boot/$1 pid t0 net
	make_iso "$name" "$runlist"
	bochsrc "$name" "$cpus" "$model"
	: > "$dir/serial.log"
	net=$(no_network)
	t0=$(date +%s)
	say "booting the emulated host '$name' ($model, $cpus CPU)"
	$net bochs -q -f "$dir/bochsrc" -rc "$dir/bochs.rc" </dev/null >"$dir/bochs.out" 2>&1 &
	pid=$!
	while kill -0 $pid 2>/dev/null; do
		if grep -qE 'Kernel panic|RVMX-POWEROFF' "$dir/serial.log" 2>/dev/null; then
			sleep 1; break
		fi
		if [ "$(since "$t0")" -ge "$BOOT_TIMEOUT" ]; then
			echo "RVMX-TIMEOUT after $BOOT_TIMEOUT s" >> "$dir/serial.log"; break
		fi
		sleep 0.5
	done
	kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true
	# `unshare` may leave Bochs behind it; make sure nothing of this run lives on.
	pkill -f "bochs -q -f $dir/bochsrc" 2>/dev/null || true
	say "'$name' ran $(since "$t0") s"
}

demo() {
	build_all
	local list=$BUILD/demo.run
	cat > "$list" <<-'RUN'
	demo insmod /modules/rvmx.ko && ls -l /dev/rvmx && dmesg | grep rvmx && rvmx_info && rvmx_hello
	RUN
	boot demo 1 corei7_skylake_x "$list"
	sed -n '/^RVMX-BEGIN demo/,/^RVMX-END demo/p' "$BUILD/boot/demo/serial.log" | grep -v '^RVMX-BEGIN'
	grep -q '^RVMX-END demo rc=0' "$BUILD/boot/demo/serial.log" || die "the demo failed (see $BUILD/boot/demo/serial.log)"
}

# Each emulated-host session: NAME CPUS CPU-MODEL, then the test programs
# it runs (with arguments), separated by '|'. health_test runs last in each.
# RVMX_SESSIONS (same format, ';' between sessions) runs only those.
test_sessions() {
	if [ -n "${RVMX_SESSIONS:-}" ]; then
		tr ';' '\n' <<< "$RVMX_SESSIONS"
		return
	fi
	cat <<-'S'
	vmx-1cpu 1 corei7_skylake_x module_test | vmxon_test -T cpu_hotplug | guest_test | stress_test | runloop_test -T cpu_offline_online_and_affinity_while_guest_spins | hoststate_test -t host_breakpoint_counts_right_after_run -t guest_syscall_uses_guest_msrs | fuzz_test | exception_test | vcpu_test | event_test | emul_test | entry_fail_test | rust_client_test --test-threads=1
	vmx-2cpu 2 corei7_skylake_x vmxon_test | stress_test -t two_vms_four_vcpus_migrating -t signal_interrupts_spinning_guest_if0 -t kill9_during_run -t create_destroy_1000 | guest_test -t memory_region_checks -t memory_pattern_and_mmio_exit | runloop_test
	pku 1 tigerlake hoststate_test
	novmx 1 p4_prescott_celeron_336 module_test -t load_matches_cpu
	no-unrestricted-guest 1 corei5_lynnfield_750 module_test -t load_matches_cpu
	S
}

run_tests() {
	local t0 name cpus model progs logs=()
	t0=$(date +%s)
	"$RVMX_ROOT/tools/setup.sh"
	rvmx_path
	mkdir -p "$BUILD"
	say "host tests: cargo test"
	(cd "$RVMX_ROOT" && cargo test --workspace 2>&1) | tee "$BUILD/cargo-test.log" || true
	if ! (build_all); then
		echo "the build failed: no emulated-host test could run"
		echo "0 passed, 1 failed"
		return 1
	fi
	KDIR=$("$RVMX_ROOT/tools/kernel.sh")
	: > "$BUILD/checks.txt"
	say "checking that rvmx.ko builds against the distribution-like kernel flavour"
	check_flavour distro
	while read -r name cpus model progs; do
		[ "$name" ] || continue
		: > "$BUILD/$name.run"
		tr '|' '\n' <<< "$progs" | while read -r prog args; do
			echo "$prog $prog $args" >> "$BUILD/$name.run"
		done
		echo "health health_test" >> "$BUILD/$name.run"
		boot "$name" "$cpus" "$model" "$BUILD/$name.run"
		logs+=("$name=$BUILD/boot/$name/serial.log")
	done < <(test_sessions)
	say "all tests took $(since "$t0") s"
	python3 "$RVMX_ROOT/tools/report.py" --cargo "$BUILD/cargo-test.log" --checks "$BUILD/checks.txt" "${logs[@]}"
}

# rvmx against kvm_intel from the same kernel tree: the distribution-like
# flavour (no debug checks, static keys; tools/kernel-distro.config), one
# emulated CPU (the TSC then counts emulated instructions: path lengths,
# repeatable), booted twice: with mitigations=off (the software path) and
# with the default mitigations (each hypervisor applies its defences). A
# third boot traces one OUT round trip of each (Bochs magic breakpoints)
# and counts the VMX instructions and WRMSRs in it.
bench() {
	build_all
	local kd out=$BUILD/flavour-distro log mit
	kd=$("$RVMX_ROOT/tools/kernel.sh" distro) || die "the distro kernel did not build"
	rm -rf "$out"; mkdir -p "$out"
	rsync -a --exclude /build --exclude /target --exclude /gen --exclude '*.o' --exclude '*.ko' \
		--exclude '.*.cmd' --exclude '*.mod*' --exclude .git "$RVMX_ROOT/" "$out/"
	build_module "$kd" "$out" "$BUILD/module-build-bench.log" || die "rvmx.ko does not build for the distro flavour"
	echo "bench rvmx_bench" > "$BUILD/bench.run"
	for mit in off default; do
		KDIR=$kd MODULE_KO=$out/rvmx.ko MITIGATIONS=$([ $mit = off ] && echo mitigations=off) \
			boot "bench-$mit" 1 corei7_skylake_x "$BUILD/bench.run"
		log=$BUILD/boot/bench-$mit/serial.log
		grep -q '^RVMX-END bench rc=0' "$log" || die "the benchmark failed (see $log)"
		echo
		echo "mitigations=$mit ($(grep -o 'L1TF: flushing[^)]*)' "$log" | head -1 || true))"
		printf '%-44s %12s %12s %8s\n' "TSC cycles (lower is better)" rvmx kvm_intel ratio
		sed -n 's/^bench \([^ ]*\) rvmx=\([0-9-]*\) kvm=\([0-9-]*\).*/\1 \2 \3/p' "$log" |
			while read -r what r k; do
				printf '%-44s %12s %12s %8s\n' "$what" "$r" "$k" "$(awk -v r="$r" -v k="$k" 'BEGIN { if (k > 0) printf "%.2f", r / k }')"
			done
	done
	echo "bench rvmx_bench --trace" > "$BUILD/bench-trace.run"
	for mit in off default; do
		KDIR=$kd MODULE_KO=$out/rvmx.ko MITIGATIONS=$([ $mit = off ] && echo mitigations=off) \
			BOCHS_EXTRA="magic_break: enabled=1" \
			BOCHS_RC='c\ntrace on\nc\ntrace off\nc\ntrace on\nc\ntrace off\nc' \
			boot "bench-trace-$mit" 1 corei7_skylake_x "$BUILD/bench-trace.run"
		echo
		echo "mitigations=$mit:"
		python3 "$RVMX_ROOT/tools/trace-count.py" "$BUILD/boot/bench-trace-$mit/bochs.out"
	done
}

shell() {
	build_all
	local list=$BUILD/shell.run dir=$BUILD/boot/shell
	echo "shell sh" > "$list"
	make_iso shell "$list"
	bochsrc shell "${CPUS:-1}" "${MODEL:-corei7_skylake_x}" "com1: enabled=1, mode=term, dev=$(tty)"
	say "interactive shell on this terminal; 'poweroff -f' ends it"
	$(no_network) bochs -q -f "$dir/bochsrc" -rc "$dir/bochs.rc" </dev/null
}
