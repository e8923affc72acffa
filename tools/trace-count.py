#!/usr/bin/env python3
"""Counts instructions in the Bochs instruction traces of tools/host.sh's
bench: two traced windows (rvmx, then kvm_intel), each one OUT round trip
from userland through the kernel and the guest and back. Prints, per
backend, the instructions in all and the VMX instructions and WRMSRs
among them (Bochs counts each as one instruction; real CPUs spend tens to
hundreds of cycles on them). Usage: trace-count.py bochs.out"""
import re, sys

KINDS = ["vmread", "vmwrite", "vmptrld", "vmclear", "vmlaunch", "vmresume", "wrmsr", "rdmsr", "lfence", "verw"]

def windows(path):
    cur, out = None, []
    for line in open(path, errors="replace"):
        # A traced instruction: "(0).[n] [0x...] sel:addr (...): mnemonic ..."
        m = re.match(r"\(\d+\)\.\[\d+\] \[0x[0-9a-f]+\] [0-9a-f]{4}:([0-9a-f]+) \([^)]*\): (\S+)", line)
        if m:
            if cur is None:
                cur = {"n": 0, **{k: 0 for k in KINDS}, "guest": 0}
                out.append(cur)
            cur["n"] += 1
            op = m.group(2).lower()
            if op in cur:
                cur[op] += 1
            if not m.group(1).startswith("ffff"):
                cur["guest"] += 1
        elif cur is not None and ("magic" in line.lower() or "Next at" in line):
            cur = None
    return [w for w in out if w["n"] > 10]

def main(path):
    ws = windows(path)
    if len(ws) < 2:
        print(f"trace-count: expected 2 traced windows, found {len(ws)}")
        return 1
    print("One OUT round trip (RUN ioctl to RUN ioctl), instructions executed:")
    print(f"{'':12}{'all':>8}" + "".join(f"{k:>10}" for k in KINDS))
    for name, w in zip(["rvmx", "kvm_intel"], ws[-2:]):
        print(f"{name:12}{w['n']:>8}" + "".join(f"{w[k]:>10}" for k in KINDS))
    return 0

if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
