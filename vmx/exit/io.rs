// SPDX-License-Identifier: GPL-2.0
//! IN and OUT (pure logic): each goes to userland. An OUT is complete when
//! reported; an IN completes on the next entry with the data userland left
//! in the exit record ([`complete_in`]). String and REP forms go to
//! userland raw (not emulated yet).

use super::{advance_rip, CpuState, Exit, Next, PendingIn, UserExit};
use crate::vmcs::field::*;
use crate::vmx::exit_info::{in_result, IoQual};

pub(super) fn handle<V: VmcsAccess>(x: &mut Exit<'_, V>) -> Next {
    let Some(q) = IoQual::decode(x.v.read(EXIT_QUALIFICATION)) else { return x.unhandled() };
    if q.string || q.rep {
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

/// Finishes a pending IN with userland's `data` (if one is pending): RAX
/// gets it as IN writes it, and RIP moves past the instruction.
pub fn complete_in<V: VmcsAccess>(v: &V, cpu: &mut CpuState, data: u64) {
    if let Some(p) = cpu.pending_in.take() {
        cpu.regs.rax = in_result(cpu.regs.rax, p.size, data);
        advance_rip(v, p.len);
    }
}
