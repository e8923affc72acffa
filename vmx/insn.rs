// SPDX-License-Identifier: GPL-2.0
//! The privileged instructions rvmx uses, each behind a safe function whose
//! conditions are stated next to its `unsafe` block. VMX instructions that
//! can fault live in vmx.S, with exception-table fixups. VMREAD and VMWRITE
//! are reachable only through [`Current`], the proof that a VMCS is current
//! on this CPU with interrupts off.

use super::regs::GuestRegs;
use crate::kapi::{IrqsOff, KernelPage};
use crate::vmcs::field::HOST_RSP;
use crate::x86::msr;
use core::arch::asm;
use core::marker::PhantomData;
use core::sync::atomic::AtomicU64;
use core::mem::offset_of;
use kernel::prelude::*;

// vmx/vmx.S, preprocessed by Kbuild (see Kbuild) into gen/vmx.s; the stub
// takes the register offsets and the HOST_RSP encoding from here.
core::arch::global_asm!(
    include_str!("../gen/vmx.s"),
    REGS_RAX = const offset_of!(GuestRegs, rax),
    REGS_RCX = const offset_of!(GuestRegs, rcx),
    REGS_RDX = const offset_of!(GuestRegs, rdx),
    REGS_RBX = const offset_of!(GuestRegs, rbx),
    REGS_RBP = const offset_of!(GuestRegs, rbp),
    REGS_RSI = const offset_of!(GuestRegs, rsi),
    REGS_RDI = const offset_of!(GuestRegs, rdi),
    REGS_R8 = const offset_of!(GuestRegs, r8),
    REGS_R9 = const offset_of!(GuestRegs, r9),
    REGS_R10 = const offset_of!(GuestRegs, r10),
    REGS_R11 = const offset_of!(GuestRegs, r11),
    REGS_R12 = const offset_of!(GuestRegs, r12),
    REGS_R13 = const offset_of!(GuestRegs, r13),
    REGS_R14 = const offset_of!(GuestRegs, r14),
    REGS_R15 = const offset_of!(GuestRegs, r15),
    HOST_RSP = const HOST_RSP.field().raw(),
    options(att_syntax)
);

extern "C" {
    fn rvmx_vmxon(region_pa: *const u64) -> i32;
    fn rvmx_vmxoff() -> i32;
    fn rvmx_vmclear(vmcs_pa: *const u64) -> i32;
    fn rvmx_vmptrld(vmcs_pa: *const u64) -> i32;
    fn rvmx_invept(kind: u64, desc: *const [u64; 2]) -> i32;
    fn rvmx_invvpid(kind: u64, desc: *const [u64; 2]) -> i32;
    fn rvmx_vmrun(regs: *mut GuestRegs, launched: i32, host_rsp: *mut u64) -> i32;
    fn rvmx_ibpb();
    fn rvmx_do_nmi();
    fn rvmx_l1d_flush_sw(buf: *const u8, size: u32);
    /// The VM-exit label in vmx.S (HOST_RIP); never called.
    fn rvmx_vmexit();
}

/// HOST_RIP: the VM-exit label in vmx.S.
pub(crate) fn vmexit_address() -> u64 {
    rvmx_vmexit as usize as u64
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

impl From<VmxFail> for Error {
    fn from(_: VmxFail) -> Error {
        EIO
    }
}

fn result(code: i32) -> Result<(), VmxFail> {
    match code {
        0 => Ok(()),
        1 => Err(VmxFail::Invalid),
        2 => Err(VmxFail::Valid),
        _ => Err(VmxFail::Fault),
    }
}

/// VMXON with `region` (a VMXON region: revision id written).
pub(crate) fn vmxon(region: &KernelPage) -> Result<(), VmxFail> {
    // SAFETY: VMXON only reads the 8-byte operand and takes the page, which
    // is ours for as long as VMX is on (the caller keeps it); a fault is
    // caught by the exception table and reported as `Fault`.
    result(unsafe { rvmx_vmxon(&region.phys()) })
}

/// VMXOFF.
pub(crate) fn vmxoff() -> Result<(), VmxFail> {
    // SAFETY: takes no operand; outside VMX operation the #UD is caught by
    // the exception table and reported as `Fault`.
    result(unsafe { rvmx_vmxoff() })
}

/// VMCLEAR the VMCS in `region`: written back to it, inactive, launch state
/// "clear" (SDM Vol. 3C 25.1, 25.11.3).
pub(crate) fn vmclear(region: &KernelPage) -> Result<(), VmxFail> {
    // SAFETY: the CPU writes VMCS data only into `region`, a page we own;
    // faults are absorbed (see vmx.S).
    result(unsafe { rvmx_vmclear(&region.phys()) })
}

/// VMPTRST: the current VMCS's address (all ones when none).
fn vmptrst() -> u64 {
    let mut pa: u64 = !0;
    // SAFETY: writes 8 bytes to `pa`. Only called by `Current::load`,
    // after it saw CR4.VMXE set with interrupts off: rvmx sets CR4.VMXE and
    // runs VMXON (and VMXOFF and clears it) with interrupts off on this CPU,
    // so the CPU is in VMX operation and VMPTRST cannot #UD.
    unsafe { asm!("vmptrst ({})", in(reg) &mut pa, options(att_syntax, nostack)) };
    pa
}

/// Proof that a VMCS was made current on this CPU and interrupts stay off
/// while it lives (it borrows an [`IrqsOff`], which cannot leave this
/// task): the only way to VMREAD, VMWRITE and enter the guest. Nothing
/// VMCLEARs a VMCS active on this CPU while interrupts are off here (the
/// IPIs and the CPU-down path that do run on this CPU); the emergency path
/// may VMXOFF from an NMI, but never returns to the interrupted code.
pub(crate) struct Current<'a> {
    _irqs: PhantomData<&'a IrqsOff>,
}

impl<'a> Current<'a> {
    /// Makes the VMCS in `region` current on this CPU (VMPTRLD unless it
    /// already is). The VMCS must not be active on another CPU.
    /// `Err(None)` when VMX is off on this CPU (it is going down).
    pub(crate) fn load(region: &KernelPage, _irqs: &'a IrqsOff) -> Result<Self, Option<VmxFail>> {
        if read_cr4() & crate::x86::cr4::VMXE == 0 {
            return Err(None);
        }
        let pa = region.phys();
        if vmptrst() != pa {
            // SAFETY: reads only the operand; the CPU then uses `region`,
            // a page we own, as the VMCS; faults are absorbed (vmx.S).
            result(unsafe { rvmx_vmptrld(&pa) }).map_err(Some)?;
            // Another vCPU's VMCS was current here: no branch predictions
            // trained by it may steer this one (KVM does the same).
            // SAFETY: writes IA32_PRED_CMD if the kernel uses IBPB (vmx.S).
            unsafe { rvmx_ibpb() };
        }
        Ok(Self { _irqs: PhantomData })
    }

    /// VMREAD.
    pub(crate) fn vmread(&self, field: u32) -> Result<u64, VmxFail> {
        let value: u64;
        let (fail, inval): (u8, u8);
        // SAFETY: a VMCS is current on this CPU in VMX operation and
        // interrupts are off (the token), so VMREAD cannot fault; a field
        // the CPU lacks gives VMfail, reported as an error.
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

    /// VMWRITE.
    pub(crate) fn vmwrite(&self, field: u32, value: u64) -> Result<(), VmxFail> {
        let ok: u8;
        // SAFETY: as for `vmread`; VMWRITE changes only the current VMCS.
        unsafe {
            asm!("vmwrite {f}, {v}", "seta {ok}", f = in(reg) u64::from(field), v = in(reg) value,
                 ok = out(reg_byte) ok, options(nostack))
        };
        if ok != 0 { Ok(()) } else { Err(VmxFail::Valid) }
    }

    /// Enters the guest (vmx.S) with `regs`; returns after the VM exit with
    /// the guest's registers in `regs`, or the way the entry failed.
    ///
    /// # Safety
    /// Every host-state field of the current VMCS is right for this CPU and
    /// task (HOST_RIP the exit label, CR3/CR4, the per-CPU GDT, TSS, GS
    /// base and SYSENTER_ESP, the task's FS base), `host_rsp` is the value
    /// HOST_RSP holds in this VMCS (0 if never written), and `launched`
    /// is the VMCS's launch state: the VM exit then resumes the host where
    /// it left off.
    pub(crate) unsafe fn vmrun(&self, regs: &mut GuestRegs, launched: bool, host_rsp: &AtomicU64) -> Result<(), VmxFail> {
        // SAFETY: the VMCS is current with interrupts off (the token) and
        // its host state is right (the caller); the stub saves and restores
        // every callee-saved register and writes only `regs`, `host_rsp`
        // (a plain store, no other access meanwhile) and its own frame.
        result(unsafe { rvmx_vmrun(regs, i32::from(launched), host_rsp.as_ptr()) })
    }
}

/// INVEPT type 1 (single context): drop the cached translations derived
/// from `eptp` on this CPU (SDM Vol. 3C 29.4.3.1).
pub(crate) fn invept_single(eptp: u64) -> Result<(), VmxFail> {
    let desc = [eptp, 0];
    // SAFETY: reads the 16-byte descriptor and drops cached translations
    // only; faults are absorbed.
    result(unsafe { rvmx_invept(INV_SINGLE_CONTEXT, &desc) })
}

/// INVEPT/INVVPID types (SDM Vol. 3C 31.3): one context, or all of them.
const INV_SINGLE_CONTEXT: u64 = 1;
const INV_ALL_CONTEXTS: u64 = 2;

/// INVEPT type 2 (all contexts) on this CPU.
pub(crate) fn invept_all() -> Result<(), VmxFail> {
    let desc = [0, 0];
    // SAFETY: as above.
    result(unsafe { rvmx_invept(INV_ALL_CONTEXTS, &desc) })
}

/// INVVPID type 1 (single context) for `vpid` on this CPU.
pub(crate) fn invvpid_single(vpid: u16) -> Result<(), VmxFail> {
    let desc = [u64::from(vpid), 0];
    // SAFETY: as for INVEPT.
    result(unsafe { rvmx_invvpid(INV_SINGLE_CONTEXT, &desc) })
}

/// INVVPID type 2 (all contexts but VPID 0) on this CPU.
pub(crate) fn invvpid_all() -> Result<(), VmxFail> {
    let desc = [0, 0];
    // SAFETY: as for INVEPT.
    result(unsafe { rvmx_invvpid(INV_ALL_CONTEXTS, &desc) })
}

/// Flushes the L1D cache before a VM entry (L1TF): IA32_FLUSH_CMD where
/// the CPU has it (`hw`), else by reading `buf` (64 KiB) in software.
pub(crate) fn flush_l1d(hw: bool, buf: &[u8]) {
    if hw {
        // SAFETY: the kernel found IA32_FLUSH_CMD (X86_FEATURE_FLUSH_L1D);
        // writing L1D_FLUSH (bit 0) only writes back and invalidates L1D.
        unsafe {
            asm!("wrmsr", in("ecx") msr::FLUSH_CMD, in("eax") 1u32, in("edx") 0u32,
                 options(nomem, nostack, preserves_flags))
        };
    } else if buf.len() >= 4096 && buf.len() % 4096 == 0 && buf.len() <= u32::MAX as usize {
        // SAFETY: the stub only reads `buf`, a whole number of pages
        // (checked), one byte per page and then per 64-byte line.
        unsafe { rvmx_l1d_flush_sw(buf.as_ptr(), buf.len() as u32) };
    }
}

/// Proof that this CPU uses protection keys (CR4.PKE = 1), so RDPKRU and
/// WRPKRU do not raise #UD. The kernel sets CR4.PKE on every CPU at boot
/// when it uses them (X86_FEATURE_OSPKE) and never clears it.
#[derive(Clone, Copy)]
pub(crate) struct Pke(());

impl Pke {
    /// The proof, if CR4.PKE is set here.
    pub(crate) fn here() -> Option<Pke> {
        (read_cr4() & crate::x86::cr4::PKE != 0).then_some(Pke(()))
    }

    /// RDPKRU.
    pub(crate) fn read(self) -> u32 {
        let v: u32;
        // SAFETY: CR4.PKE is set (the proof); RDPKRU only reads PKRU.
        unsafe { asm!("rdpkru", out("eax") v, in("ecx") 0u32, out("edx") _, options(nomem, nostack, preserves_flags)) };
        v
    }

    /// WRPKRU: the access rights to user-mode pages. The run loop writes
    /// the guest's value right before entry and the task's back right after
    /// the exit, with interrupts off: nothing in between touches user pages
    /// (as in KVM; an NMI that tried would see an access fail, no more).
    pub(crate) fn write(self, v: u32) {
        // SAFETY: CR4.PKE is set (the proof); see above for why the host
        // cannot be affected.
        unsafe { asm!("wrpkru", in("eax") v, in("ecx") 0u32, in("edx") 0u32, options(nomem, nostack, preserves_flags)) };
    }
}

/// Writes DR7 (before entry, host breakpoints off: KVM's
/// `set_debugreg(DR7_FIXED_1, 7)` when `hw_breakpoint_active()`).
pub(crate) fn write_dr7_fixed() {
    // SAFETY: DR7 = 0x400 disables every breakpoint; the kernel's copies
    // are untouched and restored after the exit (hw_breakpoint_restore).
    unsafe { asm!("mov dr7, {}", in(reg) 0x400u64, options(nomem, nostack, preserves_flags)) };
}

/// Loads the guest's DR0-DR3 and DR6 (before entry, interrupts off, DR7
/// already 0x400 or the host's with no breakpoint the guest could see).
/// The host's breakpoints come back after the exit (hw_breakpoint_restore).
pub(crate) fn write_guest_debug_regs(db: &[u64; 4], dr6: u64) {
    // SAFETY: DR0-DR3 hold addresses only DR7 enables; the host's DR7 has
    // none enabled while the guest's are in (the caller saw to that, and
    // the exit sets DR7 to 0x400). DR6 only reports; the host's #DB handler
    // clears it before use.
    unsafe {
        asm!("mov dr0, {}", in(reg) db[0], options(nomem, nostack, preserves_flags));
        asm!("mov dr1, {}", in(reg) db[1], options(nomem, nostack, preserves_flags));
        asm!("mov dr2, {}", in(reg) db[2], options(nomem, nostack, preserves_flags));
        asm!("mov dr3, {}", in(reg) db[3], options(nomem, nostack, preserves_flags));
        // Bits 63:32 of DR6 are reserved: a 1 there would #GP here.
        asm!("mov dr6, {}", in(reg) dr6 & 0xffff_ffff, options(nomem, nostack, preserves_flags));
    }
}

/// Reads DR0-DR3 and DR6 back after an exit (the guest may have changed
/// them with MOV DR), then sets DR6 to its inactive value for the host.
pub(crate) fn take_guest_debug_regs(db: &mut [u64; 4]) -> u64 {
    let dr6: u64;
    // SAFETY: reading debug registers has no side effect; DR6 = 0xffff0ff0
    // is its architectural "nothing happened" value, what the host's #DB
    // handler leaves there too.
    unsafe {
        asm!("mov {}, dr0", out(reg) db[0], options(nomem, nostack, preserves_flags));
        asm!("mov {}, dr1", out(reg) db[1], options(nomem, nostack, preserves_flags));
        asm!("mov {}, dr2", out(reg) db[2], options(nomem, nostack, preserves_flags));
        asm!("mov {}, dr3", out(reg) db[3], options(nomem, nostack, preserves_flags));
        asm!("mov {}, dr6", out(reg) dr6, options(nomem, nostack, preserves_flags));
        asm!("mov dr6, {}", in(reg) crate::x86::dr::DR6_FIXED_1, options(nomem, nostack, preserves_flags));
    }
    dr6
}

/// XCR0 (the host's: read once per RUN where CR4.OSXSAVE is set).
pub(crate) fn xgetbv0() -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: XGETBV with ECX = 0 reads XCR0; the caller checked that the
    // host has CR4.OSXSAVE (else #UD).
    unsafe { asm!("xgetbv", in("ecx") 0u32, out("eax") lo, out("edx") hi, options(nomem, nostack, preserves_flags)) };
    (u64::from(hi) << 32) | u64::from(lo)
}

/// Writes XCR0: the guest's before entry, the host's back after the exit
/// (interrupts off in between, so the host never runs with the guest's).
pub(crate) fn xsetbv0(v: u64) {
    // SAFETY: the value is either the host's own XCR0 or a guest value
    // validated by `exit::cr::xcr0_valid` against the host's XCR0 (so no
    // #GP), and the host's is restored before interrupts are enabled.
    unsafe {
        asm!("xsetbv", in("ecx") 0u32, in("eax") v as u32, in("edx") (v >> 32) as u32, options(nomem, nostack, preserves_flags))
    };
}

/// The SYSCALL MSRs, in the order of [`write_syscall_msrs`].
pub(crate) const SYSCALL_MSRS: [HostMsr; 4] = [HostMsr::Star, HostMsr::Lstar, HostMsr::Cstar, HostMsr::Sfmask];

/// Writes STAR, LSTAR, CSTAR and FMASK (the host kernel uses them only for
/// SYSCALL from userland; the run loop loads a guest's, which SYSCALL in
/// the guest uses, and puts the host's back before the task can return to
/// userland or leave the CPU). A non-canonical LSTAR/CSTAR is not written.
pub(crate) fn write_syscall_msrs(v: [u64; 4]) {
    for (m, val) in SYSCALL_MSRS.into_iter().zip(v) {
        if matches!(m, HostMsr::Lstar | HostMsr::Cstar) && !crate::x86::canonical(val) {
            continue;
        }
        // SAFETY: the MSRs exist on every x86-64 CPU and take any value
        // (the addresses are canonical, checked); only SYSCALL reads them.
        unsafe {
            asm!("wrmsr", in("ecx") m.index(), in("eax") val as u32, in("edx") (val >> 32) as u32,
                 options(nomem, nostack, preserves_flags))
        };
    }
}

/// Restores IA32_DEBUGCTL to the host's value after a VM exit cleared it
/// (SDM Vol. 3C 28.5.1); `v` is what [`rdmsr`] read before the entry.
pub(crate) fn restore_debugctl(v: u64) {
    // SAFETY: the MSR exists on every x86-64 CPU; `v` was read from it on
    // this CPU with interrupts off, so it is a value it accepts.
    unsafe {
        asm!("wrmsr", in("ecx") msr::DEBUGCTL, in("eax") v as u32, in("edx") (v >> 32) as u32,
             options(nomem, nostack, preserves_flags))
    };
}

/// MSRs every CPU that rvmx runs on has: architectural on x86-64 (SDM
/// Vol. 4, Table 2-2) or present with VMX (IA32_FEATURE_CONTROL), checked
/// at load (`vmx::check_cpu`).
#[derive(Clone, Copy)]
pub(crate) enum HostMsr {
    /// IA32_FEATURE_CONTROL.
    FeatureControl,
    /// IA32_SYSENTER_CS.
    SysenterCs,
    /// IA32_SYSENTER_ESP.
    SysenterEsp,
    /// IA32_SYSENTER_EIP.
    SysenterEip,
    /// IA32_PAT.
    Pat,
    /// IA32_EFER.
    Efer,
    /// IA32_FS_BASE.
    FsBase,
    /// IA32_GS_BASE.
    GsBase,
    /// IA32_KERNEL_GS_BASE.
    KernelGsBase,
    /// IA32_DEBUGCTL.
    DebugCtl,
    /// IA32_STAR.
    Star,
    /// IA32_LSTAR.
    Lstar,
    /// IA32_CSTAR.
    Cstar,
    /// IA32_FMASK.
    Sfmask,
}

impl HostMsr {
    #[inline(always)]
    fn index(self) -> u32 {
        match self {
            HostMsr::FeatureControl => msr::FEATURE_CONTROL,
            HostMsr::SysenterCs => msr::SYSENTER_CS,
            HostMsr::SysenterEsp => msr::SYSENTER_ESP,
            HostMsr::SysenterEip => msr::SYSENTER_EIP,
            HostMsr::Pat => msr::PAT,
            HostMsr::Efer => msr::EFER,
            HostMsr::FsBase => msr::FS_BASE,
            HostMsr::GsBase => msr::GS_BASE,
            HostMsr::KernelGsBase => msr::KERNEL_GS_BASE,
            HostMsr::DebugCtl => msr::DEBUGCTL,
            HostMsr::Star => msr::STAR,
            HostMsr::Lstar => msr::LSTAR,
            HostMsr::Cstar => msr::CSTAR,
            HostMsr::Sfmask => msr::SFMASK,
        }
    }
}

/// RDMSR of one of the MSRs every CPU rvmx runs on has.
#[inline]
pub(crate) fn rdmsr(m: HostMsr) -> u64 {
    // SAFETY: the MSR exists (see `HostMsr`); RDMSR only reads.
    unsafe { rdmsr_raw(m.index()) }
}

/// RDMSR.
///
/// # Safety
/// The MSR must exist on this CPU (else RDMSR raises #GP).
#[inline]
unsafe fn rdmsr_raw(msr: u32) -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: the caller checked that the MSR exists.
    unsafe { asm!("rdmsr", in("ecx") msr, out("eax") lo, out("edx") hi, options(nomem, nostack, preserves_flags)) };
    (u64::from(hi) << 32) | u64::from(lo)
}

/// Restores the task's IA32_KERNEL_GS_BASE (or loads the guest's) around
/// entries: a 64-bit base the host does not use in the kernel (it is what
/// SWAPGS would load on the way to userland). A non-canonical value (which
/// WRMSR would refuse with #GP) is not written.
pub(crate) fn write_kernel_gs_base(v: u64) {
    if !crate::x86::canonical(v) {
        return;
    }
    // SAFETY: the MSR exists on every x86-64 CPU and `v` is canonical; the
    // value takes effect only through SWAPGS, which the host does only on
    // kernel entry/exit, after the run loop has put its own back.
    unsafe {
        asm!("wrmsr", in("ecx") msr::KERNEL_GS_BASE, in("eax") v as u32, in("edx") (v >> 32) as u32,
             options(nomem, nostack, preserves_flags))
    };
}

/// Enables VMX outside SMX in IA32_FEATURE_CONTROL and locks it, if the
/// firmware left it unlocked (SDM Vol. 3C 24.7); what the MSR allows then.
pub(crate) fn lock_feature_control() -> crate::x86::feature_control::Verdict {
    use crate::x86::feature_control::{verdict, Verdict};
    let v = match verdict(rdmsr(HostMsr::FeatureControl)) {
        Verdict::Lock(v) => v,
        other => return other,
    };
    // SAFETY: the MSR exists when CPUID reports VMX (checked at load); it
    // is unlocked, and the value sets only the lock and VMX-enable bits on
    // top of what it holds, which the SDM allows.
    unsafe {
        asm!("wrmsr", in("ecx") msr::FEATURE_CONTROL, in("eax") v as u32,
             in("edx") (v >> 32) as u32, options(nomem, nostack, preserves_flags))
    };
    Verdict::Allowed
}

/// IA32_ARCH_CAPABILITIES where the CPU has it (`exists`:
/// X86_FEATURE_ARCH_CAPABILITIES), else 0.
pub(crate) fn arch_capabilities(exists: bool) -> u64 {
    if !exists {
        return 0;
    }
    // SAFETY: the kernel found the MSR (CPUID.7.0:EDX[29]).
    unsafe { rdmsr_raw(msr::ARCH_CAPABILITIES) }
}

/// Reads this CPU's VMX capability MSRs, each only where the SDM says it
/// exists (Vol. 3D Appendix A: the rules are in `caps.rs`); absent ones
/// read as zero. Call only on a CPU with VMX (CPUID.1:ECX.VMX).
pub(crate) fn read_vmx_caps() -> super::caps::RawCaps {
    use super::caps::{self, msr as m};
    // SAFETY (every read below): BASIC through CR4_FIXED1 exist on every
    // CPU with VMX; the others only where the rule before each says.
    let r = |n| unsafe { rdmsr_raw(n) };
    let basic = r(m::BASIC);
    let proc = r(m::PROCBASED);
    let has_true = caps::has_true_msrs(basic);
    let proc2 = if caps::has_proc2(proc) { r(m::PROCBASED2) } else { 0 };
    caps::RawCaps {
        basic,
        pin: r(m::PINBASED),
        proc,
        proc2,
        exit: r(m::EXIT),
        entry: r(m::ENTRY),
        true_pin: if has_true { r(m::TRUE_PINBASED) } else { 0 },
        true_proc: if has_true { r(m::TRUE_PROCBASED) } else { 0 },
        true_exit: if has_true { r(m::TRUE_EXIT) } else { 0 },
        true_entry: if has_true { r(m::TRUE_ENTRY) } else { 0 },
        misc: r(m::MISC),
        cr0_fixed0: r(m::CR0_FIXED0),
        cr0_fixed1: r(m::CR0_FIXED1),
        cr4_fixed0: r(m::CR4_FIXED0),
        cr4_fixed1: r(m::CR4_FIXED1),
        ept_vpid: if caps::has_ept_vpid_cap(proc2) { r(m::EPT_VPID_CAP) } else { 0 },
    }
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

/// Reads CR0.
pub(crate) fn read_cr0() -> u64 {
    let v: u64;
    // SAFETY: reading CR0 has no side effect at CPL 0.
    unsafe { asm!("mov {}, cr0", out(reg) v, options(nomem, nostack, preserves_flags)) };
    v
}

/// Reads CR3.
pub(crate) fn read_cr3() -> u64 {
    let v: u64;
    // SAFETY: reading CR3 has no side effect.
    unsafe { asm!("mov {}, cr3", out(reg) v, options(nomem, nostack, preserves_flags)) };
    v
}

/// Reads CR4 (the register itself, not the kernel's shadow).
pub(crate) fn read_cr4() -> u64 {
    let v: u64;
    // SAFETY: reading CR4 has no side effect at CPL 0.
    unsafe { asm!("mov {}, cr4", out(reg) v, options(nomem, nostack, preserves_flags)) };
    v
}

/// The GDTR's base.
pub(crate) fn gdt_base() -> u64 {
    let mut d = [0u8; 10];
    // SAFETY: stores 10 bytes into `d`.
    unsafe { asm!("sgdt [{}]", in(reg) d.as_mut_ptr(), options(nostack, preserves_flags)) };
    u64::from_le_bytes([d[2], d[3], d[4], d[5], d[6], d[7], d[8], d[9]])
}

/// The IDTR's base.
pub(crate) fn idt_base() -> u64 {
    let mut d = [0u8; 10];
    // SAFETY: stores 10 bytes into `d`.
    unsafe { asm!("sidt [{}]", in(reg) d.as_mut_ptr(), options(nostack, preserves_flags)) };
    u64::from_le_bytes([d[2], d[3], d[4], d[5], d[6], d[7], d[8], d[9]])
}

/// This CPU's segment selectors, as read (only [`selectors`] and
/// [`data_selectors`] make one, so [`load_ds_es`] gets selectors that are
/// valid here).
#[derive(Clone, Copy)]
pub(crate) struct Selectors {
    cs: u16,
    ss: u16,
    ds: u16,
    es: u16,
    tr: u16,
}

impl Selectors {
    /// CS.
    pub(crate) fn cs(&self) -> u16 {
        self.cs
    }
    /// SS.
    pub(crate) fn ss(&self) -> u16 {
        self.ss
    }
    /// TR.
    pub(crate) fn tr(&self) -> u16 {
        self.tr
    }
    /// Whether DS or ES is not null (a VM exit nulls them).
    pub(crate) fn ds_es_set(&self) -> bool {
        self.ds | self.es != 0
    }
}

/// Reads CS, SS, DS, ES and TR.
pub(crate) fn selectors() -> Selectors {
    let (cs, ss, ds, es, tr): (u16, u16, u16, u16, u16);
    // SAFETY: reading selectors and TR has no side effect.
    unsafe {
        asm!("mov {0:x}, cs", "mov {1:x}, ss", "mov {2:x}, ds", "mov {3:x}, es", "str {4:x}",
             out(reg) cs, out(reg) ss, out(reg) ds, out(reg) es, out(reg) tr,
             options(nomem, nostack, preserves_flags))
    };
    Selectors { cs, ss, ds, es, tr }
}

/// The base of this CPU's TSS, from its 16-byte descriptor in the GDT
/// (SDM Vol. 3A 8.2.3).
pub(crate) fn tss_base() -> u64 {
    let d = (gdt_base() + u64::from(selectors().tr() & !7)) as *const u32;
    // SAFETY: the GDT (SGDT) holds the TSS descriptor that TR (STR)
    // selects; the kernel keeps both mapped; the descriptor is 16 bytes.
    let w = unsafe { [d.read_unaligned(), d.add(1).read_unaligned(), d.add(2).read_unaligned()] };
    let low = ((w[0] >> 16) & 0xffff) | ((w[1] & 0xff) << 16) | (w[1] & 0xff00_0000);
    u64::from(low) | (u64::from(w[2]) << 32)
}

/// The host's LDT selector (0 unless the task uses modify_ldt()); a VM
/// exit clears LDTR (SDM Vol. 3C 28.5.2).
pub(crate) fn sldt() -> Ldt {
    let sel: u16;
    // SAFETY: SLDT only reads LDTR.
    unsafe { asm!("sldt {0:x}", out(reg) sel, options(nomem, nostack, preserves_flags)) };
    Ldt(sel)
}

/// An LDT selector read on this CPU (only [`sldt`] makes one).
#[derive(Clone, Copy)]
pub(crate) struct Ldt(u16);

impl Ldt {
    /// Loads it back after a VM exit (KVM's kvm_load_ldt), if not null.
    pub(crate) fn restore(self) {
        if self.0 != 0 {
            // SAFETY: the selector was read from LDTR on this CPU before
            // the guest ran, with interrupts off since: its GDT entry (the
            // task's LDT) is still there.
            unsafe { asm!("lldt {0:x}", in(reg) self.0, options(nomem, nostack, preserves_flags)) };
        }
    }
}

/// DS and ES, to reload after an exit (which nulls them).
pub(crate) fn data_selectors() -> Selectors {
    let (ds, es): (u16, u16);
    // SAFETY: reading selectors has no side effect.
    unsafe { asm!("mov {0:x}, ds", "mov {1:x}, es", out(reg) ds, out(reg) es, options(nomem, nostack, preserves_flags)) };
    Selectors { cs: 0, ss: 0, ds, es, tr: 0 }
}

/// Reloads DS and ES (a VM exit leaves them null).
pub(crate) fn load_ds_es(s: &Selectors) {
    // SAFETY: the selectors were read from these registers on this CPU
    // before the guest ran, so they are valid selectors of the current GDT.
    unsafe { asm!("mov ds, {0:x}", "mov es, {1:x}", in(reg) s.ds, in(reg) s.es, options(nostack, preserves_flags)) };
}

/// Hands an NMI that caused a VM exit to the host's NMI handler
/// (vmx.S: FRED or IDT entry, as the kernel uses). Interrupts off.
pub(crate) fn raise_nmi(_irqs_off: &crate::kapi::IrqsOff) {
    // SAFETY: runs the kernel's NMI handler as for a real NMI on this CPU,
    // as KVM does right after such an exit.
    unsafe { rvmx_do_nmi() };
}

/// The time-stamp counter.
pub(crate) fn rdtsc() -> u64 {
    // SAFETY: RDTSC only reads the time-stamp counter (CR4.TSD does not
    // apply at CPL 0).
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// CPUID `leaf`/`subleaf` on this CPU: [EAX, EBX, ECX, EDX].
pub(crate) fn cpuid(leaf: u32, subleaf: u32) -> [u32; 4] {
    // SAFETY: CPUID is available on every x86-64 CPU and has no side effect
    // beyond writing the four registers.
    let r = unsafe { core::arch::x86_64::__cpuid_count(leaf, subleaf) };
    [r.eax, r.ebx, r.ecx, r.edx]
}
