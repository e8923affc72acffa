// SPDX-License-Identifier: GPL-2.0
//! MOV to and from control registers that exit (pure logic): writes to
//! CR0/CR4 that touch host-owned bits, and every CR8 access (SDM Vol. 3C
//! 26.1.3, 25.6.6).

use super::{Exit, Next};
use crate::vmcs::field::*;
use crate::vmx::caps::entry;
use crate::vmx::exit_info::{CrAccess, IntrInfo};
use crate::x86::{cr0, cr4, efer, vector};

/// CR0 bits the host owns: NE must be 1 in VMX operation (the FIXED0 MSR);
/// the guest reads its own value from the read shadow (SDM Vol. 3C 25.6.6).
/// PE and PG are free with unrestricted guest.
pub const CR0_HOST_OWNED: u64 = cr0::NE;
/// CR4 bits the host owns: VMXE, likewise.
pub const CR4_HOST_OWNED: u64 = cr4::VMXE;

pub(super) fn handle<V: VmcsAccess>(x: &mut Exit<'_, V>) -> Next {
    let gp = IntrInfo::exception(vector::GP, true);
    match CrAccess::decode(x.v.read(EXIT_QUALIFICATION)) {
        CrAccess::MovTo { cr: 0, gpr } => {
            let new = x.gpr(gpr);
            let old = x.v.read(GUEST_CR0);
            if write_cr0(x.v, new).is_err() {
                return x.inject(gp);
            }
            // Paging or write protection changed: the CPU would have
            // flushed the TLB (SDM Vol. 3A 4.10.4.1; KVM resets its MMU on
            // these bits).
            if (old ^ new) & (cr0::PG | cr0::WP) != 0 {
                x.cpu.flush_tlb = true;
            }
        }
        CrAccess::MovTo { cr: 4, gpr } => {
            let new = x.gpr(gpr);
            // VMXE: no VMX for guests (CPUID says so too).
            if new & CR4_HOST_OWNED != 0 {
                return x.inject(gp);
            }
            x.v.write(CR4_READ_SHADOW, new);
            x.v.write(GUEST_CR4, new | CR4_HOST_OWNED);
        }
        CrAccess::MovTo { cr: 8, gpr } => {
            let new = x.gpr(gpr);
            // Bits 63:4 of CR8 are reserved (SDM Vol. 3A 2.5).
            if new > 15 {
                return x.inject(gp);
            }
            x.cpu.cr8 = new;
        }
        CrAccess::MovFrom { cr: 8, gpr } => {
            let cr8 = x.cpu.cr8;
            x.set_gpr(gpr, cr8);
        }
        _ => return x.unhandled(),
    }
    Next::Resume
}

/// The guest writes `new` to CR0: #GP (`Err`) for reserved bits 63:32 or
/// PG without PE (SDM Vol. 3A 2.5); paging switched on or off with
/// EFER.LME set switches IA-32e mode, so EFER.LMA and the "IA-32e mode
/// guest" entry control follow (SDM Vol. 3A 10.8.5).
pub fn write_cr0<V: VmcsAccess>(v: &V, new: u64) -> Result<(), ()> {
    if new >> 32 != 0 || (new & cr0::PG != 0 && new & cr0::PE == 0) {
        return Err(());
    }
    let old = v.read(GUEST_CR0);
    let e = v.read(GUEST_IA32_EFER);
    if e & efer::LME != 0 && (old ^ new) & cr0::PG != 0 {
        let on = new & cr0::PG != 0;
        v.write(GUEST_IA32_EFER, if on { e | efer::LMA } else { e & !efer::LMA });
        set_ia32e(v, on);
    }
    v.write(CR0_READ_SHADOW, new);
    v.write(GUEST_CR0, new | CR0_HOST_OWNED);
    Ok(())
}

/// Sets or clears the "IA-32e mode guest" entry control, which must equal
/// EFER.LMA on entry (SDM Vol. 3C 27.3.1.1).
pub fn set_ia32e<V: VmcsAccess>(v: &V, on: bool) {
    let ctl = v.read(ENTRY_CONTROLS);
    v.write(ENTRY_CONTROLS, if on { ctl | entry::IA32E_GUEST } else { ctl & !entry::IA32E_GUEST });
}
