// SPDX-License-Identifier: GPL-2.0
//! VMCS defaults for a new vCPU (bhyve's vmcs_init): controls adjusted to
//! the CPU, host state, and the guest's reset state (`reset.rs`).

use super::field::*;
use super::reset::reset_guest;
use super::Loaded;
use crate::vmx::caps::{entry, exit, pin, proc, proc2, RawCaps};
use crate::vmx::exit::cr::{CR0_HOST_OWNED, CR4_HOST_OWNED};
use crate::vmx::insn::{self, HostMsr};
use crate::x86::vector;
use kernel::prelude::*;

/// VMX-preemption timer: the guest runs at most about 2^20 TSC cycles
/// between checks for signals and rescheduling, whatever its RFLAGS.IF.
const PREEMPTION_TSC_CYCLES: u64 = 1 << 20;

/// Writes the controls, the constant host state and the guest's reset
/// state into a fresh VMCS that is current.
pub(crate) fn init(v: &Loaded<'_>, caps: &RawCaps, eptp: u64, vpid: u16, msr_bitmap: u64) -> Result {
    let need = |what: &str, r: core::result::Result<u32, u32>| {
        r.map_err(|missing| {
            pr_err!("{} controls {:#x} not allowed by this CPU\n", what, missing);
            EIO
        })
    };
    // Virtual NMIs where the CPU has them: NMI-window exiting needs them.
    let pin_opt = [pin::PREEMPTION_TIMER, pin::VIRTUAL_NMI].into_iter().filter(|&c| caps.pin().allows(c)).fold(0, |a, c| a | c);
    let pinv = need("pin-based", caps.pin().adjust(pin::EXT_INTR | pin::NMI, pin_opt))?;
    // Every I/O instruction exits, and every MSR access but the few the
    // MSR bitmap passes (vmx/msr.rs); CR8 loads and stores exit (else the
    // guest would write the host's TPR), and so do MOV DR (until the guest
    // owns the debug registers), RDPMC, MONITOR and MWAIT. The guest's TSC
    // is the host's plus TSC_OFFSET.
    let procv = need(
        "processor-based",
        caps.proc().adjust(
            proc::HLT
                | proc::UNCOND_IO
                | proc::SECONDARY
                | proc::CR8_LOAD
                | proc::CR8_STORE
                | proc::MOV_DR
                | proc::MSR_BITMAP
                | proc::TSC_OFFSETTING,
            proc::RDPMC | proc::MWAIT | proc::MONITOR,
        ),
    )?;
    // With EPT, CR3 accesses and INVLPG need no exit; `adjust` sets them
    // only on CPUs without the TRUE_ MSRs, which force them (SDM Vol. 3D A.2).
    // WBINVD exits where it can (KVM too): a guest must not write back and
    // invalidate every cache of the host CPU at will.
    // INVPCID runs in the guest where the CPU allows it (CPUID offers it
    // then: vm/cpuid.rs).
    let proc2v = need(
        "secondary",
        caps.proc2().adjust(proc2::EPT | proc2::VPID | proc2::UNRESTRICTED_GUEST, proc2::WBINVD | proc2::INVPCID),
    )?;
    let exitv = need(
        "VM-exit",
        caps.exit().adjust(
            exit::HOST_64 | exit::SAVE_EFER | exit::LOAD_EFER | exit::SAVE_PAT | exit::LOAD_PAT | exit::SAVE_DEBUG,
            0,
        ),
    )?;
    // The guest's DR7 and IA32_DEBUGCTL are loaded at entry and saved at
    // exit (the exit leaves DR7 = 0x400 and DEBUGCTL = 0 for the host to
    // restore: vmx/run.rs).
    let entryv = need("VM-entry", caps.entry().adjust(entry::LOAD_EFER | entry::LOAD_PAT | entry::LOAD_DEBUG, 0))?
        & !entry::IA32E_GUEST;

    let controls = [
        (PIN_BASED_CONTROLS, pinv),
        (PROC_BASED_CONTROLS, procv),
        (PROC_BASED_CONTROLS2, proc2v),
        (EXIT_CONTROLS, exitv),
        (ENTRY_CONTROLS, entryv),
        // #MC and #AC always exit (KVM too): a machine check belongs to the
        // host, and a split-lock #AC to the host's policy. #DB exits so that
        // its DR6 bits reach the guest's DR6 (exit/debug.rs).
        (EXCEPTION_BITMAP, (1 << vector::MC) | (1 << vector::AC) | (1 << vector::DB)),
        (CR3_TARGET_COUNT, 0),
        (EXIT_MSR_STORE_COUNT, 0),
        (EXIT_MSR_LOAD_COUNT, 0),
        (ENTRY_MSR_LOAD_COUNT, 0),
        (ENTRY_INTR_INFO, 0),
    ];
    for (f, val) in controls {
        v.write(f, val);
    }
    v.write(EPT_POINTER, eptp);
    v.write(MSR_BITMAP, msr_bitmap);
    v.write(VPID, vpid);
    v.write(CR0_GUEST_HOST_MASK, CR0_HOST_OWNED);
    v.write(CR4_GUEST_HOST_MASK, CR4_HOST_OWNED);
    if pinv & pin::PREEMPTION_TIMER != 0 {
        let ticks = (PREEMPTION_TSC_CYCLES >> caps.preemption_timer_shift()).max(1);
        v.write(PREEMPTION_TIMER_VALUE, ticks as u32);
    }

    // Host state that is the same on every CPU (SDM Vol. 3C 25.5, 27.2.2):
    // selectors with RPL 0 and TI 0; DS/ES/FS/GS null (bases come from
    // the base fields; DS/ES are reloaded after the exit).
    let sel = insn::selectors();
    v.write(HOST_CS_SELECTOR, sel.cs() & !7);
    v.write(HOST_SS_SELECTOR, sel.ss() & !7);
    for f in [HOST_DS_SELECTOR, HOST_ES_SELECTOR, HOST_FS_SELECTOR, HOST_GS_SELECTOR] {
        v.write(f, 0);
    }
    v.write(HOST_TR_SELECTOR, sel.tr() & !7);
    v.write(HOST_CR0, insn::read_cr0());
    v.write(HOST_IA32_PAT, insn::rdmsr(HostMsr::Pat));
    v.write(HOST_IA32_EFER, insn::rdmsr(HostMsr::Efer));
    v.write(HOST_SYSENTER_CS, insn::rdmsr(HostMsr::SysenterCs) as u32);
    v.write(HOST_SYSENTER_EIP, insn::rdmsr(HostMsr::SysenterEip));
    v.write(HOST_RIP, insn::vmexit_address());
    // One IDT for every CPU (Linux maps it at the same address everywhere).
    v.write(HOST_IDTR_BASE, insn::idt_base());

    reset_guest(v);
    if v.failed() {
        return Err(EIO);
    }
    Ok(())
}

/// Host state that belongs to this CPU (Linux has a GDT, TSS, per-CPU
/// area and entry stack per CPU): written when the guest is to run on a CPU
/// other than the one it ran on last (SDM Vol. 3C 25.5.2, 28.5.2).
pub(crate) fn host_per_cpu(v: &Loaded<'_>) {
    v.write(HOST_GDTR_BASE, insn::gdt_base());
    v.write(HOST_TR_BASE, insn::tss_base());
    v.write(HOST_GS_BASE, insn::rdmsr(HostMsr::GsBase));
    v.write(HOST_SYSENTER_ESP, insn::rdmsr(HostMsr::SysenterEsp));
}
