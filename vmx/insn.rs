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
    fn rvmx_vmclear(vmcs_pa: *const u64) -> i32;
    fn rvmx_vmptrld(vmcs_pa: *const u64) -> i32;
    fn rvmx_invept(kind: u64, desc: *const [u64; 2]) -> i32;
    fn rvmx_invvpid(kind: u64, desc: *const [u64; 2]) -> i32;
    fn rvmx_vmrun(gprs: *mut [u64; 16], launched: i32) -> i32;
    /// The VM-exit label in vmx.S (HOST_RIP); never called.
    pub(crate) fn rvmx_vmexit();
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

/// VMCLEAR the VMCS at `pa`: written back to memory, inactive, launch
/// state "clear" (SDM Vol. 3C 25.1, 25.11.3).
pub(crate) fn vmclear(pa: u64) -> Result<(), VmxFail> {
    // SAFETY: reads only the operand; faults are absorbed (see vmx.S).
    result(unsafe { rvmx_vmclear(&pa) })
}

/// VMPTRLD: make the VMCS at `pa` current on this CPU.
pub(crate) fn vmptrld(pa: u64) -> Result<(), VmxFail> {
    // SAFETY: reads only the operand; faults are absorbed (see vmx.S).
    result(unsafe { rvmx_vmptrld(&pa) })
}

/// VMPTRST: the current VMCS's address (all ones when none).
pub(crate) fn vmptrst() -> u64 {
    let mut pa: u64 = !0;
    // SAFETY: writes 8 bytes to `pa`. Callers run with VMX on (CR4.VMXE
    // checked first, interrupts off), so it cannot #UD.
    unsafe { asm!("vmptrst ({})", in(reg) &mut pa, options(att_syntax, nostack)) };
    pa
}

/// INVEPT type 1 (single context): drop the cached translations derived
/// from `eptp` on this CPU (SDM Vol. 3C 29.4.3.1).
pub(crate) fn invept_single(eptp: u64) -> Result<(), VmxFail> {
    let desc = [eptp, 0];
    // SAFETY: reads the 16-byte descriptor; faults are absorbed.
    result(unsafe { rvmx_invept(1, &desc) })
}

/// INVEPT type 2 (all contexts) on this CPU.
pub(crate) fn invept_all() -> Result<(), VmxFail> {
    let desc = [0, 0];
    // SAFETY: as above.
    result(unsafe { rvmx_invept(2, &desc) })
}

/// INVVPID type 1 (single context) for `vpid` on this CPU.
pub(crate) fn invvpid_single(vpid: u16) -> Result<(), VmxFail> {
    let desc = [u64::from(vpid), 0];
    // SAFETY: reads the 16-byte descriptor; faults are absorbed.
    result(unsafe { rvmx_invvpid(1, &desc) })
}

/// INVVPID type 2 (all contexts but VPID 0) on this CPU.
pub(crate) fn invvpid_all() -> Result<(), VmxFail> {
    let desc = [0, 0];
    // SAFETY: as above.
    result(unsafe { rvmx_invvpid(2, &desc) })
}

/// VMREAD from the current VMCS.
pub(crate) fn vmread(field: u32) -> Result<u64, VmxFail> {
    let value: u64;
    let (fail, inval): (u8, u8);
    // SAFETY: only called with a current VMCS on this CPU and interrupts
    // off (the run loop and `Vmcs::with_loaded` guarantee it), so VMREAD
    // cannot fault; a bad field gives VMfail, reported through `ok`.
    unsafe {
        asm!("vmread {v}, {f}", "setbe {fail}", "setc {inval}", f = in(reg) u64::from(field), v = out(reg) value,
             fail = out(reg_byte) fail, inval = out(reg_byte) inval, options(nostack))
    };
    match (fail, inval) {
        (0, _) => Ok(value),
        (_, 0) => Err(VmxFail::Valid),
        _ => Err(VmxFail::Invalid),
    }
}

/// VMWRITE to the current VMCS.
pub(crate) fn vmwrite(field: u32, value: u64) -> Result<(), VmxFail> {
    let ok: u8;
    // SAFETY: as for `vmread`; VMWRITE changes only the current VMCS.
    unsafe {
        asm!("vmwrite {f}, {v}", "seta {ok}", f = in(reg) u64::from(field), v = in(reg) value,
             ok = out(reg_byte) ok, options(nostack))
    };
    if ok != 0 { Ok(()) } else { Err(VmxFail::Valid) }
}

/// Enters the guest (vmx.S); 0 after a VM exit, else a `VmxFail` code.
pub(crate) fn vmrun(gprs: &mut [u64; 16], launched: bool) -> Result<(), VmxFail> {
    // SAFETY: the run loop calls this with interrupts off, the vCPU's VMCS
    // current and fully set up (host state, HOST_RIP = rvmx_vmexit); the
    // stub saves and restores every callee-saved register and touches
    // only `gprs` and its own stack frame.
    result(unsafe { rvmx_vmrun(gprs, i32::from(launched)) })
}

/// Writes an MSR the host owns and the caller checked exists.
pub(crate) fn wrmsr(msr: u32, v: u64) {
    // SAFETY: callers only restore values read from the same MSR on this
    // CPU (IA32_KERNEL_GS_BASE), which is always writable.
    unsafe {
        asm!("wrmsr", in("ecx") msr, in("eax") v as u32, in("edx") (v >> 32) as u32,
             options(nomem, nostack, preserves_flags))
    };
}

/// Reads CR2.
pub(crate) fn read_cr2() -> u64 {
    let v: u64;
    // SAFETY: reading CR2 has no side effect.
    unsafe { asm!("mov {}, cr2", out(reg) v, options(nomem, nostack, preserves_flags)) };
    v
}

/// Writes CR2 (the guest's value, before entry; interrupts off).
pub(crate) fn write_cr2(v: u64) {
    // SAFETY: CR2 only reports the last page-fault address; the host reads
    // it only at page-fault entry, which sets it first.
    unsafe { asm!("mov cr2, {}", in(reg) v, options(nomem, nostack, preserves_flags)) };
}

/// Reads CR3.
pub(crate) fn read_cr3() -> u64 {
    let v: u64;
    // SAFETY: reading CR3 has no side effect.
    unsafe { asm!("mov {}, cr3", out(reg) v, options(nomem, nostack, preserves_flags)) };
    v
}

/// The GDTR or IDTR: (base, limit).
pub(crate) fn sgdt() -> (u64, u16) {
    let mut d = [0u8; 10];
    // SAFETY: stores 10 bytes into `d`.
    unsafe { asm!("sgdt [{}]", in(reg) d.as_mut_ptr(), options(nostack, preserves_flags)) };
    (u64::from_le_bytes([d[2], d[3], d[4], d[5], d[6], d[7], d[8], d[9]]), u16::from_le_bytes([d[0], d[1]]))
}

/// The IDTR: (base, limit).
pub(crate) fn sidt() -> (u64, u16) {
    let mut d = [0u8; 10];
    // SAFETY: stores 10 bytes into `d`.
    unsafe { asm!("sidt [{}]", in(reg) d.as_mut_ptr(), options(nostack, preserves_flags)) };
    (u64::from_le_bytes([d[2], d[3], d[4], d[5], d[6], d[7], d[8], d[9]]), u16::from_le_bytes([d[0], d[1]]))
}

/// Segment selectors: (CS, SS, DS, ES, FS, GS, TR).
pub(crate) fn selectors() -> [u16; 7] {
    let (cs, ss, ds, es, fs, gs, tr): (u16, u16, u16, u16, u16, u16, u16);
    // SAFETY: reading selectors and TR has no side effect.
    unsafe {
        asm!("mov {0:x}, cs", "mov {1:x}, ss", "mov {2:x}, ds", "mov {3:x}, es",
             "mov {4:x}, fs", "mov {5:x}, gs", "str {6:x}",
             out(reg) cs, out(reg) ss, out(reg) ds, out(reg) es, out(reg) fs, out(reg) gs, out(reg) tr,
             options(nomem, nostack, preserves_flags))
    };
    [cs, ss, ds, es, fs, gs, tr]
}

/// Reloads DS and ES (a VM exit leaves them null).
pub(crate) fn load_ds_es(ds: u16, es: u16) {
    // SAFETY: `ds`/`es` were read from these registers on this CPU before
    // the guest ran, so they are valid selectors of the current GDT.
    unsafe { asm!("mov ds, {0:x}", "mov es, {1:x}", in(reg) ds, in(reg) es, options(nostack, preserves_flags)) };
}

/// Hands an NMI that caused a VM exit to the host's NMI handler.
pub(crate) fn raise_nmi() {
    // SAFETY: INT 2 runs the kernel's NMI handler as for a real NMI, on this
    // CPU, with interrupts off (as KVM did before 6.2).
    unsafe { asm!("int 2", options(nomem, nostack)) };
}

/// The result of CPUID.
#[derive(Clone, Copy)]
pub(crate) struct Cpuid {
    pub(crate) eax: u32,
    pub(crate) ebx: u32,
    pub(crate) ecx: u32,
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
