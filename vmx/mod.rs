// SPDX-License-Identifier: GPL-2.0
//! The CPU side of VMX: can this CPU do it, and the instructions themselves.

pub(crate) mod insn;

use kernel::prelude::*;

/// IA32_FEATURE_CONTROL (SDM Vol. 3C 24.7, "Enabling and Entering VMX Operation").
pub(crate) const MSR_IA32_FEATURE_CONTROL: u32 = 0x3a;
const FEATURE_CONTROL_LOCKED: u64 = 1 << 0;
const FEATURE_CONTROL_VMX_OUTSIDE_SMX: u64 = 1 << 2;

/// Refuses (with a message naming the reason) on CPUs that cannot run VMX.
pub(crate) fn check_cpu() -> Result {
    // CPUID.1:ECX.VMX[bit 5] (SDM Vol. 3C 24.6, "Discovering Support for VMX").
    if insn::cpuid(1, 0).ecx & (1 << 5) == 0 {
        pr_err!("this CPU has no VMX (CPUID.1:ECX.VMX[bit 5] = 0); not loading\n");
        return Err(ENODEV);
    }
    // The MSR exists whenever CPUID reports VMX (SDM Vol. 4, Table 2-2).
    let fc = insn::rdmsr(MSR_IA32_FEATURE_CONTROL);
    if fc & FEATURE_CONTROL_LOCKED != 0 && fc & FEATURE_CONTROL_VMX_OUTSIDE_SMX == 0 {
        pr_err!("VMX is disabled by the firmware (IA32_FEATURE_CONTROL locked with bit 2 clear); enable VT-x in the BIOS\n");
        return Err(Error::from_errno(-(kernel::bindings::EOPNOTSUPP as i32)));
    }
    Ok(())
}
