#!/usr/bin/env python3
"""Count test results: cargo test output, and the serial logs of emulated-host
sessions (TAP from kselftest_harness between RVMX-BEGIN/END markers).

A session that did not finish, a program that exited non-zero without
reporting a failed test, a plan with missing results, and a kernel log with a
warning, BUG, oops or panic are all failures. Ends with the line
`N passed, N failed[, N skipped]`; exits 1 if anything failed."""
import re
import sys

KERNEL_PROBLEMS = re.compile(
    r"WARNING:|BUG:|Oops|Kernel panic|Call Trace|general protection fault|UBSAN|refcount_t:")

# Warnings that Bochs's CPUID causes at every boot, whatever rvmx does
# (see ../shared/docs/emulation.md). Their whole "cut here" ... "end trace"
# block is ignored; anything else is a failure.
# Bochs's CPUID at boot: topology (parse_legacy), XSAVE sizes, and the
# tigerlake model's misordered XSAVE component offsets (setup_xstate_cache).
KNOWN_BOOT_WARNINGS = re.compile(r"parse_legacy|XSAVE consistency problem|paranoid_xstate_size_valid|setup_xstate_cache|misordered xstate")


def kernel_problems(lines):
    """Problem lines outside the known, harmless boot warnings."""
    bad, block, harmless = [], None, False
    for line in lines:
        if "------------[ cut here ]------------" in line:
            block, harmless = [], False
            continue
        if block is not None:
            block.append(line)
            harmless = harmless or bool(KNOWN_BOOT_WARNINGS.search(line))
            if "---[ end trace" in line:
                if not harmless:
                    bad += [l for l in block if KERNEL_PROBLEMS.search(l)] or block[:1]
                block = None
            continue
        if KERNEL_PROBLEMS.search(line):
            bad.append(line)
    if block is not None and not harmless:
        bad += [l for l in block if KERNEL_PROBLEMS.search(l)] or ["unterminated warning block"]
    return bad


class Tally:
    def __init__(self):
        self.passed = self.failed = self.skipped = 0

    def add(self, status, what):
        print(f"{status:4} {what}")
        if status == "PASS":
            self.passed += 1
        elif status == "FAIL":
            self.failed += 1
        else:
            self.skipped += 1


def cargo(t, path):
    """cargo test: one result per `test x ... ok|FAILED|ignored` line."""
    seen = 0
    with open(path, errors="replace") as f:
        for line in f:
            m = re.match(r"test (\S+) \.\.\. (ok|FAILED|ignored)", line)
            if m:
                seen += 1
                st = {"ok": "PASS", "FAILED": "FAIL", "ignored": "SKIP"}[m.group(2)]
                t.add(st, f"host/{m.group(1)}")
            if re.match(r"error(\[E\d+\])?:", line):
                t.add("FAIL", f"host/build: {line.strip()}")
                return
    if not seen:
        t.add("FAIL", "host/cargo test ran no test")


def session(t, name, path):
    with open(path, errors="replace") as f:
        lines = [l.rstrip("\r\n") for l in f]
    text = "\n".join(lines)
    prog = None
    plan = results = 0
    failed_in_prog = False
    for line in lines:
        if line.startswith("RVMX-BEGIN "):
            prog, plan, results, failed_in_prog = line.split()[1], 0, 0, False
            continue
        if prog is None:
            continue
        m = re.match(r"1\.\.(\d+)$", line)
        if m:
            plan = int(m.group(1))
            continue
        # Rust tests (libtest) run in the emulated host too.
        m = re.match(r"test (\S+) \.\.\. (ok|FAILED|ignored)$", line)
        if m:
            results += 1
            st = {"ok": "PASS", "FAILED": "FAIL", "ignored": "SKIP"}[m.group(2)]
            failed_in_prog = failed_in_prog or st == "FAIL"
            t.add(st, f"{name}/{prog}/{m.group(1)}")
            continue
        m = re.match(r"(not ok|ok) \d+ (\S+)(.*)$", line)
        if m:
            results += 1
            what = f"{name}/{prog}/{m.group(2)}"
            if "# SKIP" in m.group(3):
                t.add("SKIP", f"{what}{m.group(3)}")
            elif m.group(1) == "ok":
                t.add("PASS", what)
            else:
                failed_in_prog = True
                t.add("FAIL", what)
            continue
        m = re.match(r"RVMX-END (\S+) rc=(\d+)", line)
        if m:
            rc = int(m.group(2))
            if results < plan:
                t.add("FAIL", f"{name}/{prog}: {plan - results} of {plan} planned tests did not report")
            if rc != 0 and not failed_in_prog and results >= plan:
                t.add("FAIL", f"{name}/{prog}: exited with status {rc}")
            if results == 0 and plan == 0 and rc == 0:
                t.add("PASS", f"{name}/{prog}")
            prog = None
    if prog is not None:
        t.add("FAIL", f"{name}/{prog}: did not finish")
    if "RVMX-POWEROFF" not in text:
        why = "timed out" if "RVMX-TIMEOUT" in text else "did not reach power-off"
        if "Kernel panic" in text:
            why = "kernel panic"
        t.add("FAIL", f"{name}: the emulated host {why} (log: {path})")
    # The console (boot messages) and the dumped kernel log, together.
    m = re.search(r"RVMX-DMESG-BEGIN\n(.*?)RVMX-DMESG-END", text, re.S)
    bad = kernel_problems(lines)
    if not m and not bad:
        return  # no log to judge: the session failure above says why
    if bad:
        t.add("FAIL", f"{name}/kernel-log: {bad[0].strip()}")
    else:
        t.add("PASS", f"{name}/kernel-log clean")


def main(argv):
    t = Tally()
    i = 0
    while i < len(argv):
        if argv[i] == "--cargo":
            cargo(t, argv[i + 1])
            i += 2
            continue
        if argv[i] == "--checks":
            # Lines "PASS what" / "FAIL what" from host-side checks.
            with open(argv[i + 1]) as f:
                for line in f:
                    status, _, what = line.strip().partition(" ")
                    if status in ("PASS", "FAIL"):
                        t.add(status, f"host/{what}")
            i += 2
            continue
        name, path = argv[i].split("=", 1)
        session(t, name, path)
        i += 1
    tail = f", {t.skipped} skipped" if t.skipped else ""
    print(f"{t.passed} passed, {t.failed} failed{tail}")
    return 1 if t.failed or not t.passed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
