// SPDX-License-Identifier: GPL-2.0
//! The run loop (bhyve's `vmx_run`): enter the guest through the stub in
//! vmx.S, read the exit reason once, dispatch to the pure handlers in
//! `exit/`, and stay in the kernel until an exit needs userland, a signal
//! arrives, or an error. The kernel-bound work is here and nowhere else:
//! publishing the exit record, pinning pages, scheduling, signals.
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

use super::exit::{self, Env, Next};
use super::exit_info::ExitReason;
use super::insn::{self, HostMsr, VmxFail};
use crate::kapi::{self, CpusHeld, IrqsOff, MigrationDisabled};
use crate::vm::memory::Fault;
use crate::vm::vcpu::{State, Vcpu};
use crate::vmcs::field::{VmcsAccess, EXIT_REASON, HOST_CR3, HOST_CR4, VM_INSTRUCTION_ERROR};
use crate::vmcs::setup;
use kernel::prelude::*;

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
    Ok(clear?)
}

/// Host CR3 and CR4 as last written to the VMCS during this RUN.
type HostCrs = Option<(u64, u64)>;

fn run_loop(vcpu: &Vcpu, st: &mut State) -> Result {
    let caps = crate::vmx::cpu::loaded_caps()?;
    let env = Env { caps: &caps, vcpu_id: vcpu.id.id, host_cpuid: insn::cpuid };
    let mut launched = false;
    let mut host = None;
    loop {
        if kapi::signal_pending() {
            return Err(EINTR);
        }
        if kapi::need_resched() {
            kapi::schedule();
        }
        let next = {
            let irqs = IrqsOff::new();
            // A context switch since the last entry leaves the guest's FPU
            // state in memory only.
            kapi::reload_fpu_if_needed(&irqs);
            enter_and_exit(vcpu, st, &env, &irqs, &mut launched, &mut host)?
        };
        // Interrupts are on again: a host interrupt that made the guest
        // exit has been handled by now.
        match next {
            Next::Resume => {}
            Next::ToUser(e) => {
                vcpu.run_page.publish(&(&e).into());
                return Ok(());
            }
            Next::Fault { gpa, qualification } => {
                // Pinning may sleep: done here, with interrupts on.
                match vcpu.id.vm.memory().lock().fault(gpa)? {
                    Fault::Mapped => {}
                    Fault::Unmapped => {
                        vcpu.run_page.publish(&(&exit::mmio(gpa, qualification)).into());
                        return Ok(());
                    }
                }
            }
            // Handed over before interrupts came back on.
            Next::HostNmi => {}
        }
    }
}

/// One entry and the handling of its exit; interrupts are off.
fn enter_and_exit(
    vcpu: &Vcpu,
    st: &mut State,
    env: &Env<'_>,
    irqs: &IrqsOff,
    launched: &mut bool,
    host: &mut HostCrs,
) -> Result<Next> {
    let v = vcpu.vmcs.load(irqs)?;
    let (cr3, cr4) = (insn::read_cr3(), insn::read_cr4());
    match *host {
        None => setup::host_per_cpu(&v),
        // The kernel may change CR3 (PCID) or CR4 between entries.
        Some((old3, old4)) => {
            if cr3 != old3 {
                v.write(HOST_CR3, cr3);
            }
            if cr4 != old4 {
                v.write(HOST_CR4, cr4);
            }
        }
    }
    *host = Some((cr3, cr4));
    if st.cpu.pending_in.is_some() {
        // The whole record, whatever userland wrote into it.
        let run = vcpu.run_page.read();
        exit::complete_in(&v, &mut st.cpu, kapi::io_data(&run));
    }
    if v.failed() {
        return Err(EIO);
    }
    if insn::read_cr2() != st.cpu.cr2 {
        insn::write_cr2(st.cpu.cr2);
    }
    let host_kgs = insn::rdmsr(HostMsr::KernelGsBase);
    if host_kgs != st.cpu.kernel_gs_base {
        insn::write_kernel_gs_base(st.cpu.kernel_gs_base);
    }
    let sel = insn::selectors();
    let r = v.current().vmrun(&mut st.cpu.regs, *launched, &mut st.host_rsp);
    st.cpu.cr2 = insn::read_cr2();
    // SWAPGS in the guest changes the real MSR: keep the guest's value,
    // give the task its own back.
    st.cpu.kernel_gs_base = insn::rdmsr(HostMsr::KernelGsBase);
    if st.cpu.kernel_gs_base != host_kgs {
        insn::write_kernel_gs_base(host_kgs);
    }
    if sel.ds | sel.es != 0 {
        insn::load_ds_es(sel);
    }
    let next = match r {
        Ok(()) => {
            let why = ExitReason(v.read(EXIT_REASON));
            // A failed entry leaves the launch state as it was (SDM Vol. 3C 27.8).
            if !why.entry_failed() {
                *launched = true;
            }
            exit::handle(&v, why, &mut st.cpu, env)
        }
        Err(VmxFail::Valid) => Next::ToUser(exit::entry_error(v.read(VM_INSTRUCTION_ERROR))),
        Err(f) => {
            pr_err!("vCPU {}: VM entry failed: {:?}\n", vcpu.id.id, f);
            return Err(EIO);
        }
    };
    if v.failed() {
        return Err(EIO);
    }
    if next == Next::HostNmi {
        insn::raise_nmi();
    }
    Ok(next)
}
