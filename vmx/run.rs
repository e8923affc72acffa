// SPDX-License-Identifier: GPL-2.0
//! The run loop (the seed's `vmx_run`): enter the guest through the stub in
//! vmx.S, handle each exit in `exit.rs`, and stay in the kernel until an
//! exit needs userland, a signal arrives, or an error.
//!
//! Rules that keep the host safe:
//! - the task stays on one CPU (migration off) and that CPU stays online
//!   (CPU-hotplug read lock) for the whole RUN; the VMCS is VMCLEARed
//!   before RUN returns, so the next RUN may load it on any CPU;
//! - each entry, and the handling of its exit, runs with interrupts off;
//!   the VMCS is made current again first (another vCPU's task may have
//!   run on this CPU meanwhile); the interrupt that caused an exit is
//!   taken as soon as interrupts are back on;
//! - guest FPU state lives in the task's FPU state during RUN (the
//!   kernel's KVM helpers), guest CR2 and IA32_KERNEL_GS_BASE are swapped
//!   around each entry, DS/ES are reloaded after each exit.

use super::exit::{self, Step};
use super::insn::{self, VmxFail};
use crate::kapi::{self, CpusHeld, IrqsOff, MigrationDisabled};
use crate::vm::memory::Fault;
use crate::vm::vcpu::{State, Vcpu};
use crate::vmcs::setup::{self, MSR_KERNEL_GS_BASE};
use crate::vmcs::{field::*, Loaded};
use kernel::prelude::*;

const CR4_VMXE: u64 = 1 << 13;

/// RVMX_RUN.
pub(crate) fn run(vcpu: &Vcpu) -> Result {
    // Guest memory is the VM creator's memory: only its threads run vCPUs.
    if kapi::current_mm() != vcpu.id.vm.mm() {
        return Err(EIO);
    }
    let mut st = vcpu.state.lock();
    let _cpus = CpusHeld::new();
    let _stay = MigrationDisabled::new();
    st.fpu.swap(true)?;
    let result = run_loop(vcpu, &mut st);
    let fpu = st.fpu.swap(false);
    // Still on this CPU: write the VMCS back and deactivate it.
    let clear = vcpu.vmcs.clear();
    if clear.is_err() {
        pr_err!("vCPU {}: VMCLEAR failed\n", vcpu.id.id);
    }
    result?;
    fpu?;
    clear.map_err(|_| EIO)
}

fn run_loop(vcpu: &Vcpu, st: &mut State) -> Result {
    let mut launched = false;
    let mut host = None::<(u64, u64)>; // HOST_CR3, HOST_CR4 as written
    loop {
        if kapi::signal_pending() {
            return Err(EINTR);
        }
        if kapi::need_resched() {
            kapi::schedule();
        }
        let step = {
            let irqs = IrqsOff::new();
            // A context switch since the last entry leaves the guest's FPU
            // state in memory only.
            kapi::reload_fpu_if_needed(&irqs);
            enter_and_exit(vcpu, st, &mut launched, &mut host)?
        };
        // Interrupts are on again: a host interrupt that made the guest
        // exit has been handled by now.
        match step {
            Step::Resume => {}
            Step::ToUser => return Ok(()),
            Step::EptViolation { gpa, qualification } => {
                // Pinning may sleep: done here, with interrupts on.
                match vcpu.id.vm.memory().lock().fault(gpa)? {
                    Fault::Mapped => {}
                    Fault::Unmapped => {
                        exit::report_mmio(vcpu, gpa, qualification);
                        return Ok(());
                    }
                }
            }
        }
    }
}

/// One entry and the fast handling of its exit; interrupts are off.
fn enter_and_exit(vcpu: &Vcpu, st: &mut State, launched: &mut bool, host: &mut Option<(u64, u64)>) -> Result<Step> {
    if insn::read_cr4() & CR4_VMXE == 0 {
        return Err(EIO);
    }
    vcpu.vmcs.make_current().map_err(|_| EIO)?;
    // SAFETY: the VMCS was just made current on this CPU (VMX on, checked
    // above) and interrupts stay off until `v` is dropped with this frame.
    let v = unsafe { Loaded::assume() };
    match *host {
        None => {
            setup::host_per_cpu(&v)?;
            *host = Some((insn::read_cr3(), insn::read_cr4()));
        }
        // The kernel may change CR3 (PCID) or CR4 between entries.
        Some((cr3, cr4)) => {
            let (now3, now4) = (insn::read_cr3(), insn::read_cr4());
            if now3 != cr3 {
                v.write(HOST_CR3, now3)?;
            }
            if now4 != cr4 {
                v.write(HOST_CR4, now4)?;
            }
            *host = Some((now3, now4));
        }
    }
    if let Some((size, len)) = st.pending_in.take() {
        exit::complete_in(&v, vcpu, st, size, len)?;
    }
    if insn::read_cr2() != st.cr2 {
        insn::write_cr2(st.cr2);
    }
    let host_kgs = insn::rdmsr(MSR_KERNEL_GS_BASE);
    if host_kgs != st.kernel_gs_base {
        insn::wrmsr(MSR_KERNEL_GS_BASE, st.kernel_gs_base);
    }
    let sel = insn::selectors();
    let r = insn::vmrun(&mut st.gprs, *launched);
    st.cr2 = insn::read_cr2();
    // SWAPGS in the guest changes the real MSR: keep the guest's value,
    // give the task its own back.
    st.kernel_gs_base = insn::rdmsr(MSR_KERNEL_GS_BASE);
    if st.kernel_gs_base != host_kgs {
        insn::wrmsr(MSR_KERNEL_GS_BASE, host_kgs);
    }
    if sel[2] | sel[3] != 0 {
        insn::load_ds_es(sel[2], sel[3]);
    }
    match r {
        Ok(()) => exit::handle(&v, vcpu, st, launched),
        Err(VmxFail::Valid) => {
            let err = v.read32(VM_INSTRUCTION_ERROR)?;
            exit::report_entry_error(vcpu, err);
            Ok(Step::ToUser)
        }
        Err(f) => {
            pr_err!("vCPU {}: VM entry failed: {:?}\n", vcpu.id.id, f);
            Err(EIO)
        }
    }
}
