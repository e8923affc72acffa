// SPDX-License-Identifier: GPL-2.0
//! The CPU side of VMX: capabilities, VMX operation on every CPU, and the
//! instructions themselves.

#[allow(dead_code, unreachable_pub)]
pub(crate) mod caps;
pub(crate) mod cpu;
#[allow(dead_code, unreachable_pub)]
pub(crate) mod entry_check;
#[allow(unreachable_pub)]
pub(crate) mod cpuid;
pub(crate) mod exit;
#[allow(dead_code, unreachable_pub)]
pub(crate) mod exit_info;
pub(crate) mod insn;
pub(crate) mod run;

use caps::{msr, RawCaps};
use kernel::prelude::*;

/// IA32_FEATURE_CONTROL (SDM Vol. 3C 24.7, "Enabling and Entering VMX Operation").
pub(crate) const MSR_IA32_FEATURE_CONTROL: u32 = 0x3a;
const FEATURE_CONTROL_LOCKED: u64 = 1 << 0;
const FEATURE_CONTROL_VMX_OUTSIDE_SMX: u64 = 1 << 2;

/// Refuses (with a message naming the reason) on CPUs that cannot run VMX
/// or lack what rvmx needs; returns this CPU's capabilities otherwise.
pub(crate) fn check_cpu() -> Result<RawCaps> {
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
    let caps = read_caps();
    let missing = caps.missing();
    if !missing.is_empty() {
        pr_err!("this CPU lacks VMX features rvmx needs:\n");
        for name in missing.names() {
            pr_err!("  missing: {}\n", name);
        }
        return Err(ENODEV);
    }
    Ok(caps)
}

/// Reads this CPU's VMX capability MSRs, each only where the SDM says it
/// exists (Vol. 3D Appendix A); absent ones read as zero.
pub(crate) fn read_caps() -> RawCaps {
    let r = insn::rdmsr;
    let basic = r(msr::BASIC);
    let proc = r(msr::PROCBASED);
    let has_true = caps::has_true_msrs(basic);
    let proc2 = if caps::has_proc2(proc) { r(msr::PROCBASED2) } else { 0 };
    RawCaps {
        basic,
        pin: r(msr::PINBASED),
        proc,
        proc2,
        exit: r(msr::EXIT),
        entry: r(msr::ENTRY),
        true_pin: if has_true { r(msr::TRUE_PINBASED) } else { 0 },
        true_proc: if has_true { r(msr::TRUE_PROCBASED) } else { 0 },
        true_exit: if has_true { r(msr::TRUE_EXIT) } else { 0 },
        true_entry: if has_true { r(msr::TRUE_ENTRY) } else { 0 },
        misc: r(msr::MISC),
        cr0_fixed0: r(msr::CR0_FIXED0),
        cr0_fixed1: r(msr::CR0_FIXED1),
        cr4_fixed0: r(msr::CR4_FIXED0),
        cr4_fixed1: r(msr::CR4_FIXED1),
        ept_vpid: if caps::has_ept_vpid_cap(proc2) { r(msr::EPT_VPID_CAP) } else { 0 },
    }
}
