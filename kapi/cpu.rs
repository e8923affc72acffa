// SPDX-License-Identifier: GPL-2.0
//! CPUs: hotplug callbacks, the reboot/kexec/crash and suspend/resume hooks
//! (with the state they reach), cross-CPU calls, CR4 through the kernel,
//! and guards for interrupts, migration and CPU hotplug.

use super::raw;
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
        // to; `Callbacks::drop` unregisters every callback (the only users:
        // the kernel waits for running ones) before it clears the pointer
        // and frees the box.
        (!p.is_null()).then(|| unsafe { &*p })
    }
}

/// CPU-hotplug, emergency and syscore callbacks, registered with their
/// state while this lives: dropping it removes the hotplug state (which
/// runs `down` on every online CPU), the hooks, and then the state.
pub(crate) struct Callbacks<T: Sync + 'static> {
    syscore: Option<KBox<Syscore>>,
    emergency: Option<extern "C" fn()>,
    hotplug: Option<i32>,
    slot: &'static CallbackState<T>,
    state: Option<KBox<T>>,
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
    pub(crate) fn register(slot: &'static CallbackState<T>, state: KBox<T>, cb: CpuCallbacks) -> Result<Self> {
        let mut state = state;
        let p: *mut T = &mut *state;
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
        // SAFETY: the callback stays valid until unregistered in `drop`.
        unsafe { raw::cpu_emergency_register_virt_callback(Some(cb.emergency)) };
        this.emergency = Some(cb.emergency);
        let ops = raw::syscore_ops { suspend: Some(cb.suspend), resume: Some(cb.resume), shutdown: None };
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
        if let Some(cb) = self.emergency.take() {
            // SAFETY: registered in `register`; unregistered once (the core
            // waits for running callbacks with synchronize_rcu).
            unsafe { raw::cpu_emergency_unregister_virt_callback(Some(cb)) };
        }
        if let Some(state) = self.hotplug.take() {
            // SAFETY: `state` was returned by a successful setup, removed
            // once; this runs `down` on every online CPU and waits.
            unsafe { raw::__cpuhp_remove_state(state, true) };
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

/// Interrupts off on this CPU while it lives (pushf/cli ... popf).
pub(crate) struct IrqsOff {
    flags: u64,
}

impl IrqsOff {
    /// Disables interrupts, remembering whether they were on.
    pub(crate) fn new() -> Self {
        let flags: u64;
        // SAFETY: saves RFLAGS and clears IF; `drop` restores it.
        unsafe { core::arch::asm!("pushfq", "pop {}", "cli", out(reg) flags, options(nomem)) };
        Self { flags }
    }
}

impl Drop for IrqsOff {
    fn drop(&mut self) {
        // SAFETY: restores the RFLAGS saved in `new` (only IF differs).
        unsafe { core::arch::asm!("push {}", "popfq", in(reg) self.flags, options(nomem)) };
    }
}

/// The current task stays on its CPU while this lives (it may still be
/// preempted, and other tasks may run on the CPU).
pub(crate) struct MigrationDisabled(());

impl MigrationDisabled {
    /// Disables migration of the current task.
    pub(crate) fn new() -> Self {
        // SAFETY: paired with `migrate_enable` in `drop`, same task.
        unsafe { raw::migrate_disable() };
        Self(())
    }
}

impl Drop for MigrationDisabled {
    fn drop(&mut self) {
        // SAFETY: paired with `new`.
        unsafe { raw::migrate_enable() };
    }
}

/// CPUs cannot go online or offline while this lives (cpus_read_lock).
pub(crate) struct CpusHeld(());

impl CpusHeld {
    /// Takes the CPU-hotplug read lock (may sleep).
    pub(crate) fn new() -> Self {
        // SAFETY: paired with `cpus_read_unlock` in `drop`.
        unsafe { raw::cpus_read_lock() };
        Self(())
    }
}

impl Drop for CpusHeld {
    fn drop(&mut self) {
        // SAFETY: paired with `new`.
        unsafe { raw::cpus_read_unlock() };
    }
}
