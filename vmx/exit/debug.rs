// SPDX-License-Identifier: GPL-2.0
//! Debug registers and #DB (pure logic). MOV DR exits until the guest
//! first uses a debug register; then the guest owns DR0-DR3 and DR6 (the
//! run loop puts them in the CPU) and MOV DR runs natively until the next
//! exit, which saves them and turns MOV-DR exiting on again (KVM's
//! lazy switch). #DB always exits (the CPU leaves DR6 alone then, SDM
//! Vol. 3C 28.1): its bits are merged into the guest's DR6 and the
//! exception goes back to the guest.

use super::event::{self, Exception};
use super::{Exit, Next};
use crate::vmcs::field::*;
use crate::vmx::caps::proc;
use crate::vmx::exit_info::{interruptibility as blocking, IntrInfo, INTR_TYPE_PRIV_SOFT_EXCEPTION};
use crate::x86::{dr, rflags, vector};

/// MOV to or from a debug register: the guest takes the registers over
/// and the instruction runs again natively (RIP stays). The CPU checked
/// CPL and CR4.DE before the exit (SDM Vol. 3C 26.1.1).
pub(super) fn mov_dr<V: VmcsAccess>(x: &mut Exit<'_, V>) -> Next {
    let ctl = x.v.read(PROC_BASED_CONTROLS);
    x.v.write(PROC_BASED_CONTROLS, ctl & !proc::MOV_DR);
    x.cpu.debug_owned = true;
    x.keep_rip();
    Next::Resume
}

/// After an exit while the guest owned the debug registers (the run loop
/// saved them): MOV DR exits again.
pub fn reclaim<V: VmcsAccess>(v: &V) {
    let ctl = v.read(PROC_BASED_CONTROLS);
    v.write(PROC_BASED_CONTROLS, ctl | proc::MOV_DR);
}

/// A #DB in the guest. The exit qualification has the DR6 bits (SDM Vol.
/// 3C 28.2.1, Table 28-1); ICEBP (INT1) exits on the instruction itself,
/// so it is stepped over first; single-step under STI or MOV-SS blocking
/// stays pending as the CPU does not record it on this exit (27.3.1.5).
pub(super) fn debug_exception<V: VmcsAccess>(x: &mut Exit<'_, V>, info: IntrInfo) -> Next {
    let payload = x.v.read(EXIT_QUALIFICATION) & dr::DB_PAYLOAD;
    x.keep_rip();
    if info.kind() == INTR_TYPE_PRIV_SOFT_EXCEPTION {
        super::advance_rip(x.v, x.v.read(EXIT_INSTRUCTION_LENGTH).into());
    } else if x.v.read(GUEST_RFLAGS) & rflags::TF != 0
        && x.v.read(GUEST_INTERRUPTIBILITY) & (blocking::STI | blocking::MOV_SS) != 0
    {
        let p = x.v.read(GUEST_PENDING_DBG_EXCEPTIONS);
        x.v.write(GUEST_PENDING_DBG_EXCEPTIONS, p | dr::DR6_BS);
    }
    let e = Exception { vector: vector::DB, error_code: None, payload: Some(payload) };
    if x.cpu.injecting {
        // An event interrupted by this #DB goes first; the #DB waits.
        x.cpu.events.exception.get_or_insert(e);
    } else {
        x.cpu.dr6 = event::merge_dr6(x.cpu.dr6, payload);
        event::inject_exception(x.v, x.cpu, vector::DB, None);
    }
    Next::Resume
}
