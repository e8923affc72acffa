// SPDX-License-Identifier: GPL-2.0
//! IN and OUT (pure logic): each goes to userland. An OUT is complete when
//! reported; an IN completes on the next entry with the data userland left
//! in the exit record ([`complete_in`]). INS and OUTS (and their REP
//! forms) move their elements in batches through the run record's data
//! area (strio.rs, with the run loop).

use super::strio::{self, StrExit};
use super::{CpuState, Exit, Next, PendingIn, UserExit};
use crate::x86::paging::PagingRegs;
use crate::x86::{efer, rflags};
use crate::vmcs::field::*;
use crate::vmx::exit_info::{in_result, IoQual};

pub(super) fn handle<V: VmcsAccess>(x: &mut Exit<'_, V>) -> Next {
    let qual = x.v.read(EXIT_QUALIFICATION);
    let Some(q) = IoQual::decode(qual) else { return x.unhandled() };
    if q.string {
        return string(x, qual);
    }
    if q.rep {
        return x.unhandled();
    }
    let data = if q.is_in {
        x.keep_rip();
        x.cpu.pending_in = Some(PendingIn { size: q.size, len: x.v.read(EXIT_INSTRUCTION_LENGTH).into() });
        0
    } else {
        x.cpu.regs.rax & q.mask()
    };
    Next::ToUser(UserExit::Io { is_in: q.is_in, size: q.size, port: q.port, data })
}

/// INS/OUTS: what the run loop needs to move the data (strio.rs), from
/// the VMCS. 64-bit mode is IA32_EFER.LMA with CS.L (SDM Vol. 3A 3.4.4).
fn string<V: VmcsAccess>(x: &mut Exit<'_, V>, qual: u64) -> Next {
    let v = x.v;
    let cs_l = v.read(Seg::Cs.fields().ar) & (1 << 13) != 0;
    let efer = v.read(GUEST_IA32_EFER);
    let mode64 = cs_l && efer & efer::LMA != 0;
    let info = v.read(EXIT_INSTRUCTION_INFO);
    let Some(s) = strio::decode(qual, info, mode64) else { return x.unhandled() };
    x.keep_rip();
    let rflags = v.read(GUEST_RFLAGS);
    let paging = PagingRegs {
        cr0: v.read(GUEST_CR0),
        cr3: v.read(GUEST_CR3),
        cr4: v.read(GUEST_CR4),
        efer,
        rflags,
        pdptes: None,
        maxphyaddr: x.env.maxphyaddr,
        gbpages: x.env.gbpages,
    };
    Next::StringIo(StrExit {
        s,
        df: rflags & rflags::DF != 0,
        seg_base: v.read(s.seg.fields().base),
        paging,
        user: (v.read(Seg::Ss.fields().ar) >> 5) & 3 == 3,
        len: v.read(EXIT_INSTRUCTION_LENGTH).into(),
        qual,
        info,
    })
}

/// Finishes a pending IN with userland's `data` (if one is pending): RAX
/// gets it as IN writes it, and RIP moves past the instruction.
pub fn complete_in<V: VmcsAccess>(v: &V, cpu: &mut CpuState, data: u64) {
    if let Some(p) = cpu.pending_in.take() {
        cpu.regs.rax = in_result(cpu.regs.rax, p.size, data);
        super::skip_instruction(v, cpu, p.len);
    }
}
