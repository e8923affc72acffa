// SPDX-License-Identifier: GPL-2.0
//! The current task: its address space, signals, scheduling, and the
//! guest's FPU state kept in the task's FPU state during RUN.

use super::cpu::IrqsOff;
use super::raw;
use kernel::error::to_result;
use kernel::prelude::*;
use kernel::types::Opaque;

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
