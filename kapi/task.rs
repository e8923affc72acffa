// SPDX-License-Identifier: GPL-2.0
//! The current task: its address space, signals, scheduling, and the
//! guest's FPU state kept in the task's FPU state during RUN.

use super::cpu::IrqsOff;
use super::raw;
use kernel::error::to_result;
use kernel::prelude::*;
use kernel::types::Opaque;

/// A reference on the current task's address space (`mm_count`, KVM's
/// mmgrab in kvm_create_vm): the `mm_struct` stays allocated while this
/// lives, so no other process's `mm` can ever have its address (a bare
/// address compare could match a later process's).
pub(crate) struct MmRef(*mut kernel::bindings::mm_struct);

// SAFETY: a counted reference to an `mm_struct`, used only to compare its
// address and to drop the count; both are fine from any thread.
unsafe impl Send for MmRef {}
// SAFETY: as above.
unsafe impl Sync for MmRef {}

impl MmRef {
    /// Takes a reference on `current->mm` (`None` for a kernel thread).
    pub(crate) fn current() -> Option<Self> {
        // SAFETY: `current` is valid in process context; its `mm` is live
        // while the task runs (we are in a syscall of it).
        let mm = unsafe { (*kernel::bindings::get_current()).mm };
        if mm.is_null() {
            return None;
        }
        Self::count(mm).fetch_add(1, core::sync::atomic::Ordering::Relaxed);
        Some(MmRef(mm))
    }

    /// The address, to compare with [`current_mm`].
    pub(crate) fn addr(&self) -> usize {
        self.0 as usize
    }

    /// `mm->mm_count`, the C `atomic_t` seen as an `AtomicI32` (Linux 6.12
    /// has no Rust mmgrab/mmdrop; x86 atomics are the same instructions).
    fn count<'a>(mm: *mut kernel::bindings::mm_struct) -> &'a core::sync::atomic::AtomicI32 {
        // SAFETY: `mm` is live (the caller holds a reference or runs in its
        // task); `mm_count` is an `atomic_t`, an `i32` the kernel only
        // changes atomically, so it may be viewed as an `AtomicI32`.
        unsafe {
            &*(core::ptr::addr_of!((*mm).__bindgen_anon_1.__bindgen_anon_1.mm_count.counter)
                as *const core::sync::atomic::AtomicI32)
        }
    }
}

impl Drop for MmRef {
    fn drop(&mut self) {
        // mmdrop(): the last reference frees the mm_struct.
        if Self::count(self.0).fetch_sub(1, core::sync::atomic::Ordering::SeqCst) == 1 {
            // SAFETY: that was the last reference; the VM is being freed
            // in process context (file release), where __mmdrop may run.
            unsafe { kernel::bindings::__mmdrop(self.0) };
        }
    }
}

/// The current task's `mm`, as an address to compare (never dereferenced).
pub(crate) fn current_mm() -> usize {
    // SAFETY: `current` is always valid in process context; reading `mm`
    // (which the task itself does not change) is what the C macro does.
    unsafe { (*kernel::bindings::get_current()).mm as usize }
}

/// Whether the scheduler wants this CPU (TIF_NEED_RESCHED).
pub(crate) fn need_resched() -> bool {
    thread_flag(kernel::bindings::TIF_NEED_RESCHED)
}

/// Whether thread-info flag `bit` (TIF_*) of the current task is set.
fn thread_flag(bit: u32) -> bool {
    // SAFETY: as for `current_mm`; the flag word is updated atomically by
    // other CPUs, hence the volatile read.
    let flags = unsafe { core::ptr::read_volatile(&(*kernel::bindings::get_current()).thread_info.flags) };
    flags & (1 << bit) != 0
}

/// Marks the current task as running a guest (PF_VCPU: the scheduler's
/// tick then counts guest time) and tells RCU this CPU passes a quiescent
/// state, as entering userland would (KVM's guest_timing_enter_irqoff and
/// guest_context_enter_irqoff, without context tracking). Interrupts off.
pub(crate) fn guest_enter(_irqs_off: &IrqsOff) {
    // SAFETY: the task's own flags, changed by the task itself with
    // interrupts off (as the kernel's `current->flags |= PF_VCPU`).
    unsafe { (*kernel::bindings::get_current()).flags |= raw::PF_VCPU };
    // SAFETY: interrupts are off (the token), as RCU requires; the run
    // loop holds no RCU read-side lock.
    unsafe { raw::rcu_note_context_switch(false) };
}

/// Ends what [`guest_enter`] began. Interrupts off.
pub(crate) fn guest_exit(_irqs_off: &IrqsOff) {
    // SAFETY: as in `guest_enter`.
    unsafe { (*kernel::bindings::get_current()).flags &= !raw::PF_VCPU };
}

/// What runs when the task that registered a [`PreemptHook`] leaves its
/// CPU (`sched_out`: interrupts off, scheduler locks held) or comes back
/// on one (`sched_in`: interrupts on, preemption off): KVM's kvm_sched_out
/// and kvm_sched_in.
pub(crate) trait PreemptHandler: Sync {
    /// The task is being switched out on this CPU.
    fn sched_out(&self);
    /// The task runs again, on this CPU or another.
    fn sched_in(&self);
}

/// A preempt notifier with its handler: while registered (a
/// [`PreemptHookGuard`] lives), the handler runs as the task leaves and
/// regains a CPU. Lives pinned in its owner.
#[repr(C)]
#[pin_data]
pub(crate) struct PreemptHook<T: PreemptHandler> {
    /// First, so the scheduler's pointer to it is a pointer to the hook.
    #[pin]
    notifier: Opaque<raw::preempt_notifier>,
    /// The handler.
    pub(crate) handler: T,
}

// SAFETY: the notifier is only touched by the task that registered it (the
// kernel's list) and the scheduler on that task's behalf; `T` is `Sync`.
unsafe impl<T: PreemptHandler> Send for PreemptHook<T> {}
// SAFETY: as above.
unsafe impl<T: PreemptHandler> Sync for PreemptHook<T> {}

/// The scheduler's callbacks for `PreemptHook<T>`.
struct Ops<T>(core::marker::PhantomData<T>);

impl<T: PreemptHandler> Ops<T> {
    const OPS: raw::preempt_ops = raw::preempt_ops { sched_in: Some(sched_in::<T>), sched_out: Some(sched_out::<T>) };
}

/// # Safety
/// Called by the scheduler with a notifier registered by `PreemptHook<T>`.
unsafe extern "C" fn sched_in<T: PreemptHandler>(n: *mut raw::preempt_notifier, _cpu: i32) {
    // SAFETY: `n` is the first field of a live, registered `PreemptHook<T>`
    // (`#[repr(C)]`), which stays until unregistered.
    unsafe { (*n.cast::<PreemptHook<T>>()).handler.sched_in() };
}

/// # Safety
/// As for `sched_in`.
unsafe extern "C" fn sched_out<T: PreemptHandler>(n: *mut raw::preempt_notifier, _next: *mut raw::task_struct) {
    // SAFETY: as in `sched_in`.
    unsafe { (*n.cast::<PreemptHook<T>>()).handler.sched_out() };
}

impl<T: PreemptHandler> PreemptHook<T> {
    /// An unregistered hook with `handler`.
    pub(crate) fn new(handler: T) -> impl PinInit<Self> {
        let ops: &'static raw::preempt_ops = &Ops::<T>::OPS;
        pin_init!(Self {
            notifier <- Opaque::ffi_init(move |n: *mut raw::preempt_notifier| {
                // SAFETY: an all-zero notifier with its ops set is what
                // preempt_notifier_init() makes (INIT_HLIST_NODE is zeroing).
                unsafe {
                    n.write(core::mem::zeroed());
                    (*n).ops = ops as *const _ as *mut _;
                }
            }),
            handler,
        })
    }

    /// Registers the hook for the current task until the guard drops.
    pub(crate) fn register(&self) -> PreemptHookGuard<'_, T> {
        // SAFETY: registered by the task itself, unregistered by the guard
        // (same task: the guard is not Send) before the hook can go away
        // (it borrows it); the notifier key is on while any VM exists
        // (`NotifierKey`).
        unsafe { raw::preempt_notifier_register(self.notifier.get()) };
        PreemptHookGuard { hook: self, _not_send: core::marker::PhantomData }
    }
}

/// The registration of a [`PreemptHook`].
pub(crate) struct PreemptHookGuard<'a, T: PreemptHandler> {
    hook: &'a PreemptHook<T>,
    _not_send: core::marker::PhantomData<*mut ()>,
}

impl<T: PreemptHandler> Drop for PreemptHookGuard<'_, T> {
    fn drop(&mut self) {
        // SAFETY: registered by `register`, by this task.
        unsafe { raw::preempt_notifier_unregister(self.hook.notifier.get()) };
    }
}

/// Preempt notifiers fire while this lives (the kernel's static key; KVM
/// holds it while VMs exist). May sleep.
pub(crate) struct NotifierKey(());

impl NotifierKey {
    /// Turns the key on (counted).
    pub(crate) fn new() -> Self {
        // SAFETY: paired with `preempt_notifier_dec` in `drop`.
        unsafe { raw::preempt_notifier_inc() };
        Self(())
    }
}

impl Drop for NotifierKey {
    fn drop(&mut self) {
        // SAFETY: paired with `new`.
        unsafe { raw::preempt_notifier_dec() };
    }
}

/// Whether a signal is pending for the current task.
pub(crate) fn signal_pending() -> bool {
    // SAFETY: `current` is valid in process context.
    unsafe { kernel::bindings::signal_pending(kernel::bindings::get_current()) != 0 }
}

/// Gives the CPU to another task.
pub(crate) fn schedule() {
    // SAFETY: called in process context with no spinlock held and
    // interrupts on (the run loop calls it between guest entries).
    unsafe { raw::schedule() };
}

/// The guest's FPU/SSE/AVX state, swapped in and out of the registers
/// (and the task's FPU state) by the kernel's KVM helpers.
pub(crate) struct GuestFpu(KBox<Opaque<raw::fpu_guest>>);

// SAFETY: used under the vCPU's lock only.
unsafe impl Send for GuestFpu {}
// SAFETY: as above.
unsafe impl Sync for GuestFpu {}

impl GuestFpu {
    /// Allocates a guest FPU state (initial values).
    pub(crate) fn new() -> Result<Self> {
        let g = KBox::new(Opaque::<raw::fpu_guest>::uninit(), GFP_KERNEL)?;
        // SAFETY: `g` is ours; zeroed is what the allocator expects to fill.
        let ok = unsafe {
            g.get().write(core::mem::zeroed());
            raw::fpu_alloc_guest_fpstate(g.get())
        };
        if !ok {
            return Err(ENOMEM);
        }
        Ok(Self(g))
    }

    /// Loads the guest's state into the registers (`enter`) or saves it and
    /// puts the task's own state back. Pairs must nest in the same task.
    pub(crate) fn swap(&self, enter: bool) -> Result {
        // SAFETY: the state was allocated in `new`; callers pair enter/leave.
        to_result(unsafe { raw::fpu_swap_kvm_fpstate(self.0.get(), enter) })
    }
}

impl GuestFpu {
    /// Copies the saved guest state (not in the registers: outside RUN)
    /// into `buf` in the standard XSAVE format, components `xfeatures`.
    pub(crate) fn to_uabi(&self, buf: &mut [u8; 4096], xfeatures: u64, pkru: u32) {
        // SAFETY: the state was allocated in `new` and is not loaded (the
        // vCPU's lock is held and RUN swaps it out before returning);
        // `buf` is 4096 writable bytes, the size passed.
        unsafe { raw::fpu_copy_guest_fpstate_to_uabi(self.0.get(), buf.as_mut_ptr().cast(), 4096, xfeatures, pkru) };
    }

    /// Replaces the saved guest state with `buf` (standard XSAVE format);
    /// the kernel refuses (EINVAL) components outside `xcr0` and bad
    /// reserved fields. `pkru` gets the buffer's PKRU if it has one.
    pub(crate) fn from_uabi(&self, buf: &[u8; 4096], xcr0: u64, pkru: &mut u32) -> Result {
        // SAFETY: as in `to_uabi`; the kernel reads at most the 4096 bytes
        // of the XSAVE layout it supports, which `buf` holds.
        to_result(unsafe { raw::fpu_copy_uabi_to_guest_fpstate(self.0.get(), buf.as_ptr().cast(), xcr0, pkru) })
    }
}

impl Drop for GuestFpu {
    fn drop(&mut self) {
        // SAFETY: allocated in `new`, freed once; not swapped in (the run
        // loop always swaps out before returning).
        unsafe { raw::fpu_free_guest_fpstate(self.0.get()) };
    }
}

/// Loads the task's FPU state (the guest's, during RUN) into the registers
/// if a context switch left them holding someone else's (TIF_NEED_FPU_LOAD):
/// what the kernel does before returning to userland, done before entering
/// the guest.
pub(crate) fn reload_fpu_if_needed(_irqs_off: &IrqsOff) {
    if thread_flag(kernel::bindings::TIF_NEED_FPU_LOAD) {
        // SAFETY: interrupts are off (the token), as on the kernel's own
        // return-to-user path that calls it.
        unsafe { raw::switch_fpu_return() };
    }
}
