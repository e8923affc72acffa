#!/usr/bin/env python3
"""Checks the speculation defences of rvmx.ko's entry/exit stub.

In rvmx_vmrun (vmx/vmx.S) the defences are kernel ALTERNATIVEs: the
instructions live in .altinstr_replacement and are patched over the
original site at load when the kernel's mitigation needs them. This finds
each alternative site of the stub (ELF relocations of .altinstructions) and
checks, from the disassembly:
  - VERW (CPU buffer clearing) is the last thing before VMLAUNCH/VMRESUME;
  - after the exit label and before the first RET: the RSB refill (a run
    of CALLs), an LFENCE, and the branch-history clearing call.
Prints PASS/FAIL lines; exits 1 on any failure.
Usage: check-stub.py rvmx.ko
"""
import struct, subprocess, sys, tempfile, re

def elf(path):
    data = open(path, "rb").read()
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3a)
    secs = []
    for i in range(shnum):
        name, typ, flags, addr, off, size, link, info, align, entsize = struct.unpack_from(
            "<IIQQQQIIQQ", data, shoff + i * shentsize)
        secs.append(dict(name=name, type=typ, off=off, size=size, link=link, info=info, entsize=entsize))
    strtab = secs[shstrndx]
    for s in secs:
        end = data.index(b"\0", strtab["off"] + s["name"])
        s["name"] = data[strtab["off"] + s["name"]:end].decode()
    return data, secs

def symbols(data, secs):
    out = {}
    for s in secs:
        if s["type"] != 2:  # SHT_SYMTAB
            continue
        strs = secs[s["link"]]
        for i in range(s["size"] // 24):
            name, info, other, shndx, value, size = struct.unpack_from("<IBBHQQ", data, s["off"] + i * 24)
            end = data.index(b"\0", strs["off"] + name)
            out.setdefault(data[strs["off"] + name:end].decode(), []).append((shndx, value, size, info & 0xf))
        return out, s
    sys.exit("no symbol table")

def relocs(data, secs, target, symtab):
    """(offset in target, section index of the symbol, addend) for each RELA of `target`."""
    out = []
    for s in secs:
        if s["type"] == 4 and secs[s["info"]]["name"] == target:
            for i in range(s["size"] // 24):
                off, info, addend = struct.unpack_from("<QQq", data, s["off"] + i * 24)
                sym = info >> 32
                _, _, _, _, _, _ = (0,) * 6
                name, sinfo, other, shndx, value, size = struct.unpack_from(
                    "<IBBHQQ", data, symtab["off"] + sym * 24)
                out.append((off, shndx, value + addend, sym))
    return out

def disasm(raw):
    with tempfile.NamedTemporaryFile(suffix=".bin") as f:
        f.write(raw)
        f.flush()
        txt = subprocess.run(["objdump", "-D", "-b", "binary", "-m", "i386:x86-64", f.name],
                             capture_output=True, text=True, check=True).stdout
    return [l.split("\t")[-1].strip() for l in txt.splitlines() if re.match(r"\s+[0-9a-f]+:\t", l)]

def main(path):
    data, secs = elf(path)
    syms, symtab = symbols(data, secs)
    idx = {s["name"]: i for i, s in enumerate(secs)}
    text = secs[idx[".text"]]
    (_, run, run_size, _), = [v for v in syms["rvmx_vmrun"] if v[0] == idx[".text"]]
    (_, vmexit, _, _), = [v for v in syms["rvmx_vmexit"] if v[0] == idx[".text"]]
    repl = secs[idx[".altinstr_replacement"]]
    alt = secs[idx[".altinstructions"]]
    rel = {off: (shndx, addr) for off, shndx, addr, _ in relocs(data, secs, ".altinstructions", symtab)}
    sites = []
    for i in range(alt["size"] // 14):
        base = i * 14
        _, iaddr = rel[base]
        _, raddr = rel[base + 4]
        feature, ilen, rlen = struct.unpack_from("<IBB", data, alt["off"] + base + 8)
        if run <= iaddr < run + run_size:
            code = disasm(data[repl["off"] + raddr:repl["off"] + raddr + rlen]) if rlen else []
            sites.append(dict(at=iaddr, len=ilen, feature=feature, code=code))
    # The stub's own instructions, with addresses.
    body = subprocess.run(["objdump", "-d", "--no-show-raw-insn", "-j", ".text",
                           "--start-address=%d" % run, "--stop-address=%d" % (run + run_size), path],
                          capture_output=True, text=True, check=True).stdout
    insns = [(int(m.group(1), 16), m.group(2).strip()) for m in
             (re.match(r"\s+([0-9a-f]+):\t(.*)", l) for l in body.splitlines()) if m]
    entry = min(a for a, t in insns if t.startswith(("vmlaunch", "vmresume")))
    ret = min(a for a, t in insns if a >= vmexit and (t.startswith("ret") or "__x86_return_thunk" in t))
    fails = 0

    def check(ok, what):
        nonlocal fails
        print(("PASS" if ok else "FAIL") + " stub: " + what)
        fails += not ok

    before = [s for s in sites if s["at"] < entry]
    verw = [s for s in before if any(c.startswith("verw") for c in s["code"])]
    check(bool(verw), "VERW (CPU buffer clearing) before VMLAUNCH/VMRESUME")
    if verw:
        last = max(verw, key=lambda s: s["at"])
        between = [t for a, t in insns if last["at"] + last["len"] <= a < entry]
        check(all(t.startswith(("nop", "j")) for t in between),
              "nothing but the launch/resume branch between VERW and VMLAUNCH/VMRESUME")
    after = [s for s in sites if vmexit <= s["at"] < ret]
    check(any(sum(c.startswith("call") for c in s["code"]) >= 2 for s in after),
          "RSB refill (CALLs) after the exit label, before the first RET")
    lfence = any(t.startswith("lfence") for a, t in insns if vmexit <= a < ret) or \
        any(c.startswith("lfence") for s in after for c in s["code"])
    check(lfence, "LFENCE (speculation barrier) after the exit label, before the first RET")
    check(any(any(c.startswith("call") for c in s["code"]) and len(s["code"]) <= 2 for s in after),
          "branch-history clearing call after the exit label, before the first RET")
    calls_before = [t for a, t in insns if vmexit <= a < ret and t.startswith("call")]
    check(not calls_before, "no CALL in the stub's own code between the exit and its RET")
    return 1 if fails else 0

if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
