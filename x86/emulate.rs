// SPDX-License-Identifier: GPL-2.0
//! Executing one decoded instruction (`decode.rs`) whose memory operand is
//! MMIO (pure logic). The emulator hands out one MMIO access at a time; the
//! caller (the VM-exit handler) performs it, through userland or a device
//! model, and calls [`Emulation::complete`] with the data read.
//!
//! Addresses are linear (segment base + offset, SDM Vol. 3A 3.4). An access
//! may cross a page: the emulator does not split it, the caller translates
//! `linear` and splits it into per-page accesses. Segment limits and
//! canonical checks are not repeated: the CPU made them before the EPT
//! violation (SDM Vol. 3A 5.3; Vol. 1 3.3.7.1).

use super::decode::{Alu, Insn, Op, Reg, Src};
use super::rflags;
use crate::vmcs::field::Seg;

/// The vCPU state the emulator reads and writes; implemented by the run
/// loop (and a fake in the host tests).
pub trait Cpu {
    /// General register `n` (0 = RAX ... 15 = R15; 4 = RSP), all 64 bits.
    fn gpr(&self, n: u8) -> u64;
    /// Sets general register `n` to `v` (the emulator merges partial
    /// writes itself).
    fn set_gpr(&mut self, n: u8, v: u64);
    /// RIP of the instruction being emulated.
    fn rip(&self) -> u64;
    /// RFLAGS.
    fn rflags(&self) -> u64;
    /// Sets RFLAGS.
    fn set_rflags(&mut self, v: u64);
    /// The base of segment `seg` (ES CS SS DS FS GS; in real mode the
    /// caller gives selector << 4). Not asked for ES/CS/SS/DS in 64-bit mode.
    fn seg_base(&self, seg: Seg) -> u64;
    /// Reads guest RAM at a linear address (the RAM side of MOVS); `Err` if
    /// it is not RAM (then it is MMIO too).
    fn read_mem(&mut self, linear: u64, buf: &mut [u8]) -> Result<(), NotRam>;
    /// Writes guest RAM at a linear address; `Err` if it is not RAM.
    fn write_mem(&mut self, linear: u64, buf: &[u8]) -> Result<(), NotRam>;
}

/// A linear address that is not guest RAM (or not mapped).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotRam;

/// One MMIO access for the caller to perform. It may cross a page (the
/// caller splits it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Access {
    /// Linear address.
    pub linear: u64,
    /// 1, 2, 4 or 8 bytes.
    pub size: u8,
    /// A write (else a read).
    pub write: bool,
    /// For a write: the value (little-endian, `size` bytes); 0 for a read.
    pub data: u64,
}

/// What the caller does next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Perform this access, then call [`Emulation::complete`].
    Access(Access),
    /// The instruction is done: the caller advances RIP by
    /// [`Emulation::insn_len`].
    Done,
    /// REP: one element is done and the count is not zero; RIP stays, the
    /// guest executes the instruction again (and may take interrupts in
    /// between, as with hardware, SDM Vol. 2B REP).
    Repeat,
}

/// Why a decoded instruction cannot be emulated for this exit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unsupported {
    /// The fault's direction does not fit the instruction (a write fault on
    /// one that only reads, or a read fault on one that only writes): the
    /// bytes fetched are not what faulted.
    Direction,
}

/// Which access is outstanding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    /// The read of the memory operand (MOVS: of the source).
    Read,
    /// A write; the instruction ends (strings: the element ends) with it.
    Write,
    /// Nothing: the instruction is done.
    Finished,
}

/// The instruction in flight, kept in the vCPU between exits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Emulation {
    insn: Insn,
    /// Linear address of the memory operand (MOVS: the source).
    linear: u64,
    /// STOS, MOVS: linear address of the destination (ES:rDI).
    dst: u64,
    stage: Stage,
}

/// Arithmetic flags (SDM Vol. 1 3.4.3.1).
const ARITH: u64 = rflags::CF | rflags::PF | rflags::AF | rflags::ZF | rflags::SF | rflags::OF;
const RAX: u8 = 0;
const RCX: u8 = 1;
const RSI: u8 = 6;
const RDI: u8 = 7;

/// All ones in the low `size` bytes.
const fn mask(size: u8) -> u64 {
    if size >= 8 {
        u64::MAX
    } else {
        (1 << (8 * size as u32)) - 1
    }
}

/// Sign-extends the low `size` bytes of `v`.
const fn sign_extend(v: u64, size: u8) -> u64 {
    let shift = 64 - 8 * size as u32;
    (((v << shift) as i64) >> shift) as u64
}

/// Reads register operand `r` at `size` bytes.
fn reg_read(cpu: &impl Cpu, r: Reg, size: u8) -> u64 {
    let v = cpu.gpr(r.num);
    if r.high {
        v >> 8 & 0xff
    } else {
        v & mask(size)
    }
}

/// Writes register operand `r` at `size` bytes: 8- and 16-bit writes keep
/// the other bits, 32-bit writes zero bits 63:32 (SDM Vol. 1 3.4.1.1).
fn reg_write(cpu: &mut impl Cpu, r: Reg, size: u8, v: u64) {
    let old = cpu.gpr(r.num);
    let new = match size {
        1 if r.high => old & !0xff00 | (v & 0xff) << 8,
        1 | 2 => old & !mask(size) | v & mask(size),
        4 => v & mask(4),
        _ => v,
    };
    cpu.set_gpr(r.num, new);
}

/// Writes a string-instruction address register (rSI, rDI, rCX) at the
/// address size, with the same merging as any register write.
fn addr_reg_write(cpu: &mut impl Cpu, n: u8, addr_size: u8, v: u64) {
    reg_write(cpu, Reg { num: n, high: false }, addr_size, v);
}

/// Computes an ALU operation on `size`-byte operands: the result and the
/// arithmetic flags (SDM Vol. 2A-2C ADD ADC SUB SBB CMP AND OR XOR TEST;
/// Vol. 1 Appendix A). AF after AND, OR, XOR (and TEST) is undefined; it is
/// cleared here.
fn alu(op: Alu, a: u64, b: u64, carry: bool, size: u8) -> (u64, u64) {
    let m = mask(size);
    let sign = 1u64 << (8 * u32::from(size) - 1);
    let (a, b) = (a & m, b & m);
    let c = u64::from(carry);
    let (res, cf, of) = match op {
        Alu::Add | Alu::Adc => {
            let c = if op == Alu::Adc { c } else { 0 };
            let wide = u128::from(a) + u128::from(b) + u128::from(c);
            let res = wide as u64 & m;
            (res, wide > u128::from(m), (a ^ res) & (b ^ res) & sign != 0)
        }
        Alu::Sub | Alu::Sbb | Alu::Cmp => {
            let c = if op == Alu::Sbb { c } else { 0 };
            let res = a.wrapping_sub(b).wrapping_sub(c) & m;
            (res, u128::from(a) < u128::from(b) + u128::from(c), (a ^ b) & (a ^ res) & sign != 0)
        }
        Alu::And => (a & b, false, false),
        Alu::Or => (a | b, false, false),
        Alu::Xor => (a ^ b, false, false),
    };
    let logic = matches!(op, Alu::And | Alu::Or | Alu::Xor);
    let mut f = 0;
    if cf {
        f |= rflags::CF;
    }
    if (res as u8).count_ones() & 1 == 0 {
        f |= rflags::PF;
    }
    if !logic && (a ^ b ^ res) & 0x10 != 0 {
        f |= rflags::AF;
    }
    if res == 0 {
        f |= rflags::ZF;
    }
    if res & sign != 0 {
        f |= rflags::SF;
    }
    if of {
        f |= rflags::OF;
    }
    (res, f)
}

impl Emulation {
    /// Starts `insn`, whose memory operand faulted as MMIO; `fault_write`:
    /// the EPT violation was a write (for MOVS it tells which side is
    /// MMIO: the destination on a write, else the source). Returns the
    /// first access, or `Step::Done` for REP with a zero count.
    pub fn start(insn: Insn, cpu: &mut impl Cpu, fault_write: bool) -> Result<(Emulation, Step), Unsupported> {
        let mut e = Emulation { insn, linear: 0, dst: 0, stage: Stage::Finished };
        let (reads, writes) = match insn.op {
            Op::Store(_) | Op::Stos => (false, true),
            Op::Load { .. } | Op::AluReg(_) | Op::Test(_) | Op::AluMem(Alu::Cmp, _) => (true, false),
            Op::AluMem(..) | Op::Xchg | Op::Cmpxchg | Op::Movs => (true, true),
        };
        if (fault_write && !writes) || (!fault_write && !reads) {
            return Err(Unsupported::Direction);
        }
        if matches!(insn.op, Op::Stos | Op::Movs) {
            // REP with rCX (at the address size) zero: nothing (SDM Vol. 2B REP).
            if insn.rep && cpu.gpr(RCX) & mask(insn.addr_size) == 0 {
                return Ok((e, Step::Done));
            }
            e.linear = e.linear_of(cpu, insn.seg, cpu.gpr(RSI));
            e.dst = e.linear_of(cpu, Seg::Es, cpu.gpr(RDI));
            if insn.op == Op::Stos {
                let step = e.write(e.dst, cpu.gpr(RAX));
                return Ok((e, step));
            }
            if fault_write {
                // The destination is MMIO; the source may be RAM.
                let mut buf = [0u8; 8];
                let n = usize::from(insn.size);
                if cpu.read_mem(e.linear, &mut buf[..n]).is_ok() {
                    let step = e.write(e.dst, u64::from_le_bytes(buf));
                    return Ok((e, step));
                }
            }
            e.stage = Stage::Read;
            return Ok((e, Step::Access(Access { linear: e.linear, size: insn.size, write: false, data: 0 })));
        }

        e.linear = e.linear_of(cpu, insn.seg, e.offset(cpu));
        if let Op::Store(src) = insn.op {
            let step = e.write(e.linear, e.source(cpu, src));
            return Ok((e, step));
        }
        let size = match insn.op {
            Op::Load { src_size, .. } => src_size,
            _ => insn.size,
        };
        e.stage = Stage::Read;
        Ok((e, Step::Access(Access { linear: e.linear, size, write: false, data: 0 })))
    }

    /// The access returned last is done; for a read, `data` is what it
    /// returned (bits above its size are ignored). Applies the instruction
    /// to registers and RFLAGS and returns the next access, or the end.
    pub fn complete(&mut self, cpu: &mut impl Cpu, data: u64) -> Step {
        let insn = self.insn;
        match self.stage {
            Stage::Finished => Step::Done,
            Stage::Write => {
                self.stage = Stage::Finished;
                if matches!(insn.op, Op::Stos | Op::Movs) {
                    self.next_element(cpu)
                } else {
                    Step::Done
                }
            }
            Stage::Read => {
                self.stage = Stage::Finished;
                self.after_read(cpu, data)
            }
        }
    }

    /// Length of the instruction, for the caller to advance RIP on `Done`.
    pub fn insn_len(&self) -> u8 {
        self.insn.len
    }

    /// Finishes a read of the memory operand with `data`.
    fn after_read(&mut self, cpu: &mut impl Cpu, data: u64) -> Step {
        let insn = self.insn;
        let size = insn.size;
        match insn.op {
            Op::Load { src_size, sign } => {
                let v = data & mask(src_size);
                let v = if sign { sign_extend(v, src_size) } else { v };
                reg_write(cpu, insn.reg, size, v);
                Step::Done
            }
            Op::AluMem(op, src) => {
                let b = self.source(cpu, src);
                let (res, flags) = alu(op, data, b, cpu.rflags() & rflags::CF != 0, size);
                set_flags(cpu, flags);
                if op == Alu::Cmp {
                    Step::Done
                } else {
                    self.write(self.linear, res)
                }
            }
            Op::AluReg(op) => {
                let a = reg_read(cpu, insn.reg, size);
                let (res, flags) = alu(op, a, data, cpu.rflags() & rflags::CF != 0, size);
                set_flags(cpu, flags);
                if op != Alu::Cmp {
                    reg_write(cpu, insn.reg, size, res);
                }
                Step::Done
            }
            Op::Test(src) => {
                let b = self.source(cpu, src);
                set_flags(cpu, alu(Alu::And, data, b, false, size).1);
                Step::Done
            }
            Op::Xchg => {
                let v = reg_read(cpu, insn.reg, size);
                reg_write(cpu, insn.reg, size, data);
                self.write(self.linear, v)
            }
            Op::Cmpxchg => {
                // Flags of CMP accumulator, dest; equal: dest = src; else the
                // accumulator = dest and dest is written back unchanged
                // (SDM Vol. 2A CMPXCHG).
                let acc = Reg { num: RAX, high: false };
                let old = data & mask(size);
                let (_, flags) = alu(Alu::Cmp, reg_read(cpu, acc, size), old, false, size);
                set_flags(cpu, flags);
                if flags & rflags::ZF != 0 {
                    let v = reg_read(cpu, insn.reg, size);
                    self.write(self.linear, v)
                } else {
                    reg_write(cpu, acc, size, old);
                    self.write(self.linear, old)
                }
            }
            Op::Movs => {
                // The source was MMIO; the destination may be RAM.
                let n = usize::from(size);
                if cpu.write_mem(self.dst, &data.to_le_bytes()[..n]).is_ok() {
                    self.next_element(cpu)
                } else {
                    self.write(self.dst, data)
                }
            }
            Op::Store(_) | Op::Stos => Step::Done,
        }
    }

    /// A write of `v` at `linear` (operand size), made the outstanding access.
    fn write(&mut self, linear: u64, v: u64) -> Step {
        self.stage = Stage::Write;
        let size = self.insn.size;
        Step::Access(Access { linear, size, write: true, data: v & mask(size) })
    }

    /// The non-memory source operand at the operand size.
    fn source(&self, cpu: &impl Cpu, src: Src) -> u64 {
        match src {
            Src::Reg => reg_read(cpu, self.insn.reg, self.insn.size),
            Src::Imm => self.insn.imm & mask(self.insn.size),
        }
    }

    /// The memory operand's offset (effective address), cut to the address
    /// size (SDM Vol. 1 3.7.5; RIP-relative from the next instruction, Vol.
    /// 2A 2.2.1.6).
    fn offset(&self, cpu: &impl Cpu) -> u64 {
        let m = self.insn.mem;
        let mut ea = m.disp;
        if let Some(b) = m.base {
            ea = ea.wrapping_add(cpu.gpr(b));
        }
        if let Some(i) = m.index {
            ea = ea.wrapping_add(cpu.gpr(i).wrapping_mul(u64::from(m.scale)));
        }
        if m.rip_rel {
            ea = ea.wrapping_add(cpu.rip()).wrapping_add(u64::from(self.insn.len));
        }
        ea & mask(self.insn.addr_size)
    }

    /// Linear address of `offset` (cut to the address size here) in `seg`:
    /// in 64-bit mode only FS and GS have a base (SDM Vol. 3A 3.2.4), else
    /// linear addresses wrap at 4 GiB.
    fn linear_of(&self, cpu: &impl Cpu, seg: Seg, offset: u64) -> u64 {
        let offset = offset & mask(self.insn.addr_size);
        if self.insn.long64 {
            match seg {
                Seg::Fs | Seg::Gs => cpu.seg_base(seg).wrapping_add(offset),
                _ => offset,
            }
        } else {
            cpu.seg_base(seg).wrapping_add(offset) & mask(4)
        }
    }

    /// STOS/MOVS element done: rSI (MOVS) and rDI step by the element size,
    /// down with RFLAGS.DF; with REP, rCX counts down and the instruction
    /// repeats while it is not zero (SDM Vol. 2B MOVS, STOS, REP).
    fn next_element(&mut self, cpu: &mut impl Cpu) -> Step {
        let insn = self.insn;
        let a = insn.addr_size;
        let step = if cpu.rflags() & rflags::DF != 0 {
            u64::from(insn.size).wrapping_neg()
        } else {
            u64::from(insn.size)
        };
        if insn.op == Op::Movs {
            addr_reg_write(cpu, RSI, a, cpu.gpr(RSI).wrapping_add(step));
        }
        addr_reg_write(cpu, RDI, a, cpu.gpr(RDI).wrapping_add(step));
        if !insn.rep {
            return Step::Done;
        }
        let count = (cpu.gpr(RCX) & mask(a)).wrapping_sub(1) & mask(a);
        addr_reg_write(cpu, RCX, a, count);
        if count == 0 {
            Step::Done
        } else {
            Step::Repeat
        }
    }
}

/// Replaces the arithmetic flags in RFLAGS with `flags`.
fn set_flags(cpu: &mut impl Cpu, flags: u64) {
    cpu.set_rflags(cpu.rflags() & !ARITH | flags);
}
