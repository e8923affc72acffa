// SPDX-License-Identifier: GPL-2.0
//! MMIO (pure logic): a guest access outside guest RAM. The instruction at
//! RIP is fetched through the guest's page tables, decoded and emulated
//! (x86/decode.rs, x86/emulate.rs); each access it makes goes to guest
//! RAM directly or, for MMIO, to userland as one exit of 1 to 8 bytes. An
//! access that crosses a page is split at the boundary, each part going
//! where its page is. A read completes on the next RUN with userland's
//! data; then RIP moves past the instruction (a REP element: the guest
//! executes it again). Bytes that do not decode go to userland raw, RIP at
//! the instruction: never a guess.

use super::event::Exception;
use super::strio::{GuestMem, Phys};
use crate::vmcs::field::*;
use crate::vmx::regs::GuestRegs;
use crate::x86::decode::{decode, Mode};
use crate::x86::emulate::{Access as MemAccess, Cpu, Emulation, NotRam, Step};
use crate::x86::paging::{translate, Access, AccessKind, PagingRegs, WalkError};
use crate::x86::{efer, vector};

const PAGE: u64 = 4096;

/// The guest state emulation uses besides the general registers, read
/// from the VMCS at the exit (the run loop writes RSP and RFLAGS back).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Frame {
    /// RIP of the instruction.
    pub rip: u64,
    /// RSP.
    pub rsp: u64,
    /// RFLAGS.
    pub rflags: u64,
    /// Segment bases: ES, CS, SS, DS, FS, GS.
    pub bases: [u64; 6],
    /// 64-bit mode (IA32_EFER.LMA and CS.L).
    pub long64: bool,
    /// CS.D: 32-bit defaults outside 64-bit mode.
    pub default32: bool,
    /// Paging state, for the walks.
    pub paging: PagingRegs,
    /// CPL 3.
    pub user: bool,
}

impl Frame {
    /// Reads the frame from the VMCS.
    pub fn read<V: VmcsAccess>(v: &V, maxphyaddr: u8, gbpages: bool) -> Frame {
        let cs_ar = v.read(Seg::Cs.fields().ar);
        let e = v.read(GUEST_IA32_EFER);
        let rflags = v.read(GUEST_RFLAGS);
        let cr0 = v.read(GUEST_CR0);
        let paging = cr0 & crate::x86::cr0::PG != 0;
        let segs = [Seg::Es, Seg::Cs, Seg::Ss, Seg::Ds, Seg::Fs, Seg::Gs];
        Frame {
            rip: v.read(GUEST_RIP),
            rsp: v.read(GUEST_RSP),
            rflags,
            bases: segs.map(|s| v.read(s.fields().base)),
            long64: e & efer::LMA != 0 && cs_ar & (1 << 13) != 0,
            default32: cs_ar & (1 << 14) != 0,
            paging: PagingRegs {
                cr0,
                // Without paging the walk needs neither (nor the CPL).
                cr3: if paging { v.read(GUEST_CR3) } else { 0 },
                cr4: if paging { v.read(GUEST_CR4) } else { 0 },
                efer: e,
                rflags,
                pdptes: None,
                maxphyaddr,
                gbpages,
            },
            user: paging && (v.read(Seg::Ss.fields().ar) >> 5) & 3 == 3,
        }
    }

    /// Writes RSP and RFLAGS back (the emulation may change them).
    pub fn write_back<V: VmcsAccess>(&self, v: &V) {
        v.write(GUEST_RSP, self.rsp);
        v.write(GUEST_RFLAGS, self.rflags);
    }

    fn linear_mask(&self) -> u64 {
        if self.long64 {
            u64::MAX
        } else {
            0xffff_ffff
        }
    }
}

/// An emulation in progress, kept in the vCPU between RUNs while userland
/// performs an access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mmio {
    /// The state it works on (written back when it is done).
    pub frame: Frame,
    progress: Progress,
}

/// Where the instruction is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Progress {
    emu: Emulation,
    access: MemAccess,
    /// The access's parts: (guest-physical address, bytes); the second is
    /// used when it crosses a page.
    parts: [(u64, u8); 2],
    nparts: u8,
    /// The part userland has.
    part: u8,
    /// A read's data so far.
    acc: u64,
    /// The page the EPT violation was on: a write there is known not to be
    /// RAM (outside every slot, or a read-only one).
    fault_page: u64,
}

impl Progress {
    /// Where the current part's bytes start in the access's value, in bits
    /// (the parts before it, little-endian).
    fn shift(&self) -> u32 {
        self.parts[..usize::from(self.part)].iter().map(|x| u32::from(x.1)).sum::<u32>() * 8
    }
}

/// What the run loop does next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Userland performs this access (RIP stays); a read completes with
    /// [`resume`] on the next RUN.
    Exit {
        /// Guest-physical address.
        gpa: u64,
        /// 1 to 8 bytes.
        size: u8,
        /// A write.
        write: bool,
        /// A write's data.
        data: u64,
    },
    /// Done: write the frame back and advance RIP by `len`.
    Done {
        /// Instruction length.
        len: u8,
    },
    /// A REP element is done: write the frame back; RIP stays.
    Repeat,
    /// A guest-memory operand faults: deliver this (RIP stays).
    Fault(Exception),
    /// Not decoded or not emulated: userland gets these bytes (RIP stays).
    Raw {
        /// The instruction's first bytes.
        bytes: [u8; 15],
        /// How many.
        len: u8,
    },
}

/// Registers, frame and memory as the emulator sees them.
struct Ctx<'a, M: GuestMem> {
    regs: &'a mut GuestRegs,
    frame: &'a mut Frame,
    mem: &'a mut M,
}

impl<M: GuestMem> Ctx<'_, M> {
    /// The guest-physical address of `linear` for `kind`, or the fault.
    fn gpa(&mut self, linear: u64, kind: AccessKind) -> Result<u64, Outcome> {
        let acc = Access::new(kind, self.frame.user);
        match translate(&mut Phys(&mut *self.mem), &self.frame.paging, linear, acc) {
            Ok(g) => Ok(g),
            Err(WalkError::PageFault { error_code }) => {
                Err(Outcome::Fault(Exception { vector: vector::PF, error_code: Some(error_code), payload: Some(linear) }))
            }
            Err(WalkError::NonCanonical | WalkError::BadPdpte) => {
                Err(Outcome::Fault(Exception { vector: vector::GP, error_code: Some(0), payload: None }))
            }
            // A paging structure outside guest RAM: nothing to emulate
            // with (KVM reports an emulation failure).
            Err(WalkError::Memory) => Err(Outcome::Raw { bytes: [0; 15], len: 0 }),
        }
    }

    /// Copies between `buf` and guest RAM at `linear` (page by page).
    fn ram(&mut self, linear: u64, buf: &mut [u8], write: bool) -> Result<(), NotRam> {
        let mut done = 0;
        while done < buf.len() {
            let lin = linear.wrapping_add(done as u64) & self.frame.linear_mask();
            let n = (buf.len() - done).min((PAGE - lin % PAGE) as usize);
            let kind = if write { AccessKind::Write } else { AccessKind::Read };
            let gpa = self.gpa(lin, kind).map_err(|_| NotRam)?;
            let part = &mut buf[done..done + n];
            let ok = if write { self.mem.write(gpa, part) } else { self.mem.read(gpa, part) };
            if !ok {
                return Err(NotRam);
            }
            done += n;
        }
        Ok(())
    }
}

impl<M: GuestMem> Cpu for Ctx<'_, M> {
    fn gpr(&self, n: u8) -> u64 {
        let mut r = *self.regs;
        r.slot(n).map_or(self.frame.rsp, |v| *v)
    }
    fn set_gpr(&mut self, n: u8, v: u64) {
        match self.regs.slot(n) {
            Some(r) => *r = v,
            None => self.frame.rsp = v,
        }
    }
    fn rip(&self) -> u64 {
        self.frame.rip
    }
    fn rflags(&self) -> u64 {
        self.frame.rflags
    }
    fn set_rflags(&mut self, v: u64) {
        self.frame.rflags = v;
    }
    fn seg_base(&self, seg: Seg) -> u64 {
        match seg {
            Seg::Es => self.frame.bases[0],
            Seg::Cs => self.frame.bases[1],
            Seg::Ss => self.frame.bases[2],
            Seg::Ds => self.frame.bases[3],
            Seg::Fs => self.frame.bases[4],
            Seg::Gs => self.frame.bases[5],
            _ => 0,
        }
    }
    fn read_mem(&mut self, linear: u64, buf: &mut [u8]) -> Result<(), NotRam> {
        self.ram(linear, buf, false)
    }
    fn write_mem(&mut self, linear: u64, buf: &[u8]) -> Result<(), NotRam> {
        let mut tmp = [0u8; 8];
        let n = buf.len().min(8);
        tmp[..n].copy_from_slice(&buf[..n]);
        self.ram(linear, &mut tmp[..n], true)
    }
}

/// Starts emulating the instruction at RIP, whose access faulted as MMIO
/// at `fault_gpa` (`fault_write`: the EPT violation was a write). The
/// emulation is left in `pending`: after `Exit` it waits there for
/// [`resume`]; after `Done` or `Repeat` it is there with the frame to
/// write back (the caller takes it); otherwise `pending` is empty and the
/// frame unchanged. The bytes at RIP are read again after the exit: if
/// their memory operand is not on the page that faulted (another vCPU
/// changed them), they go to userland raw.
pub fn start(
    frame: Frame,
    regs: &mut GuestRegs,
    mem: &mut impl GuestMem,
    fault_gpa: u64,
    fault_write: bool,
    pending: &mut Option<Mmio>,
) -> Outcome {
    *pending = None;
    let mut frame = frame;
    let mut ctx = Ctx { regs, frame: &mut frame, mem };
    // Fetch up to 15 bytes at CS:RIP (two pages at most).
    let mut bytes = [0u8; 15];
    let cs = ctx.seg_base(Seg::Cs);
    let rip_lin = (if ctx.frame.long64 { ctx.frame.rip } else { cs.wrapping_add(ctx.frame.rip) }) & ctx.frame.linear_mask();
    let first = (PAGE - rip_lin % PAGE).min(15) as usize;
    let mut got = 0;
    if let Ok(g) = ctx.gpa(rip_lin, AccessKind::Fetch) {
        if ctx.mem.read(g, &mut bytes[..first]) {
            got = first;
            if first < 15 {
                let lin2 = rip_lin.wrapping_add(first as u64) & ctx.frame.linear_mask();
                if let Ok(g2) = ctx.gpa(lin2, AccessKind::Fetch) {
                    if ctx.mem.read(g2, &mut bytes[first..]) {
                        got = 15;
                    }
                }
            }
        }
    }
    let raw = |got: usize| Outcome::Raw { bytes, len: got as u8 };
    let Ok(insn) = decode(&bytes[..got], Mode { long64: ctx.frame.long64, default32: ctx.frame.default32 }) else {
        return raw(got);
    };
    let Ok((emu, step)) = Emulation::start(insn, &mut ctx, fault_write) else {
        return raw(got);
    };
    let access = MemAccess { linear: 0, size: 0, write: false, data: 0 };
    let mut progress = Progress { emu, access, parts: [(0, 0); 2], nparts: 0, part: 0, acc: 0, fault_page: fault_gpa >> 12 };
    match drive(&mut progress, &mut ctx, step, Some(fault_gpa)) {
        out @ (Outcome::Exit { .. } | Outcome::Done { .. } | Outcome::Repeat) => {
            *pending = Some(Mmio { frame, progress });
            out
        }
        Outcome::Raw { .. } => raw(got),
        out @ Outcome::Fault(_) => out,
    }
}

/// Continues the emulation in `pending` that userland answered: `data` is
/// a read's value. As [`start`] for what `pending` holds after.
pub fn resume(regs: &mut GuestRegs, mem: &mut impl GuestMem, data: u64, pending: &mut Option<Mmio>) -> Outcome {
    let Some(Mmio { frame, progress: p }) = pending.as_mut() else { return Outcome::Raw { bytes: [0; 15], len: 0 } };
    let mut ctx = Ctx { regs, frame, mem };
    let len = p.parts[usize::from(p.part)].1;
    let shift = p.shift();
    if !p.access.write {
        p.acc |= (data & mask(len)) << shift;
    }
    p.part += 1;
    let out = perform(p, &mut ctx);
    if matches!(out, Outcome::Raw { .. } | Outcome::Fault(_)) {
        *pending = None;
    }
    out
}

/// Runs the emulation from `step` until it needs userland or ends;
/// `fault_gpa`: the first access must touch that page.
fn drive<M: GuestMem>(p: &mut Progress, ctx: &mut Ctx<'_, M>, step: Step, fault_gpa: Option<u64>) -> Outcome {
    match step {
        Step::Done => Outcome::Done { len: p.emu.insn_len() },
        Step::Repeat => Outcome::Repeat,
        Step::Access(a) => {
            p.access = a;
            p.acc = 0;
            p.part = 0;
            let kind = if a.write { AccessKind::Write } else { AccessKind::Read };
            let n1 = u64::from(a.size).min(PAGE - a.linear % PAGE) as u8;
            let g1 = match ctx.gpa(a.linear, kind) {
                Ok(g) => g,
                Err(o) => return o,
            };
            p.parts[0] = (g1, n1);
            p.nparts = 1;
            if n1 < a.size {
                let lin2 = a.linear.wrapping_add(u64::from(n1)) & ctx.frame.linear_mask();
                let g2 = match ctx.gpa(lin2, kind) {
                    Ok(g) => g,
                    Err(o) => return o,
                };
                p.parts[1] = (g2, a.size - n1);
                p.nparts = 2;
            }
            if let Some(f) = fault_gpa {
                let page = |g: u64| g >> 12;
                if p.parts[..usize::from(p.nparts)].iter().all(|x| page(x.0) != page(f)) {
                    return Outcome::Raw { bytes: [0; 15], len: 0 };
                }
            }
            perform(p, ctx)
        }
    }
}

/// Performs the access's parts from `p.part` on: RAM ones here, an MMIO
/// one by an exit to userland; when all are done, the emulation goes on.
fn perform<M: GuestMem>(p: &mut Progress, ctx: &mut Ctx<'_, M>) -> Outcome {
    while p.part < p.nparts {
        let (gpa, len) = p.parts[usize::from(p.part)];
        let shift = p.shift();
        let n = usize::from(len);
        let mut buf = [0u8; 8];
        let data = (p.access.data >> shift) & mask(len);
        let in_ram = if p.access.write {
            buf = data.to_le_bytes();
            gpa >> 12 != p.fault_page && ctx.mem.write(gpa, &buf[..n])
        } else {
            ctx.mem.read(gpa, &mut buf[..n])
        };
        if !in_ram {
            let data = if p.access.write { data } else { 0 };
            return Outcome::Exit { gpa, size: len, write: p.access.write, data };
        }
        if !p.access.write {
            p.acc |= u64::from_le_bytes(buf) << shift;
        }
        p.part += 1;
    }
    let step = p.emu.complete(ctx, p.acc);
    drive(p, ctx, step, None)
}

/// The low `bytes` bytes.
const fn mask(bytes: u8) -> u64 {
    if bytes >= 8 {
        u64::MAX
    } else {
        (1u64 << (bytes as u32 * 8)) - 1
    }
}
