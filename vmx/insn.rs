// SPDX-License-Identifier: GPL-2.0
//! Thin wrappers over the privileged instructions rvmx uses. Each is a small
//! `unsafe` block whose conditions are stated next to it.

use core::arch::asm;

/// The result of CPUID.
#[derive(Clone, Copy)]
pub(crate) struct Cpuid {
    #[allow(dead_code)]
    pub(crate) eax: u32,
    #[allow(dead_code)]
    pub(crate) ebx: u32,
    pub(crate) ecx: u32,
    #[allow(dead_code)]
    pub(crate) edx: u32,
}

/// CPUID with the given leaf and subleaf.
pub(crate) fn cpuid(leaf: u32, subleaf: u32) -> Cpuid {
    // SAFETY: CPUID is available on every x86-64 CPU and has no side effect
    // beyond writing the four registers.
    let r = unsafe { core::arch::x86_64::__cpuid_count(leaf, subleaf) };
    Cpuid { eax: r.eax, ebx: r.ebx, ecx: r.ecx, edx: r.edx }
}

/// Reads an MSR that the caller knows to exist (a missing MSR faults).
pub(crate) fn rdmsr(msr: u32) -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: callers pass only MSRs whose existence they checked through
    // CPUID (each call site says which rule); RDMSR then only reads.
    unsafe { asm!("rdmsr", in("ecx") msr, out("eax") lo, out("edx") hi, options(nomem, nostack, preserves_flags)) };
    (u64::from(hi) << 32) | u64::from(lo)
}
