// SPDX-License-Identifier: GPL-2.0
//! The guest's state after RESET (pure logic): a real-mode guest that
//! starts at F000:FFF0 (SDM Vol. 3A 10.1.1, Table 10-1).

use super::field::*;
use crate::vmx::exit::cr::{cr0_hw, cr4_hw};
use crate::x86::{ar, cr0, rflags};

/// CR0 after reset as the guest sees it: CD, NW and ET.
pub const RESET_CR0: u64 = cr0::CD | cr0::NW | cr0::ET;

/// Writes the reset state into the current VMCS.
pub fn reset_guest<V: VmcsAccess>(v: &V) {
    for s in Seg::ALL {
        let f = s.fields();
        let (selector, base, rights) = match s {
            Seg::Cs => (0xf000, 0xffff_0000, ar::CODE),
            Seg::Ldtr => (0, 0, ar::LDT),
            Seg::Tr => (0, 0, ar::TSS_BUSY),
            _ => (0, 0, ar::DATA),
        };
        v.write(f.selector, selector);
        v.write(f.base, base);
        v.write(f.limit, 0xffff);
        v.write(f.ar, rights);
    }
    for (f, val) in [(GUEST_GDTR_LIMIT, 0xffff), (GUEST_IDTR_LIMIT, 0xffff)] {
        v.write(f, val);
    }
    // 64-bit and natural-width fields. The guest reads CR0 and CR4 from the
    // shadows; the host-owned bits are forced underneath.
    let wide = [
        (GUEST_GDTR_BASE, 0),
        (GUEST_IDTR_BASE, 0),
        (CR0_READ_SHADOW, RESET_CR0),
        (GUEST_CR0, cr0_hw(RESET_CR0)),
        (CR4_READ_SHADOW, 0),
        (GUEST_CR4, cr4_hw(0)),
        (GUEST_CR3, 0),
        (GUEST_DR7, 0x400),
        (GUEST_RSP, 0),
        (GUEST_RIP, 0xfff0),
        (GUEST_RFLAGS, rflags::FIXED),
        (GUEST_IA32_EFER, 0),
        (GUEST_IA32_PAT, 0x0007_0406_0007_0406),
        (GUEST_IA32_DEBUGCTL, 0),
        (GUEST_SYSENTER_ESP, 0),
        (GUEST_SYSENTER_EIP, 0),
        (GUEST_PENDING_DBG_EXCEPTIONS, 0),
        // No shadow VMCS: the link pointer must be all ones (SDM Vol. 3C 27.3.1.5).
        (VMCS_LINK_POINTER, u64::MAX),
    ];
    for (f, val) in wide {
        v.write(f, val);
    }
    for (f, val) in [(GUEST_SYSENTER_CS, 0), (GUEST_INTERRUPTIBILITY, 0), (GUEST_ACTIVITY_STATE, 0)] {
        v.write(f, val);
    }
}
