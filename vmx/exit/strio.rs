// SPDX-License-Identifier: GPL-2.0
//! String port I/O (INS, OUTS and their REP forms) planned in batches
//! (pure logic). The run loop moves the elements between guest memory and
//! the data area of the shared exit page, as many per exit as fit: one
//! batch never passes a page boundary of the guest-linear range (so one
//! translation covers it), the data area's capacity, the instruction's
//! count, or the wrap of the address-size register.
//!
//! Flow: [`decode`] the exit, [`plan`] a batch, translate its page(s)
//! ([`crate::x86::paging`]), copy, [`finish`] (registers, and whether the
//! instruction is complete: advance RIP; or not: RIP stays and the guest
//! executes the REP again for the rest). A REP with a zero count does
//! nothing ([`plan`] gives `None`): [`finish_empty`], then advance RIP.
//!
//! Not checked here: segment limits and access rights of the memory
//! operand (the exit comes before the instruction touches memory; I/O
//! permission faults come before the exit, SDM Vol. 3C 26.1.1).

use super::event::Exception;
use crate::vmcs::field::Seg;
use crate::vmx::exit_info::IoQual;
use crate::vmx::regs::GuestRegs;
use crate::x86::paging::{translate, Access, AccessKind, PagingRegs, PhysMem, WalkError};
use crate::x86::vector;

/// Linear addresses are in pages of 4 KiB.
const PAGE: u64 = 4096;

/// A decoded INS or OUTS exit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StrIo {
    /// INS (true) or OUTS.
    pub is_in: bool,
    /// Element size: 1, 2 or 4 bytes.
    pub size: u8,
    /// REP prefix: RCX/ECX/CX elements.
    pub rep: bool,
    /// Address size: 2, 4 or 8 bytes (which of SI/ESI/RSI, DI/EDI/RDI and
    /// CX/ECX/RCX the instruction uses).
    pub addr_size: u8,
    /// The memory operand's segment: ES for INS (no override, SDM Vol. 2B
    /// INS), from the instruction information for OUTS.
    pub seg: Seg,
    /// The port (DX).
    pub port: u16,
    /// 64-bit mode (IA32_EFER.LMA and CS.L): linear addresses have 64
    /// bits, and ES, CS, SS and DS have base 0 (SDM Vol. 3A 3.4.4);
    /// otherwise linear addresses wrap at 4 GiB.
    pub mode64: bool,
}

/// Decodes an I/O exit's qualification (SDM Vol. 3C 28.2.1, Table 28-5)
/// and instruction information (28.2.5, Table 28-8: bits 9:7 address size,
/// bits 17:15 segment, undefined for INS); `mode64` says whether the guest
/// was in 64-bit mode. The instruction information is only reported when
/// IA32_VMX_BASIC bit 54 is 1 (SDM Vol. 3D A.1). `None` if the exit is not
/// INS/OUTS or an encoding is one the SDM does not define.
pub fn decode(qualification: u64, instruction_info: u32, mode64: bool) -> Option<StrIo> {
    let q = IoQual::decode(qualification)?;
    if !q.string {
        return None;
    }
    // A 16-bit address size does not exist in 64-bit mode, a 64-bit one
    // only there (SDM Vol. 1 3.6.1).
    let addr_size = match ((instruction_info >> 7) & 7, mode64) {
        (0, false) => 2,
        (1, _) => 4,
        (2, true) => 8,
        _ => return None,
    };
    let seg = if q.is_in {
        Seg::Es
    } else {
        match (instruction_info >> 15) & 7 {
            0 => Seg::Es,
            1 => Seg::Cs,
            2 => Seg::Ss,
            3 => Seg::Ds,
            4 => Seg::Fs,
            5 => Seg::Gs,
            _ => return None,
        }
    };
    Some(StrIo { is_in: q.is_in, size: q.size, rep: q.rep, addr_size, seg, port: q.port, mode64 })
}

impl StrIo {
    /// The bits of SI/DI/CX the address size uses.
    const fn addr_mask(&self) -> u64 {
        match self.addr_size {
            2 => 0xffff,
            4 => 0xffff_ffff,
            _ => u64::MAX,
        }
    }

    /// The pointer register the instruction uses: RDI for INS, RSI for OUTS.
    pub const fn pointer(&self, regs: &GuestRegs) -> u64 {
        if self.is_in {
            regs.rdi
        } else {
            regs.rsi
        }
    }

    /// Writes `val` into `reg` as an address-size register update: 16 bits
    /// keep bits 63:16; 32 bits zero-extend (a 32-bit result clears bits
    /// 63:32 in 64-bit mode, SDM Vol. 1 3.4.1.1; outside it they are not
    /// visible); 64 bits replace.
    const fn write_reg(&self, reg: u64, val: u64) -> u64 {
        match self.addr_size {
            2 => (reg & !0xffff) | (val & 0xffff),
            4 => val & 0xffff_ffff,
            _ => val,
        }
    }
}

/// An element that crosses a page boundary: a batch of this one element.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Split {
    /// Its bytes on the page of [`Batch::linear`] (1 to size - 1).
    pub first: u8,
    /// Where the rest lies: the start of the next page (0 after the wrap at
    /// 4 GiB outside 64-bit mode). Translate both pages.
    pub linear2: u64,
}

/// The elements one exit moves.
///
/// Data-area layout: bytes `i * size .. (i + 1) * size` hold the `i`-th
/// element the CPU transfers (`i` = 0 is the one at RSI/RDI), each in
/// memory byte order (little-endian). With DF = 0 that is guest memory
/// order: the area is a copy of the `count * size` bytes at `linear`.
/// With DF = 1 the first element is the highest: element `i` is at
/// `linear + (count - 1 - i) * size` ; copy
/// the bytes at `linear`, then [`Batch::reorder`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Batch {
    /// The lowest linear address touched.
    pub linear: u64,
    /// Elements in this batch (at least 1).
    pub count: u32,
    /// Element size: 1, 2 or 4 bytes.
    pub size: u8,
    /// DF = 1: the pointer goes down.
    pub down: bool,
    /// A single element across a page boundary (then `count` is 1).
    pub split: Option<Split>,
}

impl Batch {
    /// The batch's bytes (in the data area and in guest memory).
    pub const fn bytes(&self) -> usize {
        self.count as usize * self.size as usize
    }

    /// Turns `buf` (the batch's bytes) from memory order into the CPU's
    /// order or back, the same permutation both ways: nothing with DF = 0;
    /// with DF = 1 the elements change places end for end, the bytes in
    /// each keep theirs.
    pub fn reorder(&self, buf: &mut [u8]) {
        let size = usize::from(self.size);
        if !self.down || size == 0 {
            return;
        }
        let n = (buf.len() / size).min(self.count as usize);
        let Some(b) = buf.get_mut(..n * size) else { return };
        // Reversing the bytes puts the elements end for end with their
        // bytes reversed; reversing each element puts those back.
        b.reverse();
        for e in b.chunks_exact_mut(size) {
            e.reverse();
        }
    }
}

/// Plans the next batch from the pointer register (`rsi_or_rdi`,
/// [`StrIo::pointer`]), RCX, RFLAGS.DF, the segment base and the data
/// area's capacity in bytes. In 64-bit mode the base is taken as 0 unless
/// the segment is FS or GS. `None`: nothing to move (a REP with a zero
/// count, or a capacity below one element).
pub fn plan(s: &StrIo, rsi_or_rdi: u64, rcx: u64, df: bool, seg_base: u64, capacity: usize) -> Option<Batch> {
    let amask = s.addr_mask();
    let size = s.size as u64;
    // The effective address is the register cut to the address size
    // (SDM Vol. 1 3.6, 3.7.5); so is the count (SDM Vol. 2B REP).
    let ea = rsi_or_rdi & amask;
    let left = if s.rep { rcx & amask } else { 1 };
    if left == 0 || (capacity as u64) < size {
        return None;
    }
    let base = if s.mode64 && !matches!(s.seg, Seg::Fs | Seg::Gs) { 0 } else { seg_base };
    let lmask = if s.mode64 { u64::MAX } else { 0xffff_ffff };
    let lin = base.wrapping_add(ea) & lmask;
    let off = lin % PAGE;
    if off + size > PAGE {
        let first = PAGE - off;
        let split = Split { first: first as u8, linear2: lin.wrapping_add(first) & lmask };
        return Some(Batch { linear: lin, count: 1, size: s.size, down: df, split: Some(split) });
    }
    let mut n = left.min(capacity as u64 / size).min(u32::MAX as u64);
    // The elements' effective addresses must not wrap at the address size
    // in between (16-bit SI wraps at 64 KiB): their linear addresses would
    // not be contiguous.
    if df {
        n = n.min(off / size + 1).min(ea / size + 1);
    } else {
        n = n.min((PAGE - off) / size).min(((amask - ea) / size).saturating_add(1));
    }
    let linear = if df { lin - (n - 1) * size } else { lin };
    Some(Batch { linear, count: n as u32, size: s.size, down: df, split: None })
}

/// Accounts for a batch done: RSI (OUTS) or RDI (INS) moves by its bytes,
/// up or down; with REP, RCX goes down by its count. Registers change only
/// in the address size's bits (see [`StrIo`]). Returns whether the
/// instruction is complete (advance RIP); if not, RIP stays and the guest
/// executes the REP again for the rest.
pub fn finish(s: &StrIo, b: &Batch, regs: &mut GuestRegs) -> bool {
    let amask = s.addr_mask();
    let delta = b.count as u64 * s.size as u64;
    let reg = if s.is_in { &mut regs.rdi } else { &mut regs.rsi };
    let ea = *reg & amask;
    let next = if b.down { ea.wrapping_sub(delta) } else { ea.wrapping_add(delta) };
    *reg = s.write_reg(*reg, next);
    if !s.rep {
        return true;
    }
    let left = (regs.rcx & amask).wrapping_sub(b.count as u64) & amask;
    regs.rcx = s.write_reg(regs.rcx, left);
    left == 0
}

/// A REP with a zero count: no element moves, no pointer changes. With a
/// 32-bit address size in 64-bit mode Intel CPUs still clear RCX[63:32]
/// (not in the SDM; KVM's emulator does the same, string_registers_quirk).
pub fn finish_empty(s: &StrIo, regs: &mut GuestRegs) {
    if s.rep && s.mode64 && s.addr_size == 4 {
        regs.rcx = s.write_reg(regs.rcx, regs.rcx);
    }
}

/// Guest-physical memory as the run loop reaches it (through the VM
/// creator's mapping, interrupts on). False: not guest RAM.
pub trait GuestMem {
    /// Copies guest memory at `gpa` into `buf`.
    fn read(&mut self, gpa: u64, buf: &mut [u8]) -> bool;
    /// Copies `buf` to guest memory at `gpa`.
    fn write(&mut self, gpa: u64, buf: &[u8]) -> bool;
}

/// The paging-structure reads of a walk, through [`GuestMem`].
pub struct Phys<'a, M: GuestMem>(pub &'a mut M);

impl<M: GuestMem> PhysMem for Phys<'_, M> {
    fn read_u64(&mut self, gpa: u64) -> Option<u64> {
        let mut b = [0u8; 8];
        self.0.read(gpa, &mut b).then(|| u64::from_le_bytes(b))
    }
    fn read_u32(&mut self, gpa: u64) -> Option<u32> {
        let mut b = [0u8; 4];
        self.0.read(gpa, &mut b).then(|| u32::from_le_bytes(b))
    }
}

/// What the exit handler saw of an INS/OUTS exit (the VMCS is not at hand
/// when the run loop moves the data, with interrupts on).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StrExit {
    /// The instruction.
    pub s: StrIo,
    /// RFLAGS.DF.
    pub df: bool,
    /// The base of the memory operand's segment.
    pub seg_base: u64,
    /// The guest's paging state, for the walk.
    pub paging: PagingRegs,
    /// CPL 3: the walk checks user rights.
    pub user: bool,
    /// The instruction's length.
    pub len: u64,
    /// The exit qualification and instruction information (for a raw exit
    /// when the memory is not RAM).
    pub qual: u64,
    /// VM-exit instruction information.
    pub info: u32,
}

/// An INS batch reported to userland, completed on the next RUN.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PendingStrIn {
    /// The exit.
    pub x: StrExit,
    /// The batch.
    pub b: Batch,
    /// Guest-physical addresses of the batch (the second for a split
    /// element).
    pub gpa: [u64; 2],
}

/// What the run loop does after [`start`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Report `count` elements to userland (OUTS: in the data area);
    /// `complete`: RIP moves past the instruction first.
    Report {
        /// Elements.
        count: u32,
        /// The instruction is done.
        complete: bool,
    },
    /// INS: report `count` elements wanted; userland's data completes the
    /// batch on the next RUN ([`complete_in`]).
    Wait {
        /// Elements.
        count: u32,
        /// The batch.
        pending: PendingStrIn,
    },
    /// Nothing to move (REP with a zero count): RIP moves on.
    Empty,
    /// The memory operand faults: deliver this exception (RIP stays).
    Fault(Exception),
    /// The memory operand is not guest RAM (rvmx does not move string I/O
    /// to or from MMIO).
    NotRam,
}

/// Starts (or continues) an INS/OUTS: plans a batch, translates it,
/// copies OUTS data from guest memory into `data` (the data area's
/// staging copy, in the CPU's order) and updates the registers.
pub fn start(x: &StrExit, regs: &mut GuestRegs, mem: &mut impl GuestMem, data: &mut [u8]) -> Step {
    let Some(b) = plan(&x.s, x.s.pointer(regs), regs.rcx, x.df, x.seg_base, data.len()) else {
        finish_empty(&x.s, regs);
        return Step::Empty;
    };
    let kind = if x.s.is_in { AccessKind::Write } else { AccessKind::Read };
    let gpa = match translate_batch(mem, x, &b, Access::new(kind, x.user)) {
        Ok(g) => g,
        Err(step) => return step,
    };
    if x.s.is_in {
        // Only into writable RAM: the port reads userland would make for
        // MMIO or a ROM could not be put anywhere (a zero-length write
        // tells, without writing).
        let writable = mem.write(gpa[0], &[]) && (b.split.is_none() || mem.write(gpa[1], &[]));
        if !writable {
            return Step::NotRam;
        }
        return Step::Wait { count: b.count, pending: PendingStrIn { x: *x, b, gpa } };
    }
    let buf = &mut data[..b.bytes()];
    if !copy(mem, &b, gpa, buf, false) {
        return Step::NotRam;
    }
    b.reorder(buf);
    let complete = finish(&x.s, &b, regs);
    Step::Report { count: b.count, complete }
}

/// Completes an INS batch with userland's elements (`data`, in the CPU's
/// order; reordered in place). `None`: the memory is no longer RAM.
/// `Some(complete)`: as [`finish`].
pub fn complete_in(p: &PendingStrIn, regs: &mut GuestRegs, mem: &mut impl GuestMem, data: &mut [u8]) -> Option<bool> {
    let buf = data.get_mut(..p.b.bytes())?;
    p.b.reorder(buf);
    if !copy(mem, &p.b, p.gpa, buf, true) {
        return None;
    }
    Some(finish(&p.x.s, &p.b, regs))
}

/// The guest-physical addresses of a batch, or the fault to deliver: #PF
/// with CR2 at the linear address; #GP(0) (#SS(0) through SS) for a
/// non-canonical one (SDM Vol. 3A 6.15).
fn translate_batch(mem: &mut impl GuestMem, x: &StrExit, b: &Batch, acc: Access) -> Result<[u64; 2], Step> {
    let one = |mem: &mut _, lin: u64| match translate(&mut Phys(mem), &x.paging, lin, acc) {
        Ok(g) => Ok(g),
        Err(WalkError::PageFault { error_code }) => {
            Err(Step::Fault(Exception { vector: vector::PF, error_code: Some(error_code), payload: Some(lin) }))
        }
        Err(WalkError::NonCanonical | WalkError::BadPdpte) => {
            let v = if x.s.seg == Seg::Ss { vector::SS } else { vector::GP };
            Err(Step::Fault(Exception { vector: v, error_code: Some(0), payload: None }))
        }
        Err(WalkError::Memory) => Err(Step::NotRam),
    };
    let g1 = one(mem, b.linear)?;
    let g2 = match b.split {
        Some(s) => one(mem, s.linear2)?,
        None => 0,
    };
    Ok([g1, g2])
}

/// Copies a batch between guest memory and `buf` (to guest memory if
/// `to_guest`), split element included.
fn copy(mem: &mut impl GuestMem, b: &Batch, gpa: [u64; 2], buf: &mut [u8], to_guest: bool) -> bool {
    let first = b.split.map_or(buf.len(), |s| usize::from(s.first));
    let (a, rest) = buf.split_at_mut(first);
    let ok = if to_guest { mem.write(gpa[0], a) } else { mem.read(gpa[0], a) };
    ok && (rest.is_empty() || if to_guest { mem.write(gpa[1], rest) } else { mem.read(gpa[1], rest) })
}
