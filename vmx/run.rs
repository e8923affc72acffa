// SPDX-License-Identifier: GPL-2.0
//! The run loop (bhyve's `vmx_run`): enter the guest through the stub in
//! vmx.S, read the exit reason once, dispatch to the pure handlers in
//! `exit/`, and stay in the kernel until an exit needs userland, a signal
//! arrives, or an error. The kernel-bound work is here and nowhere else:
//! publishing the exit record, pinning pages, scheduling, signals, and the
//! host state a guest must not touch.
//!
//! Rules that keep the host safe (KVM's vcpu_enter_guest and vmx_vcpu_run
//! do the same at the same points):
//! - no host-wide lock is held and the task may migrate between entries:
//!   each entry, and the handling of its exit, runs with interrupts off on
//!   one CPU; the VMCS is made current there first, VMCLEARed on the CPU
//!   where it was active if that is another one (vmcs/mod.rs), and the
//!   per-CPU host state and the VPID's cached translations are renewed
//!   when the guest runs on another CPU than last time;
//! - around each entry: guest CR2 and PKRU in, the host's back out; the
//!   guest's IA32_KERNEL_GS_BASE and SYSCALL MSRs stay loaded while the
//!   task is on the CPU (the host kernel uses them only on the way to
//!   userland or another task: the preempt hook and the end of RUN put the
//!   host's back); host hardware breakpoints off, then restored;
//!   IA32_DEBUGCTL restored (an exit clears it); DS/ES reloaded; L1D
//!   flushed as the L1TF mitigation says; the rest of the speculation
//!   defences are in the stub;
//! - the host's NMI or machine check that made the guest exit is handed to
//!   the host before interrupts come back on; the interrupt that made it
//!   exit is taken as soon as they are on; signals (-EINTR) and
//!   rescheduling are handled between entries;
//! - guest FPU state lives in the task's FPU state during RUN (the
//!   kernel's KVM helpers), reloaded before entry after a context switch.

use super::exit::mmio;
use super::exit::strio::{self, PendingStrIn, Step, StrExit};
use crate::vm::memory::SlotMem;
use crate::vmx::exit::strio::GuestMem;
use super::exit_info::{self, EptQual};
use super::exit::{self, Env, Next};
use super::exit_info::{reason, ExitReason};
use super::caps::RawCaps;
use super::insn::{self, HostMsr, Pke, VmxFail};
use super::msr::dirty as msr_dirty;
use crate::vm::cpuid::Cpuid;
use super::mitigation::L1dFlush;
use crate::kapi::{self, Feature, IrqsOff, PreemptHandler};
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use crate::uapi::{self, rvmx_exit_io, rvmx_run};
use crate::vm::memory::Fault;
use crate::vm::vcpu::{State, Vcpu};
use crate::vmcs::field::{
    VmcsAccess, EXIT_REASON, GUEST_CR3, GUEST_CR4, GUEST_DR7, GUEST_IA32_EFER, GUEST_PDPTE0, GUEST_PDPTE1, GUEST_PDPTE2,
    GUEST_PDPTE3, GUEST_RFLAGS, HOST_CR3, HOST_CR4, HOST_FS_BASE, VM_INSTRUCTION_ERROR,
};
use crate::vmcs::{setup, Loaded, NotHere};
use crate::x86::{cr4, efer};
use core::mem::offset_of;
use kernel::prelude::*;

/// RVMX_RUN (the vCPU is claimed: no other ioctl runs on it meanwhile).
pub(crate) fn run(vcpu: &Vcpu) -> Result {
    // Guest memory is the VM creator's memory: only its threads run vCPUs.
    if kapi::current_mm() != vcpu.id.vm.mm() {
        return Err(EIO);
    }
    let mut st = vcpu.state.lock();
    if st.broken {
        return Err(EIO);
    }
    st.fpu.swap(true)?;
    let sw = &vcpu.preempt.handler;
    sw.save_host_syscall();
    sw.guest_kgs.store(st.cpu.kernel_gs_base, Ordering::Relaxed);
    let hook = vcpu.preempt.register();
    let result = run_loop(vcpu, &mut st);
    // Before userland can run here: the CPUs this task left were restored
    // by the hook, this one is done now.
    sw.sched_out();
    drop(hook);
    st.cpu.kernel_gs_base = sw.guest_kgs.load(Ordering::Relaxed);
    let fpu = st.fpu.swap(false);
    result?;
    fpu
}

/// Host state the run loop leaves switched while its task is on a CPU, put
/// back when the task leaves the CPU (the vCPU's preempt hook: KVM's
/// kvm_sched_out and user-return MSRs) and at the end of RUN.
pub(crate) struct HostSwitch {
    /// The task was switched in since the last entry (L1D "cond" flush).
    scheduled_in: AtomicBool,
    /// The guest's SYSCALL MSRs are loaded; the host's are `host_syscall`.
    syscall_loaded: AtomicBool,
    host_syscall: [AtomicU64; 4],
    /// The guest's IA32_KERNEL_GS_BASE is loaded (SWAPGS in the guest may
    /// change it: it is read back when unloaded); the host's is `host_kgs`.
    /// The host kernel uses the MSR only when it returns to userland or
    /// switches tasks (save_fsgs, after the preempt hook ran).
    kgs_loaded: AtomicBool,
    host_kgs: AtomicU64,
    guest_kgs: AtomicU64,
}

impl HostSwitch {
    /// Nothing switched.
    pub(crate) fn new() -> Self {
        Self {
            scheduled_in: AtomicBool::new(false),
            syscall_loaded: AtomicBool::new(false),
            host_syscall: [const { AtomicU64::new(0) }; 4],
            kgs_loaded: AtomicBool::new(false),
            host_kgs: AtomicU64::new(0),
            guest_kgs: AtomicU64::new(0),
        }
    }

    /// Loads the guest's IA32_KERNEL_GS_BASE unless it is loaded.
    /// Interrupts off.
    fn load_guest_kgs(&self) {
        if !self.kgs_loaded.swap(true, Ordering::Relaxed) {
            let host = insn::rdmsr(HostMsr::KernelGsBase);
            self.host_kgs.store(host, Ordering::Relaxed);
            let guest = self.guest_kgs.load(Ordering::Relaxed);
            if guest != host {
                insn::write_kernel_gs_base(guest);
            }
        }
    }

    /// Takes the host's SYSCALL MSRs (the same on every CPU: the kernel's
    /// entry point and selectors, read when rvmx loaded), at the start of RUN.
    fn save_host_syscall(&self) {
        let host = crate::vmx::cpu::host_syscall_msrs();
        let mut i = 0;
        while i < host.len() {
            self.host_syscall[i].store(host[i], Ordering::Relaxed);
            i += 1;
        }
    }

    /// The guest wrote a SYSCALL MSR: the CPU gets it if the guest's are
    /// loaded. Interrupts off.
    fn reload_guest_syscall(&self, guest: [u64; 4]) {
        if self.syscall_loaded.load(Ordering::Relaxed) {
            insn::write_syscall_msrs(guest);
        }
    }

    /// A new guest IA32_KERNEL_GS_BASE (WRMSR that exited, e.g. through
    /// the filter path): into the CPU if the guest's is loaded.
    /// Interrupts off.
    fn set_guest_kgs(&self, guest: u64) {
        self.guest_kgs.store(guest, Ordering::Relaxed);
        if self.kgs_loaded.load(Ordering::Relaxed) {
            insn::write_kernel_gs_base(guest);
        }
    }

    /// Loads the guest's SYSCALL MSRs unless they are loaded. Interrupts off.
    fn load_guest_syscall(&self, guest: [u64; 4]) {
        if !self.syscall_loaded.swap(true, Ordering::Relaxed) {
            insn::write_syscall_msrs(guest);
        }
    }
}

impl PreemptHandler for HostSwitch {
    fn sched_out(&self) {
        let irqs = IrqsOff::new();
        kapi::restore_host_descriptors(&irqs);
        if self.kgs_loaded.swap(false, Ordering::Relaxed) {
            let guest = insn::rdmsr(HostMsr::KernelGsBase);
            self.guest_kgs.store(guest, Ordering::Relaxed);
            let host = self.host_kgs.load(Ordering::Relaxed);
            if guest != host {
                insn::write_kernel_gs_base(host);
            }
        }
        if self.syscall_loaded.swap(false, Ordering::Relaxed) {
            insn::write_syscall_msrs(self.host_syscall.each_ref().map(|v| v.load(Ordering::Relaxed)));
        }
    }

    fn sched_in(&self) {
        self.scheduled_in.store(true, Ordering::Relaxed);
    }
}

/// The exit handlers' environment for vCPU `vcpu_id` (also for the MSR
/// ioctls).
pub(crate) fn env<'a>(caps: &'a RawCaps, vcpu_id: u32, cpuid: &'a Cpuid) -> Env<'a> {
    Env {
        caps,
        vcpu_id,
        host_cpuid: insn::cpuid,
        cpuid: &cpuid.entries,
        cr4_reserved: cpuid.cr4_reserved,
        xcr0_allowed: cpuid.xcr0_allowed,
        maxphyaddr: cpuid.maxphyaddr,
        gbpages: cpuid.gbpages,
        guest: cpuid.guest_caps,
        rdtsc: insn::rdtsc,
        msr_filter: &cpuid.msr_filter,
    }
}

/// What stays the same for a whole RUN.
struct Run<'a> {
    env: Env<'a>,
    /// The host's XCR0, where it has CR4.OSXSAVE.
    host_xcr0: Option<u64>,
    /// Protection keys are on: PKRU is switched (the host's value here).
    pke: Option<(Pke, u32)>,
    l1d: L1dFlush,
    /// The kernel wants IBPB before userland after a guest ran (VMSCAPE).
    ibpb_exit_to_user: bool,
}

fn run_loop(vcpu: &Vcpu, st: &mut State) -> Result {
    let caps = crate::vmx::cpu::loaded_caps()?;
    let pke = Pke::here().map(|p| (p, p.read()));
    let host_xcr0 = (insn::read_cr4() & cr4::OSXSAVE != 0).then(insn::xgetbv0);
    // The CPUID table stays as it is for the RUN (SET_CPUID cannot run
    // meanwhile: the vCPU is claimed).
    let mut cpuid = vcpu.cpuid.lock();
    // The VM's MSR filter changed since the last RUN: a new bitmap.
    if vcpu.id.vm.filter_gen() != cpuid.filter_gen {
        let (filter, gen) = vcpu.id.vm.msr_filter();
        crate::vm::vcpu::fill_msr_bitmap(&mut st.msr_bitmap, &filter)?;
        cpuid.msr_filter = filter;
        cpuid.filter_gen = gen;
    }
    let run = Run {
        env: env(&caps, vcpu.id.id, &cpuid),
        host_xcr0,
        pke,
        l1d: crate::vmx::cpu::l1d_mode(),
        ibpb_exit_to_user: kapi::cpu_has(Feature::IbpbExitToUser),
    };
    // Back from userland: the host ran arbitrary code since the last entry.
    st.l1d_flush = true;
    // An INS batch: userland's elements go to guest memory (interrupts on).
    if let Some(p) = st.cpu.pending_str_in.take() {
        complete_string_in(vcpu, st, &p)?;
    }
    // An MMIO access userland performed: the instruction goes on (it may
    // need userland again at once, without entering the guest).
    if st.cpu.pending_mmio.is_some() {
        let at = offset_of!(rvmx_run, __bindgen_anon_1) + offset_of!(uapi::rvmx_exit_mmio, data);
        let data = vcpu.run_page.read_u64(at).unwrap_or(0);
        let out = {
            let mem = vcpu.id.vm.memory();
            mmio::resume(&mut st.cpu.regs, &mut SlotMem(mem), data, &mut st.cpu.pending_mmio)
        };
        if let Some(e) = mmio_done(vcpu, st, out, 0, 0)? {
            publish(vcpu, st, &e);
            return Ok(());
        }
    }
    st.cpu.want_irq_window = vcpu.run_page.read_u8(offset_of!(rvmx_run, request_interrupt_window)).unwrap_or(0) != 0;
    let mut first = true;
    loop {
        if kapi::signal_pending() {
            return Err(EINTR);
        }
        if kapi::need_resched() {
            kapi::schedule();
            st.l1d_flush = true;
        }
        if st.cpu.load_pdptes {
            load_pdptes(vcpu, st)?;
        }
        let next = {
            let irqs = IrqsOff::new();
            let v = match vcpu.vmcs.load(&irqs) {
                Ok(v) => v,
                Err(NotHere::ActiveOn(cpu)) => {
                    // Clear it there (an IPI needs interrupts on), then retry.
                    drop(irqs);
                    vcpu.vmcs.clear_on(cpu);
                    continue;
                }
                Err(NotHere::VmxOff) => {
                    // This CPU is going down (or the host is): let the
                    // scheduler move us; signals still end the RUN.
                    drop(irqs);
                    if crate::vmx::cpu::shutting_down() {
                        return Err(EIO);
                    }
                    kapi::schedule();
                    continue;
                }
                Err(NotHere::Failed(e)) => return Err(e.into()),
            };
            // A context switch since the last entry leaves the guest's FPU
            // state in memory only.
            kapi::reload_fpu_if_needed(&irqs);
            enter_and_exit(vcpu, st, &run, &irqs, &v, core::mem::take(&mut first))
        };
        // The tick that made the guest exit has been counted as guest time
        // by now (PF_VCPU was still set when interrupts came back on); on
        // every path, errors too.
        kapi::guest_exit(&IrqsOff::new());
        let next = next?;
        // Interrupts are on again: a host interrupt that made the guest
        // exit has been handled by now.
        match next {
            Next::Resume | Next::HostNmi | Next::HostMachineCheck => {}
            Next::SplitLock { rip } => {
                // Warn (the guest runs on) or SIGBUS for the VMM (the next
                // iteration sees it), as the host's split-lock policy says.
                let _ = kapi::handle_guest_split_lock(rip);
                st.l1d_flush = true;
            }
            Next::ToUser(e) => {
                publish(vcpu, st, &e);
                return Ok(());
            }
            Next::StringIo(x) => {
                st.l1d_flush = true;
                if let Some(e) = string_io(vcpu, st, &x)? {
                    publish(vcpu, st, &e);
                    return Ok(());
                }
            }
            Next::Fault { gpa, qualification } => {
                // Pinning may sleep: done here, with interrupts on.
                st.l1d_flush = true;
                let write = EptQual(qualification).write();
                let fault = vcpu.id.vm.memory().lock().fault(gpa, write)?;
                if let Fault::Unmapped = fault {
                    if let Some(e) = mmio_start(vcpu, st, &run.env, gpa, qualification)? {
                        publish(vcpu, st, &e);
                        return Ok(());
                    }
                }
            }
        }
    }
}

/// The guest wrote MSRs the run loop switches: the CPU gets the new values
/// where the guest's are loaded (interrupts off, VMCS current).
fn msr_changed(vcpu: &Vcpu, st: &mut State, v: &Loaded<'_>, dirty: u32) {
    let sw = &vcpu.preempt.handler;
    if dirty & msr_dirty::EFER != 0 {
        // SYSCALL MSRs are switched from now on if SCE is set (they stay
        // loaded, harmless, if it was cleared).
        st.guest_sce = v.read(GUEST_IA32_EFER) & efer::SCE != 0;
    }
    if dirty & msr_dirty::SYSCALL != 0 {
        sw.reload_guest_syscall(st.cpu.syscall);
    }
    if dirty & msr_dirty::KERNEL_GS_BASE != 0 {
        sw.set_guest_kgs(st.cpu.kernel_gs_base);
    }
}

/// Puts exit `e` in the run record for userland.
fn publish(vcpu: &Vcpu, st: &State, e: &exit::UserExit) {
    kapi::publish_exit(&vcpu.run_page, &e.into(), uapi::used_len(e), st.user_flags);
}

/// PAE paging: the four PDPTEs at CR3 go into the VMCS, which VM entry
/// loads them from with EPT (SDM Vol. 3C 27.3.2.4; KVM's ept_load_pdptrs).
/// Interrupts on (guest memory may fault in). PDPTEs outside guest memory
/// read as not present.
fn load_pdptes(vcpu: &Vcpu, st: &mut State) -> Result {
    st.cpu.load_pdptes = false;
    let cr3 = vcpu.vmcs.with_loaded(|v| v.read(GUEST_CR3))?;
    let mut raw = [0u8; 32];
    if !SlotMem(vcpu.id.vm.memory()).read(cr3 & 0xffff_ffe0, &mut raw) {
        raw = [0; 32];
    }
    let e = |i: usize| u64::from_le_bytes([raw[8 * i], raw[8 * i + 1], raw[8 * i + 2], raw[8 * i + 3], raw[8 * i + 4], raw[8 * i + 5], raw[8 * i + 6], raw[8 * i + 7]]);
    vcpu.vmcs.with_loaded(|v| {
        v.write(GUEST_PDPTE0, e(0));
        v.write(GUEST_PDPTE1, e(1));
        v.write(GUEST_PDPTE2, e(2));
        v.write(GUEST_PDPTE3, e(3));
    })
}

/// An access outside guest RAM at `gpa`: the instruction is emulated
/// (exit/mmio.rs); the exit record if userland must act, else `None`.
fn mmio_start(vcpu: &Vcpu, st: &mut State, env: &Env<'_>, gpa: u64, qualification: u64) -> Result<Option<exit::UserExit>> {
    // Executing from MMIO: nothing to emulate; and an access made while
    // delivering an event (its IDT, GDT or stack outside RAM: the event
    // is already set to be delivered again) is not the instruction's at
    // RIP (KVM reports such exits to userland too).
    if EptQual(qualification).fetch() || st.cpu.injecting {
        let raw = mmio::Outcome::Raw { bytes: [0; 15], len: 0 };
        return Ok(exit::mmio(gpa, qualification, &raw));
    }
    let frame = vcpu.vmcs.with_loaded(|v| mmio::Frame::read(v, env.maxphyaddr, env.gbpages))?;
    let out = {
        let mem = vcpu.id.vm.memory();
        let write = EptQual(qualification).write();
        mmio::start(frame, &mut st.cpu.regs, &mut SlotMem(mem), gpa, write, &mut st.cpu.pending_mmio)
    };
    mmio_done(vcpu, st, out, gpa, qualification)
}

/// Acts on an MMIO emulation's outcome: registers back into the VMCS and
/// RIP on when it is done, a fault queued, or the exit record for userland.
/// `gpa` and `qualification` are the EPT violation's (for an instruction
/// that did not decode); an access names its own address.
fn mmio_done(
    vcpu: &Vcpu,
    st: &mut State,
    out: mmio::Outcome,
    gpa: u64,
    qualification: u64,
) -> Result<Option<exit::UserExit>> {
    match out {
        mmio::Outcome::Done { len } => {
            if let Some(m) = st.cpu.pending_mmio.take() {
                vcpu.vmcs.with_loaded(|v| {
                    m.frame.write_back(v);
                    exit::skip_instruction(v, &mut st.cpu, len.into());
                })?;
            }
            Ok(None)
        }
        mmio::Outcome::Repeat => {
            if let Some(m) = st.cpu.pending_mmio.take() {
                vcpu.vmcs.with_loaded(|v| m.frame.write_back(v))?;
            }
            Ok(None)
        }
        mmio::Outcome::Fault(e) => {
            // A queued exception goes first; the instruction faults again.
            st.cpu.events.exception.get_or_insert(e);
            Ok(None)
        }
        mmio::Outcome::Exit { .. } | mmio::Outcome::Raw { .. } => Ok(exit::mmio(gpa, qualification, &out)),
    }
}

/// INS/OUTS: one batch between guest memory and the data area (strio.rs).
/// The exit record for userland, or `None` to enter the guest again.
fn string_io(vcpu: &Vcpu, st: &mut State, x: &StrExit) -> Result<Option<exit::UserExit>> {
    let (is_in, size, port) = (x.s.is_in, x.s.size, x.s.port);
    let step = {
        let mem = vcpu.id.vm.memory();
        strio::start(x, &mut st.cpu.regs, &mut SlotMem(mem), &mut st.io_buf[..])
    };
    match step {
        Step::Report { count, complete } => {
            let bytes = count as usize * usize::from(size);
            vcpu.run_page.write_bytes(uapi::RVMX_RUN_DATA_OFFSET as usize, &st.io_buf[..bytes]);
            if complete {
                vcpu.vmcs.with_loaded(|v| exit::skip_instruction(v, &mut st.cpu, x.len))?;
            }
            Ok(Some(exit::UserExit::StrIo { is_in, size, port, count }))
        }
        Step::Wait { count, pending } => {
            st.cpu.pending_str_in = Some(pending);
            Ok(Some(exit::UserExit::StrIo { is_in, size, port, count }))
        }
        Step::Empty => {
            vcpu.vmcs.with_loaded(|v| exit::skip_instruction(v, &mut st.cpu, x.len))?;
            Ok(None)
        }
        Step::Fault(e) => {
            st.cpu.events.exception.get_or_insert(e);
            Ok(None)
        }
        // To or from MMIO (or a ROM): userland gets the exit raw, RIP at
        // the instruction (rvmx moves strings only between RAM and ports).
        Step::NotRam => Ok(Some(exit::UserExit::Vmx {
            reason: u32::from(exit_info::reason::IO),
            instruction_length: x.len as u32,
            qualification: x.qual,
            guest_physical_address: 0,
            guest_linear_address: 0,
            intr_info: 0,
            instruction_info: x.info,
        })),
    }
}

/// Completes an INS batch with the elements userland left in the data area.
fn complete_string_in(vcpu: &Vcpu, st: &mut State, p: &PendingStrIn) -> Result {
    let bytes = p.b.bytes();
    let buf = &mut st.io_buf[..bytes];
    vcpu.run_page.read_bytes(uapi::RVMX_RUN_DATA_OFFSET as usize, buf);
    let done = {
        let mem = vcpu.id.vm.memory();
        strio::complete_in(p, &mut st.cpu.regs, &mut SlotMem(mem), buf)
    };
    match done {
        Some(true) => vcpu.vmcs.with_loaded(|v| exit::skip_instruction(v, &mut st.cpu, p.x.len)),
        Some(false) => Ok(()),
        None => Err(EFAULT),
    }
}

/// One entry and the handling of its exit, with the VMCS current and
/// interrupts off; `first` on the first entry of this RUN.
fn enter_and_exit(vcpu: &Vcpu, st: &mut State, run: &Run<'_>, irqs: &IrqsOff, v: &Loaded<'_>, first: bool) -> Result<Next> {
    let here = kapi::this_cpu() as i32;
    if st.host.cpu != here {
        // Another CPU than last time: its GDT, TSS, per-CPU area and entry
        // stack, and no translations it may still hold for this VPID.
        setup::host_per_cpu(v);
        st.host.cpu = here;
        st.cpu.flush_tlb = true;
    }
    // The kernel may change CR3 (PCID, PTI) or CR4 between entries.
    let (cr3, cr4) = (insn::read_cr3(), insn::read_cr4());
    if cr3 != st.host.cr3 {
        v.write(HOST_CR3, cr3);
        st.host.cr3 = cr3;
    }
    if cr4 != st.host.cr4 {
        v.write(HOST_CR4, cr4);
        st.host.cr4 = cr4;
    }
    if first {
        // FS base is the calling thread's (each thread of the VMM has its own).
        let fs = insn::rdmsr(HostMsr::FsBase);
        if fs != st.host.fs_base {
            v.write(HOST_FS_BASE, fs);
            st.host.fs_base = fs;
        }
        // SYSCALL in the guest must not use (and show) the host's entry
        // point: the guest's MSRs while it has EFER.SCE (EFER cannot change
        // during a RUN but by SET_SREGS, between RUNs).
        st.guest_sce = v.read(GUEST_IA32_EFER) & efer::SCE != 0;
        if st.cpu.pending_in.is_some() {
            let data = vcpu.run_page.read_u64(offset_of!(rvmx_run, __bindgen_anon_1) + offset_of!(rvmx_exit_io, data));
            exit::complete_in(v, &mut st.cpu, data.unwrap_or(0));
        }
        if st.cpu.pending_msr.is_some() {
            let at = offset_of!(rvmx_run, __bindgen_anon_1);
            let data = vcpu.run_page.read_u64(at + offset_of!(uapi::rvmx_exit_msr, data)).unwrap_or(0);
            let error = vcpu.run_page.read_u8(at + offset_of!(uapi::rvmx_exit_msr, error)).unwrap_or(1) != 0;
            exit::complete_msr(v, &mut st.cpu, data, error);
        }
        // Userland asked to get control back at once (KVM's immediate_exit),
        // after the pending I/O completed.
        if vcpu.run_page.read_u8(offset_of!(rvmx_run, immediate_exit)) != Some(0) {
            return Err(EINTR);
        }
    }
    if st.cpu.flush_tlb {
        vcpu.vpid.flush_here(run.env.caps);
        st.cpu.flush_tlb = false;
    }
    // Queued events go in now if the guest can take them (else windows).
    exit::event::prepare(v, &mut st.cpu);
    if v.failed() {
        st.broken = true;
        return Err(EIO);
    }

    // Host state the guest must not see or change, switched last. PKRU:
    // the guest's own while it has protection keys on (KVM's
    // kvm_load_guest_xsave_state).
    if let Some((p, host)) = run.pke {
        if v.read(GUEST_CR4) & cr4::PKE != 0 && st.cpu.pkru != host {
            p.write(st.cpu.pkru);
        }
    }
    let breakpoints = kapi::hw_breakpoint_active();
    if breakpoints {
        insn::write_dr7_fixed();
    }
    // The guest's DR0-3 and DR6 while it owns them or has breakpoints on
    // (KVM's switch_db_regs).
    let guest_debug = st.cpu.debug_owned || st.cpu.breakpoints_on;
    if guest_debug {
        insn::write_guest_debug_regs(&st.cpu.db, st.cpu.dr6);
    }
    // XCR0: the guest's while it has CR4.OSXSAVE (KVM's
    // kvm_load_guest_xsave_state).
    let xcr0_switched = match run.host_xcr0 {
        Some(host) if st.cpu.osxsave && st.cpu.xcr0 != host => {
            insn::xsetbv0(st.cpu.xcr0);
            Some(host)
        }
        _ => None,
    };
    let debugctl = insn::rdmsr(HostMsr::DebugCtl);
    if insn::read_cr2() != st.cpu.cr2 {
        insn::write_cr2(st.cpu.cr2);
    }
    vcpu.preempt.handler.load_guest_kgs();
    if st.guest_sce {
        vcpu.preempt.handler.load_guest_syscall(st.cpu.syscall);
    }
    let sel = insn::data_selectors();
    let ldt = insn::sldt();
    kapi::guest_enter(irqs);
    // L1D last: nothing of the host's may come back into it before entry.
    let flush = match run.l1d {
        L1dFlush::Always => true,
        L1dFlush::Cond => {
            // Since the last entry: back from userland, rescheduled or moved
            // (the preempt hook), an interrupt or NMI here, a page fault-in.
            let scheduled = vcpu.preempt.handler.scheduled_in.swap(false, Ordering::Relaxed);
            let irq = kapi::take_irq_l1d_flush(irqs);
            core::mem::take(&mut st.l1d_flush) | scheduled | irq
        }
        L1dFlush::Never => false,
    };
    if flush {
        crate::vmx::cpu::flush_l1d();
    }

    // SAFETY: the VMCS `v` is this vCPU's (`vcpu.vmcs`, loaded above) and
    // its host state is right for this CPU and task: the constant part was
    // written at creation (vmcs/setup.rs), the per-CPU part when the guest
    // last ran on this CPU (`st.host.cpu`), CR3, CR4 and FS base just now;
    // `host_rsp` and `launched` are the VMCS's own.
    let r = unsafe { v.current().vmrun(&mut st.cpu.regs, vcpu.vmcs.launched(), vcpu.vmcs.host_rsp()) };

    // A guest ran here: the kernel's VMSCAPE mitigation issues IBPB before
    // userland runs on this CPU (KVM sets the same flag).
    if run.ibpb_exit_to_user {
        kapi::ibpb_before_userland(irqs);
    }
    if let Some(host) = xcr0_switched {
        insn::xsetbv0(host);
    }
    // The exit set DR7 to 0x400 and cleared IA32_DEBUGCTL (SDM Vol. 3C
    // 28.5.1): the host's come back first. DR0-3 and DR6 the guest may
    // have written are saved (it owned them) and MOV DR exits again.
    if debugctl != 0 {
        insn::restore_debugctl(debugctl);
    }
    if guest_debug {
        let dr6 = insn::take_guest_debug_regs(&mut st.cpu.db);
        if st.cpu.debug_owned {
            st.cpu.dr6 = dr6;
            st.cpu.debug_owned = false;
            exit::debug::reclaim(v);
            st.cpu.breakpoints_on = v.read(GUEST_DR7) & 0xff != 0;
        }
    }
    if breakpoints {
        kapi::hw_breakpoint_restore();
    }
    st.cpu.cr2 = insn::read_cr2();
    // Whatever the guest did with CR4.PKE meanwhile, the task's PKRU is
    // back before anything else runs; the guest's is kept if it uses them.
    if let Some((p, host)) = run.pke {
        let now = p.read();
        if v.read(GUEST_CR4) & cr4::PKE != 0 {
            st.cpu.pkru = now;
        }
        if now != host {
            p.write(host);
        }
    }
    if sel.ds_es_set() {
        insn::load_ds_es(&sel);
    }
    ldt.restore();
    let next = match r {
        Ok(()) => {
            let why = ExitReason(v.read(EXIT_REASON));
            // A failed entry leaves the launch state as it was (SDM Vol. 3C 27.8).
            if !why.entry_failed() {
                vcpu.vmcs.set_launched();
            }
            if why.basic() == reason::MACHINE_CHECK_ENTRY {
                kapi::machine_check();
            }
            // Host interrupt handlers run next: L1D may hold their secrets.
            if matches!(why.basic(), reason::EXTERNAL_INTERRUPT | reason::EXCEPTION_NMI) {
                st.l1d_flush = true;
            }
            let next = exit::handle(v, why, &mut st.cpu, &run.env);
            let dirty = st.cpu.msrs.take_dirty();
            if dirty != 0 {
                msr_changed(vcpu, st, v, dirty);
            }
            next
        }
        Err(VmxFail::Valid) => Next::ToUser(exit::entry_error(v, &run.env, v.read(VM_INSTRUCTION_ERROR))),
        Err(f) => {
            pr_err!("vCPU {}: VM entry failed: {:?}\n", vcpu.id.id, f);
            return Err(EIO);
        }
    };
    // What userland learns with any exit it sees: whether an interrupt
    // could go in at the next entry, and RFLAGS.IF (KVM's
    // ready_for_interrupt_injection and if_flag).
    if !matches!(next, Next::Resume) {
        let ready = exit::event::interrupt_allowed(v) && st.cpu.events.interrupt.is_none() && !st.cpu.injecting;
        let iflag = v.read(GUEST_RFLAGS) & crate::x86::rflags::IF != 0;
        st.user_flags = u16::from(ready) | (u16::from(iflag) << 8);
    }
    // The host's NMI or machine check first, whatever else went wrong.
    match next {
        Next::HostNmi => insn::raise_nmi(irqs),
        Next::HostMachineCheck => kapi::machine_check(),
        _ => {}
    }
    if v.failed() {
        st.broken = true;
        return Err(EIO);
    }
    Ok(next)
}
