// SPDX-License-Identifier: GPL-2.0
//! The CPU side of VMX: capabilities, VMX operation on every CPU, the
//! instructions, the entry/exit stub, the run loop and the exit handlers.
//! Pure files (no `kernel` crate, host-tested): `caps`, `cpuid`,
//! `entry_check`, `exit/`, `exit_info`, `mitigation`, `msr`, `regs`.

#[allow(unreachable_pub)] // pure: `pub` for the host crate (hosttest/)
pub(crate) mod caps;
pub(crate) mod cpu;
#[allow(unreachable_pub)] // pure: `pub` for the host crate (hosttest/)
pub(crate) mod cpuid;
#[allow(unreachable_pub)] // pure: `pub` for the host crate (hosttest/)
pub(crate) mod entry_check;
#[allow(unreachable_pub)] // pure: `pub` for the host crate (hosttest/)
pub(crate) mod exit;
#[allow(unreachable_pub)] // pure: `pub` for the host crate (hosttest/)
pub(crate) mod exit_info;
pub(crate) mod insn;
#[allow(unreachable_pub)] // pure: `pub` for the host crate (hosttest/)
pub(crate) mod mitigation;
#[allow(unreachable_pub)] // pure: `pub` for the host crate (hosttest/)
pub(crate) mod msr;
#[allow(unreachable_pub)] // pure: `pub` for the host crate (hosttest/)
pub(crate) mod regs;
pub(crate) mod run;

use crate::x86::feature_control::{self, Verdict};
use caps::RawCaps;
use insn::HostMsr;
use kernel::prelude::*;

/// Refuses (with a message naming the reason) on CPUs that cannot run VMX
/// or lack what rvmx needs; returns this CPU's capabilities otherwise.
pub(crate) fn check_cpu() -> Result<RawCaps> {
    // CPUID.1:ECX.VMX[bit 5] (SDM Vol. 3C 24.6, "Discovering Support for VMX").
    if insn::cpuid(1, 0)[2] & cpuid::leaf1_ecx::VMX == 0 {
        pr_err!("this CPU has no VMX (CPUID.1:ECX.VMX[bit 5] = 0); not loading\n");
        return Err(ENODEV);
    }
    check_feature_control(None)?;
    let caps = insn::read_vmx_caps();
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

/// Whether the firmware lets this CPU use VMX (IA32_FEATURE_CONTROL, SDM
/// Vol. 3C 24.7); `lock` (with interrupts off, on the CPU itself) also
/// enables and locks it where the firmware left it unlocked.
pub(crate) fn check_feature_control(lock: Option<&crate::kapi::IrqsOff>) -> Result {
    // The MSR exists whenever CPUID reports VMX (SDM Vol. 4, Table 2-2).
    let v = match lock {
        Some(_) => insn::lock_feature_control(),
        None => feature_control::verdict(insn::rdmsr(HostMsr::FeatureControl)),
    };
    match v {
        Verdict::Allowed | Verdict::Lock(_) => Ok(()),
        Verdict::Disabled => {
            pr_err!("VMX is disabled by the firmware (IA32_FEATURE_CONTROL locked with bit 2 clear); enable VT-x in the BIOS\n");
            Err(Error::from_errno(-(kernel::bindings::EOPNOTSUPP as i32)))
        }
    }
}
