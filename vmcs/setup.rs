// SPDX-License-Identifier: GPL-2.0
//! VMCS defaults for a new vCPU (the seed's vmcs_set_defaults): controls
//! adjusted to the CPU, host state, and the guest's reset state.

use super::field::*;
use super::Loaded;
use crate::vmx::caps::{entry, exit, pin, proc, proc2, RawCaps};
use crate::vmx::insn;
use kernel::prelude::*;

/// CR0.NE and CR4.VMXE must be 1 in VMX operation (the FIXED0 MSRs); the
/// guest does not see them: these bits are host-owned and read from the
/// shadows (SDM Vol. 3C 25.6.6). PE and PG are free with unrestricted guest.
pub(crate) const CR0_HOST_OWNED: u64 = 1 << 5;
/// See [`CR0_HOST_OWNED`].
pub(crate) const CR4_HOST_OWNED: u64 = 1 << 13;

/// Proc-based controls: CR8 loads and stores exit (else the guest would
/// write the host's TPR).
const PROC_CR8_LOAD: u32 = 1 << 19;
const PROC_CR8_STORE: u32 = 1 << 20;
const PROC_MOV_DR: u32 = 1 << 23;
const PROC_RDPMC: u32 = 1 << 11;
const PROC_MWAIT: u32 = 1 << 10;
const PROC_MONITOR: u32 = 1 << 29;

/// VMX-preemption timer: the guest runs at most about 2^20 TSC cycles
/// between checks for signals and rescheduling, whatever its RFLAGS.IF.
const PREEMPTION_TSC_CYCLES: u64 = 1 << 20;

/// Writes the controls, the constant host state and the guest's reset
/// state into a fresh VMCS that is current.
pub(crate) fn init(v: &Loaded<'_>, caps: &RawCaps, eptp: u64, vpid: u16) -> Result {
    let need = |what: &str, r: core::result::Result<u32, u32>| {
        r.map_err(|missing| {
            pr_err!("{} controls {:#x} not allowed by this CPU\n", what, missing);
            EIO
        })
    };
    let pin_opt = if caps.pin().allows(pin::PREEMPTION_TIMER) { pin::PREEMPTION_TIMER } else { 0 };
    let pinv = need("pin-based", caps.pin().adjust(pin::EXT_INTR | pin::NMI, pin_opt))?;
    let procv = need(
        "processor-based",
        caps.proc().adjust(
            proc::HLT | proc::UNCOND_IO | proc::SECONDARY | PROC_CR8_LOAD | PROC_CR8_STORE | PROC_MOV_DR,
            PROC_RDPMC | PROC_MWAIT | PROC_MONITOR,
        ),
    )?;
    // With EPT, CR3 accesses and INVLPG need no exit; `adjust` sets them
    // only on CPUs without the TRUE_ MSRs, which force them (SDM Vol. 3D A.2).
    let proc2v = need(
        "secondary",
        caps.proc2().adjust(proc2::EPT | proc2::VPID | proc2::UNRESTRICTED_GUEST, 0),
    )?;
    let exitv = need(
        "VM-exit",
        caps.exit().adjust(exit::HOST_64 | exit::SAVE_EFER | exit::LOAD_EFER | exit::SAVE_PAT | exit::LOAD_PAT, 0),
    )?;
    let entryv = need("VM-entry", caps.entry().adjust(entry::LOAD_EFER | entry::LOAD_PAT, 0))? & !entry::IA32E_GUEST;

    v.write(PIN_BASED_CONTROLS, pinv.into())?;
    v.write(PROC_BASED_CONTROLS, procv.into())?;
    v.write(PROC_BASED_CONTROLS2, proc2v.into())?;
    v.write(EXIT_CONTROLS, exitv.into())?;
    v.write(ENTRY_CONTROLS, entryv.into())?;
    v.write(EXCEPTION_BITMAP, 0)?;
    v.write(CR3_TARGET_COUNT, 0)?;
    v.write(EXIT_MSR_STORE_COUNT, 0)?;
    v.write(EXIT_MSR_LOAD_COUNT, 0)?;
    v.write(ENTRY_MSR_LOAD_COUNT, 0)?;
    v.write(ENTRY_INTR_INFO, 0)?;
    v.write(EPT_POINTER, eptp)?;
    v.write(VPID, vpid.into())?;
    v.write(CR0_GUEST_HOST_MASK, CR0_HOST_OWNED)?;
    v.write(CR4_GUEST_HOST_MASK, CR4_HOST_OWNED)?;
    if pinv & pin::PREEMPTION_TIMER != 0 {
        let ticks = (PREEMPTION_TSC_CYCLES >> caps.preemption_timer_shift()).max(1);
        v.write(PREEMPTION_TIMER_VALUE, ticks)?;
    }

    // Host state that is the same on every CPU (SDM Vol. 3C 25.5, 27.2.2):
    // selectors with RPL 0 and TI 0; DS/ES/FS/GS null (bases come from
    // the base fields; DS/ES are reloaded after the exit).
    let sel = insn::selectors();
    v.write(HOST_CS_SELECTOR, (sel[0] & !7).into())?;
    v.write(HOST_SS_SELECTOR, (sel[1] & !7).into())?;
    for f in [HOST_DS_SELECTOR, HOST_ES_SELECTOR, HOST_FS_SELECTOR, HOST_GS_SELECTOR] {
        v.write(f, 0)?;
    }
    v.write(HOST_TR_SELECTOR, (sel[6] & !7).into())?;
    v.write(HOST_CR0, insn::read_cr0())?;
    v.write(HOST_IA32_PAT, insn::rdmsr(MSR_PAT))?;
    v.write(HOST_IA32_EFER, insn::rdmsr(MSR_EFER))?;
    v.write(HOST_SYSENTER_CS, insn::rdmsr(MSR_SYSENTER_CS))?;
    v.write(HOST_SYSENTER_EIP, insn::rdmsr(MSR_SYSENTER_EIP))?;
    v.write(HOST_RIP, insn::rvmx_vmexit as usize as u64)?;

    reset_guest(v)
}

pub(crate) const MSR_EFER: u32 = 0xc000_0080;
pub(crate) const MSR_PAT: u32 = 0x277;
pub(crate) const MSR_FS_BASE: u32 = 0xc000_0100;
pub(crate) const MSR_GS_BASE: u32 = 0xc000_0101;
pub(crate) const MSR_KERNEL_GS_BASE: u32 = 0xc000_0102;
const MSR_SYSENTER_CS: u32 = 0x174;
const MSR_SYSENTER_ESP: u32 = 0x175;
const MSR_SYSENTER_EIP: u32 = 0x176;

/// Host state that belongs to this CPU or this task: written whenever the
/// VMCS is loaded for a run (the task stays on this CPU meanwhile).
pub(crate) fn host_per_cpu(v: &Loaded<'_>) -> Result {
    let (gdt, _) = insn::sgdt();
    let (idt, _) = insn::sidt();
    let tr = insn::selectors()[6];
    v.write(HOST_GDTR_BASE, gdt)?;
    v.write(HOST_IDTR_BASE, idt)?;
    v.write(HOST_TR_BASE, tss_base(gdt, tr))?;
    v.write(HOST_FS_BASE, insn::rdmsr(MSR_FS_BASE))?;
    v.write(HOST_GS_BASE, insn::rdmsr(MSR_GS_BASE))?;
    v.write(HOST_SYSENTER_ESP, insn::rdmsr(MSR_SYSENTER_ESP))?;
    v.write(HOST_CR3, insn::read_cr3())?;
    v.write(HOST_CR4, insn::read_cr4())
}

/// The TSS base from its 16-byte descriptor in the GDT (SDM Vol. 3A 8.2.3).
fn tss_base(gdt: u64, tr: u16) -> u64 {
    let d = (gdt + u64::from(tr & !7)) as *const u32;
    // SAFETY: `gdt` is this CPU's GDT (SGDT) and `tr` the selector of the
    // TSS descriptor in it (STR), which the kernel keeps mapped; the
    // descriptor is 16 bytes.
    let w = unsafe { [d.read_unaligned(), d.add(1).read_unaligned(), d.add(2).read_unaligned()] };
    let low = ((w[0] >> 16) & 0xffff) | ((w[1] & 0xff) << 16) | (w[1] & 0xff00_0000);
    u64::from(low) | (u64::from(w[2]) << 32)
}

/// Segment access rights used below (SDM Vol. 3C 25.4.1).
const AR_CODE: u64 = 0x9b; // present, S, execute/read, accessed
const AR_DATA: u64 = 0x93; // present, S, read/write, accessed
const AR_TSS: u64 = 0x8b; // present, busy 32/64-bit TSS
const AR_LDT: u64 = 0x82; // present, LDT

/// The architectural state after RESET (SDM Vol. 3A 10.1.1, Table 10-1),
/// as a real-mode guest that starts at F000:FFF0.
pub(crate) fn reset_guest(v: &Loaded<'_>) -> Result {
    let segs = [
        (GUEST_ES_SELECTOR, GUEST_ES_BASE, GUEST_ES_LIMIT, GUEST_ES_AR, 0, 0, AR_DATA),
        (GUEST_CS_SELECTOR, GUEST_CS_BASE, GUEST_CS_LIMIT, GUEST_CS_AR, 0xf000, 0xffff_0000, AR_CODE),
        (GUEST_SS_SELECTOR, GUEST_SS_BASE, GUEST_SS_LIMIT, GUEST_SS_AR, 0, 0, AR_DATA),
        (GUEST_DS_SELECTOR, GUEST_DS_BASE, GUEST_DS_LIMIT, GUEST_DS_AR, 0, 0, AR_DATA),
        (GUEST_FS_SELECTOR, GUEST_FS_BASE, GUEST_FS_LIMIT, GUEST_FS_AR, 0, 0, AR_DATA),
        (GUEST_GS_SELECTOR, GUEST_GS_BASE, GUEST_GS_LIMIT, GUEST_GS_AR, 0, 0, AR_DATA),
        (GUEST_LDTR_SELECTOR, GUEST_LDTR_BASE, GUEST_LDTR_LIMIT, GUEST_LDTR_AR, 0, 0, AR_LDT),
        (GUEST_TR_SELECTOR, GUEST_TR_BASE, GUEST_TR_LIMIT, GUEST_TR_AR, 0, 0, AR_TSS),
    ];
    for (sel, base, limit, ar, s, b, a) in segs {
        v.write(sel, s)?;
        v.write(base, b)?;
        v.write(limit, 0xffff)?;
        v.write(ar, a)?;
    }
    for &(f, val) in RESET_STATE {
        v.write(f, val)?;
    }
    Ok(())
}

/// The rest of the reset state. CR0 = CD | NW | ET as the guest sees it,
/// with NE forced underneath; CR4.VMXE likewise.
const RESET_STATE: &[(Field, u64)] = &[
    (GUEST_GDTR_BASE, 0),
    (GUEST_GDTR_LIMIT, 0xffff),
    (GUEST_IDTR_BASE, 0),
    (GUEST_IDTR_LIMIT, 0xffff),
    (CR0_READ_SHADOW, 0x6000_0010),
    (GUEST_CR0, 0x6000_0010 | CR0_HOST_OWNED),
    (CR4_READ_SHADOW, 0),
    (GUEST_CR4, CR4_HOST_OWNED),
    (GUEST_CR3, 0),
    (GUEST_DR7, 0x400),
    (GUEST_RSP, 0),
    (GUEST_RIP, 0xfff0),
    (GUEST_RFLAGS, 0x2),
    (GUEST_IA32_EFER, 0),
    (GUEST_IA32_PAT, 0x0007_0406_0007_0406),
    (GUEST_IA32_DEBUGCTL, 0),
    (GUEST_SYSENTER_CS, 0),
    (GUEST_SYSENTER_ESP, 0),
    (GUEST_SYSENTER_EIP, 0),
    (GUEST_INTERRUPTIBILITY, 0),
    (GUEST_ACTIVITY_STATE, 0),
    (GUEST_PENDING_DBG_EXCEPTIONS, 0),
    // No shadow VMCS: the link pointer must be all ones (SDM Vol. 3C 27.3.1.5).
    (VMCS_LINK_POINTER, u64::MAX),
];
