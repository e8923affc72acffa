// SPDX-License-Identifier: GPL-2.0
//! Thin wrappers over the privileged instructions rvmx uses. Each is a small
//! `unsafe` block whose conditions are stated next to it. VMX instructions
//! that can fault live in vmx.S, with exception-table fixups.

use core::arch::asm;

// vmx/vmx.S, preprocessed by Kbuild (see Kbuild) into gen/vmx.s.
core::arch::global_asm!(include_str!("../gen/vmx.s"), options(att_syntax));

extern "C" {
    fn rvmx_vmxon(region_pa: *const u64) -> i32;
    fn rvmx_vmxoff() -> i32;
}

/// How a VMX instruction ended (SDM Vol. 3C 31.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum VmxFail {
    /// VMfailInvalid: CF = 1 (no current VMCS, or a bad pointer).
    Invalid,
    /// VMfailValid: ZF = 1; the VM-instruction error field says why.
    Valid,
    /// The instruction faulted (#UD, #GP): not in VMX operation, or a bad
    /// operand; the fault was absorbed by the exception table.
    Fault,
}

fn result(code: i32) -> Result<(), VmxFail> {
    match code {
        0 => Ok(()),
        1 => Err(VmxFail::Invalid),
        2 => Err(VmxFail::Valid),
        _ => Err(VmxFail::Fault),
    }
}

/// VMXON with the region at physical address `pa`.
pub(crate) fn vmxon(pa: u64) -> Result<(), VmxFail> {
    // SAFETY: VMXON only reads the 8-byte operand; a fault in it is caught by
    // the exception table and reported as `Fault`.
    result(unsafe { rvmx_vmxon(&pa) })
}

/// VMXOFF.
pub(crate) fn vmxoff() -> Result<(), VmxFail> {
    // SAFETY: takes no operand; outside VMX operation the #UD is caught by
    // the exception table and reported as `Fault`.
    result(unsafe { rvmx_vmxoff() })
}

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
    // CPUID or the VMX capability MSRs (each call site says which rule);
    // RDMSR then only reads.
    unsafe { asm!("rdmsr", in("ecx") msr, out("eax") lo, out("edx") hi, options(nomem, nostack, preserves_flags)) };
    (u64::from(hi) << 32) | u64::from(lo)
}

/// Writes IA32_FEATURE_CONTROL, the one MSR rvmx writes outside a VMCS.
pub(crate) fn wrmsr_feature_control(v: u64) {
    // SAFETY: the MSR exists when CPUID reports VMX (checked at load) and the
    // caller only sets the lock and VMX-enable bits while it is unlocked,
    // which the SDM allows (Vol. 3C 24.7).
    unsafe {
        asm!("wrmsr", in("ecx") super::MSR_IA32_FEATURE_CONTROL, in("eax") v as u32,
             in("edx") (v >> 32) as u32, options(nomem, nostack, preserves_flags))
    };
}

/// Reads CR0.
pub(crate) fn read_cr0() -> u64 {
    let v: u64;
    // SAFETY: reading CR0 has no side effect at CPL 0.
    unsafe { asm!("mov {}, cr0", out(reg) v, options(nomem, nostack, preserves_flags)) };
    v
}

/// Reads CR4 (the register itself, not the kernel's shadow).
pub(crate) fn read_cr4() -> u64 {
    let v: u64;
    // SAFETY: reading CR4 has no side effect at CPL 0.
    unsafe { asm!("mov {}, cr4", out(reg) v, options(nomem, nostack, preserves_flags)) };
    v
}
