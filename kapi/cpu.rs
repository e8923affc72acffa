// SPDX-License-Identifier: GPL-2.0
//! CPUs: hotplug callbacks, the reboot/kexec/crash and suspend/resume hooks
//! (with the state they reach), cross-CPU calls, CR4 through the kernel,
//! this CPU's number, and a guard for interrupts.

use super::raw;
use core::pin::Pin;
use core::sync::atomic::{AtomicPtr, Ordering};
use kernel::error::to_result;
use kernel::prelude::*;
use kernel::str::CStr;
use kernel::types::Opaque;

/// The number of CPU ids (`nr_cpu_ids`): every CPU number is below it.
pub(crate) fn nr_cpu_ids() -> u32 {
    // SAFETY: set once during boot, read-only afterwards.
    unsafe { raw::nr_cpu_ids }
}

/// The number of the CPU this runs on. Stable only while the task cannot
/// migrate (interrupts off, as in the run loop).
pub(crate) fn this_cpu() -> u32 {
    const OFF: usize = raw::RVMX_PCPU_CPU_NUMBER as usize;
    let cpu: u32;
    // SAFETY: what raw_smp_processor_id() does: a 32-bit load of
    // `pcpu_hot.cpu_number` in this CPU's per-CPU area (GS-relative; the
    // symbol's value is its offset there).
    unsafe {
        core::arch::asm!("mov {0:e}, gs:[{1} + {2}]", out(reg) cpu, sym raw::pcpu_hot, const OFF,
                         options(nostack, readonly, preserves_flags))
    };
    cpu
}

/// CPU features and bugs the kernel found (or turned on to mitigate a
/// bug): `boot_cpu_has()`.
#[derive(Clone, Copy)]
pub(crate) enum Feature {
    /// IA32_FLUSH_CMD flushes the L1D cache.
    FlushL1d,
    /// IA32_ARCH_CAPABILITIES exists.
    ArchCapabilities,
    /// The CPU is affected by L1 Terminal Fault.
    BugL1tf,
    /// The kernel issues IBPB before userland runs after a guest ran on
    /// the CPU (VMSCAPE).
    IbpbExitToUser,
}

/// Whether the boot CPU has `f` (the kernel's `boot_cpu_has`).
pub(crate) fn cpu_has(f: Feature) -> bool {
    let bit = match f {
        Feature::FlushL1d => raw::RVMX_FEATURE_FLUSH_L1D,
        Feature::ArchCapabilities => raw::RVMX_FEATURE_ARCH_CAPABILITIES,
        Feature::BugL1tf => raw::RVMX_BUG_L1TF,
        Feature::IbpbExitToUser => raw::RVMX_FEATURE_IBPB_EXIT_TO_USER,
    } as usize;
    let base = core::ptr::addr_of!(raw::boot_cpu_data).cast::<u8>();
    // SAFETY: `boot_cpu_data` is set up during boot and read-only after;
    // `x86_capability` (at RVMX_CPUINFO_CAPS) is an array of u32 with room
    // for every feature and bug bit, `bit` being one of them.
    let word = unsafe { base.add(raw::RVMX_CPUINFO_CAPS as usize + 4 * (bit / 32)).cast::<u32>().read() };
    word & (1 << (bit % 32)) != 0
}

/// The kernel's L1TF mitigation choice (`l1tf=`), by the names of its enum
/// (values differ between kernel versions).
pub(crate) fn l1tf_mitigation() -> crate::vmx::mitigation::L1tf {
    use crate::vmx::mitigation::L1tf;
    // SAFETY: set during boot, read-only after.
    let v = unsafe { raw::l1tf_mitigation };
    match v {
        raw::l1tf_mitigations_L1TF_MITIGATION_OFF => L1tf::Off,
        raw::l1tf_mitigations_L1TF_MITIGATION_FULL | raw::l1tf_mitigations_L1TF_MITIGATION_FULL_FORCE => L1tf::Full,
        _ => L1tf::Flush,
    }
}

/// Asks for an IBPB before userland next runs on this CPU (VMSCAPE: a
/// guest ran here), as KVM does after each exit when the kernel mitigates
/// VMSCAPE. Interrupts off (it must land on the CPU that ran the guest).
pub(crate) fn ibpb_before_userland(_irqs_off: &IrqsOff) {
    // SAFETY: a GS-relative byte store to this CPU's `x86_ibpb_exit_to_user`
    // (`this_cpu_write(x86_ibpb_exit_to_user, true)`), which the kernel's
    // exit-to-user path reads and clears.
    unsafe {
        core::arch::asm!("mov byte ptr gs:[{0}], 1", sym raw::x86_ibpb_exit_to_user, options(nostack, preserves_flags))
    };
}

/// Whether an interrupt or NMI ran on this CPU since the last call (the
/// kernel's per-CPU flag that KVM's L1D "cond" flush reads and clears);
/// always `true` in kernels that do not keep it. Interrupts off.
pub(crate) fn take_irq_l1d_flush(_irqs_off: &IrqsOff) -> bool {
    #[cfg(CONFIG_KVM_INTEL)]
    {
        let v: u32;
        // SAFETY: GS-relative read and clear of this CPU's
        // `irq_stat.kvm_cpu_l1tf_flush_l1d`, which interrupt entry sets,
        // with interrupts off (kvm_get/clear_cpu_l1tf_flush_l1d).
        unsafe {
            core::arch::asm!(
                "movzx {0:e}, byte ptr gs:[{1} + {2}]",
                "mov byte ptr gs:[{1} + {2}], 0",
                out(reg) v, sym raw::irq_stat, const raw::RVMX_IRQ_STAT_L1TF as usize,
                options(nostack, preserves_flags))
        };
        v != 0
    }
    #[cfg(not(CONFIG_KVM_INTEL))]
    true
}

/// Whether host hardware breakpoints are armed on this CPU (the kernel's
/// `hw_breakpoint_active()`: a global enable bit in its per-CPU DR7 copy).
pub(crate) fn hw_breakpoint_active() -> bool {
    let dr7: u64;
    // SAFETY: a GS-relative 64-bit load of this CPU's `cpu_dr7`, as
    // `__this_cpu_read(cpu_dr7)` does.
    unsafe {
        core::arch::asm!("mov {0}, gs:[{1}]", out(reg) dr7, sym raw::cpu_dr7, options(nostack, readonly, preserves_flags))
    };
    dr7 & 0xaa != 0 // DR_GLOBAL_ENABLE_MASK
}

/// Reloads this CPU's hardware breakpoints (DR0-3, DR6, DR7) from the
/// kernel's copies, after a VM exit reset DR7.
pub(crate) fn hw_breakpoint_restore() {
    // SAFETY: what KVM calls after each exit, with interrupts off.
    unsafe { raw::hw_breakpoint_restore() };
}

/// Hands a machine check that hit while the guest ran (or during VM entry)
/// to the kernel's handler, as KVM's kvm_machine_check(): as if it came
/// from user mode with interrupts on. Interrupts off.
pub(crate) fn machine_check() {
    #[cfg(CONFIG_X86_MCE)]
    {
        let mut regs: raw::pt_regs = Default::default();
        regs.__bindgen_anon_1.cs = 3;
        regs.flags = 1 << 9;
        // SAFETY: `regs` is a valid frame for the handler's decisions.
        unsafe { raw::do_machine_check(&mut regs) };
    }
}

/// The host's split-lock policy for a guest's split-lock #AC at `rip`:
/// `true` to let the guest run on (a warning), `false` when the VMM task
/// got SIGBUS. Without split-lock detection no such #AC can happen.
pub(crate) fn handle_guest_split_lock(rip: u64) -> bool {
    #[cfg(CONFIG_X86_BUS_LOCK_DETECT)]
    // SAFETY: what KVM calls for such an #AC, in task context.
    return unsafe { raw::handle_guest_split_lock(rip as _) };
    #[cfg(not(CONFIG_X86_BUS_LOCK_DETECT))]
    {
        let _ = rip;
        true
    }
}

/// Puts back what VM exits leave behind in this CPU's descriptor tables
/// (SDM Vol. 3C 28.5.2): the GDT limit (an exit sets 0xFFFF) and the TSS
/// limit (0x67, which cuts off the I/O bitmap: marked for a reload before
/// the next task that uses one returns to userland), as KVM does before
/// userland can run on the CPU. Interrupts off.
pub(crate) fn restore_host_descriptors(_irqs_off: &IrqsOff) {
    let cpu = this_cpu();
    // SAFETY: reloads this CPU's own (read-only, fixmap) GDT, interrupts off.
    unsafe { raw::load_fixmap_gdt(cpu as i32) };
    // SAFETY: a GS-relative byte store to this CPU's `__tss_limit_invalid`
    // (`this_cpu_write(__tss_limit_invalid, true)`), which the kernel reads
    // before it next relies on the TSS limit (refresh_tss_limit).
    unsafe {
        core::arch::asm!("mov byte ptr gs:[{0}], 1", sym raw::__tss_limit_invalid, options(nostack, preserves_flags))
    };
}

/// Runs `f(data)` on `cpu` and waits for it (in interrupt context there,
/// so `f` must not sleep). `Err(ENXIO)` if the CPU is offline.
pub(crate) fn run_on_cpu<T>(cpu: u32, data: &mut T, f: fn(&mut T)) -> Result {
    struct Call<T> {
        data: *mut T,
        f: fn(&mut T),
    }
    /// # Safety
    /// `info` must point to a live `Call<T>`.
    unsafe extern "C" fn trampoline<T>(info: *mut core::ffi::c_void) {
        // SAFETY: `info` is the `Call<T>` below, alive until
        // smp_call_function_single returns (wait = 1).
        let call = unsafe { &*(info as *const Call<T>) };
        // SAFETY: `data` comes from the caller's `&mut T`, not used by the
        // caller while the call runs.
        (call.f)(unsafe { &mut *call.data });
    }
    let mut call = Call { data: data as *mut T, f };
    // SAFETY: waits for completion, so `call` outlives the callback.
    let ret = unsafe {
        raw::smp_call_function_single(cpu as _, Some(trampoline::<T>), (&mut call as *mut Call<T>).cast(), 1)
    };
    to_result(ret)
}

/// Runs `f(data)` on every online CPU, one at a time, and waits.
pub(crate) fn on_each_cpu<T>(data: &mut T, f: fn(&mut T)) {
    for cpu in 0..nr_cpu_ids() {
        // Offline CPUs (ENXIO) are skipped: they run nothing.
        let _ = run_on_cpu(cpu, data, f);
    }
}

/// The callbacks of [`Callbacks::register`]: plain functions, since the
/// kernel calls them without a context argument (they find their state
/// with [`CallbackState::get`]).
pub(crate) struct CpuCallbacks {
    /// The CPU-hotplug state's name.
    pub(crate) name: &'static CStr,
    /// Runs on each CPU that comes online (and every online CPU at
    /// registration): 0 or a negative errno.
    pub(crate) up: extern "C" fn(cpu: u32) -> i32,
    /// Runs on each CPU going offline (and every online CPU when removed).
    pub(crate) down: extern "C" fn(cpu: u32) -> i32,
    /// Reboot, kexec or crash: runs on every CPU, interrupts off, maybe in
    /// NMI context.
    pub(crate) emergency: extern "C" fn(),
    /// Suspend, on the last CPU online, interrupts off: 0 or -errno.
    pub(crate) suspend: extern "C" fn(*mut core::ffi::c_void) -> i32,
    /// Resume, on that CPU.
    pub(crate) resume: extern "C" fn(*mut core::ffi::c_void),
    /// Reboot or kexec, in the CPU that does it, before the others stop
    /// (KVM's kvm_shutdown): interrupts on. The argument is unused (NULL).
    pub(crate) shutdown: extern "C" fn(*mut core::ffi::c_void),
}

/// Where callbacks without a context argument find their state: set while
/// a [`Callbacks`] owns it.
pub(crate) struct CallbackState<T: 'static>(AtomicPtr<T>);

impl<T: Sync + 'static> CallbackState<T> {
    /// Empty.
    pub(crate) const fn new() -> Self {
        Self(AtomicPtr::new(core::ptr::null_mut()))
    }

    /// The state, while the callbacks are registered.
    pub(crate) fn get(&self) -> Option<&T> {
        let p = self.0.load(Ordering::Acquire);
        // SAFETY: non-null only while a `Callbacks` owns the box it points
        // to. Its users are the registered callbacks, which `Callbacks::drop`
        // unregisters first (the kernel waits for running ones), and the
        // module's file operations, which cannot run then: `Callbacks` is
        // dropped on module unload, when no file is open (each pins the
        // module). Only then is the pointer cleared and the box freed.
        (!p.is_null()).then(|| unsafe { &*p })
    }
}

/// CPU-hotplug, emergency and syscore callbacks, registered with their
/// state while this lives. The emergency callback is registered right
/// after the hotplug state turned VMX on (registering it first would WARN
/// when another hypervisor holds the kernel's single slot) and goes last,
/// so a crash while VMX is on turns it off; dropping removes the syscore
/// hooks, the hotplug state (which runs `down` on every online CPU), the
/// emergency callback, and then frees the state.
pub(crate) struct Callbacks<T: Sync + 'static> {
    syscore: Option<KBox<Syscore>>,
    emergency: Option<extern "C" fn()>,
    hotplug: Option<i32>,
    slot: &'static CallbackState<T>,
    state: Option<Pin<KBox<T>>>,
}

/// The `struct syscore` registration, boxed so its address is stable.
struct Syscore {
    node: Opaque<raw::syscore>,
    ops: raw::syscore_ops,
}

impl<T: Sync + 'static> Callbacks<T> {
    /// Publishes `state` in `slot`, then registers `cb`. The hotplug `up`
    /// runs on every online CPU before this returns; if it fails on any,
    /// the core runs `down` on those that succeeded and this fails.
    pub(crate) fn register(slot: &'static CallbackState<T>, state: Pin<KBox<T>>, cb: CpuCallbacks) -> Result<Self> {
        // The box does not move (it is pinned), so the address stays valid.
        let p = &*state as *const T as *mut T;
        if slot.0.compare_exchange(core::ptr::null_mut(), p, Ordering::AcqRel, Ordering::Acquire).is_err() {
            return Err(EBUSY);
        }
        // From here, dropping `this` undoes whatever was done.
        let mut this = Self { syscore: None, emergency: None, hotplug: None, slot, state: Some(state) };
        // SAFETY: `name` is 'static; the callbacks are plain functions that
        // stay valid while the module is loaded; the state is removed in
        // `drop`, which the module's exit path always reaches.
        let ret = unsafe {
            raw::__cpuhp_setup_state(
                raw::cpuhp_state_CPUHP_AP_ONLINE_DYN,
                cb.name.as_char_ptr(),
                true,
                Some(cb.up),
                Some(cb.down),
                false,
            )
        };
        if ret < 0 {
            return Err(Error::from_errno(ret));
        }
        this.hotplug = Some(ret);
        // Only now: if another hypervisor owns VMX (and this callback slot),
        // the hotplug state failed above, before anything was registered.
        // SAFETY: the callback stays valid until unregistered in `drop`.
        unsafe { raw::cpu_emergency_register_virt_callback(Some(cb.emergency)) };
        this.emergency = Some(cb.emergency);
        let ops = raw::syscore_ops { suspend: Some(cb.suspend), resume: Some(cb.resume), shutdown: Some(cb.shutdown) };
        let reg = KBox::new(Syscore { node: Opaque::uninit(), ops }, GFP_KERNEL)?;
        let n = reg.node.get();
        // SAFETY: `n` is ours, sized for `struct syscore`; zero is its empty
        // state (the core links `node`); `ops` lives in the same box, so it
        // and the hooks outlive the registration.
        unsafe {
            n.write(core::mem::zeroed());
            (*n).ops = &reg.ops;
            raw::register_syscore(n);
        }
        this.syscore = Some(reg);
        Ok(this)
    }
}

impl<T: Sync + 'static> Drop for Callbacks<T> {
    fn drop(&mut self) {
        if let Some(reg) = self.syscore.take() {
            // SAFETY: registered in `register`, unregistered once.
            unsafe { raw::unregister_syscore(reg.node.get()) };
        }
        if let Some(state) = self.hotplug.take() {
            // SAFETY: `state` was returned by a successful setup, removed
            // once; this runs `down` on every online CPU and waits.
            unsafe { raw::__cpuhp_remove_state(state, true) };
        }
        if let Some(cb) = self.emergency.take() {
            // SAFETY: registered in `register`; unregistered once (the core
            // waits for running callbacks with synchronize_rcu).
            unsafe { raw::cpu_emergency_unregister_virt_callback(Some(cb)) };
        }
        // No callback can run any more: unpublish, then free the state.
        self.slot.0.store(core::ptr::null_mut(), Ordering::Release);
        drop(self.state.take());
    }
}

// SAFETY: the registrations are only touched through the kernel's
// (internally locked) register/unregister calls; `T` is `Sync`.
unsafe impl<T: Sync + 'static> Send for Callbacks<T> {}
// SAFETY: no `&self` method exists.
unsafe impl<T: Sync + 'static> Sync for Callbacks<T> {}

/// Sets and clears CR4 bits through the kernel, which keeps its per-CPU CR4
/// shadow in step. Needs interrupts off: take an [`IrqsOff`] first.
pub(crate) fn cr4_update(_irqs_off: &IrqsOff, set: u64, clear: u64) {
    // SAFETY: interrupts are off (the token proves it), as the function requires.
    unsafe { raw::cr4_update_irqsoff(set as _, clear as _) };
}

/// Interrupts off on this CPU while it lives (local_irq_save ...
/// local_irq_restore, lockdep told as the C macros do). Not `Send`: it
/// belongs to the CPU and task that made it.
pub(crate) struct IrqsOff {
    flags: u64,
    _not_send: core::marker::PhantomData<*mut ()>,
}

/// RFLAGS.IF.
#[cfg_attr(not(CONFIG_TRACE_IRQFLAGS), allow(dead_code))]
const IF: u64 = 1 << 9;

impl IrqsOff {
    /// Disables interrupts, remembering whether they were on.
    pub(crate) fn new() -> Self {
        let flags: u64;
        // SAFETY: saves RFLAGS and clears IF; `drop` restores it. A compiler
        // barrier (no `nomem`): memory accesses stay inside the section.
        unsafe { core::arch::asm!("pushfq", "pop {}", "cli", out(reg) flags) };
        #[cfg(CONFIG_TRACE_IRQFLAGS)]
        if flags & IF != 0 {
            // SAFETY: interrupts were just turned off, as the tracer expects.
            unsafe { raw::trace_hardirqs_off() };
        }
        Self { flags, _not_send: core::marker::PhantomData }
    }
}

impl Drop for IrqsOff {
    fn drop(&mut self) {
        #[cfg(CONFIG_TRACE_IRQFLAGS)]
        if self.flags & IF != 0 {
            // SAFETY: interrupts are about to come back on, as the tracer
            // expects to be told first.
            unsafe { raw::trace_hardirqs_on() };
        }
        // SAFETY: restores the RFLAGS saved in `new` (only IF differs).
        unsafe { core::arch::asm!("push {}", "popfq", in(reg) self.flags) };
    }
}
