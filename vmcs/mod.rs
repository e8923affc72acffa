// SPDX-License-Identifier: GPL-2.0
//! The VMCS: field encodings and typed access (pure, host-tested), the
//! per-vCPU VMCS region and where it is active, the loaded-VMCS token, its
//! defaults (`setup`) and the guest's reset state (`reset`, pure).
//!
//! Residency (as KVM's loaded_vmcs): a VMCS stays active on the CPU that
//! last loaded it, between exits and between RUNs. Loading it on another
//! CPU first VMCLEARs it on the old one (an IPI); a CPU going down
//! VMCLEARs every VMCS active on it before VMXOFF (`vmx/cpu.rs`); freeing
//! a VMCS VMCLEARs it where it is active.

#[allow(unreachable_pub)] // pure: `pub` for the host crate (hosttest/)
pub(crate) mod field;
#[allow(unreachable_pub)] // pure: `pub` for the host crate (hosttest/)
pub(crate) mod reset;
pub(crate) mod setup;

use crate::kapi::{self, IrqsOff, KernelPage};
use crate::vmx::insn::{self, Current, VmxFail};
use core::cell::Cell;
use core::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use field::{Field, VmcsAccess, VM_INSTRUCTION_ERROR};
use kernel::prelude::*;
use kernel::sync::Arc;

/// A VMCS region (SDM Vol. 3C 25.2) and where it is active.
pub(crate) struct Region {
    page: KernelPage,
    /// The CPU on which the VMCS is active, or -1 when it is clear
    /// (written back and inactive: loadable on any CPU).
    cpu: AtomicI32,
    /// Launched since its last VMCLEAR (enter with VMRESUME).
    launched: AtomicBool,
    /// The value HOST_RSP holds (0: never written); the stub rewrites the
    /// field only when its frame is elsewhere (KVM's host_state.rsp).
    host_rsp: AtomicU64,
    /// A VMCLEAR failed: where the VMCS's state is is unknown, so it is
    /// never loaded again (its vCPU's RUN and register ioctls fail).
    broken: AtomicBool,
}

impl Region {
    /// VMCLEAR if the VMCS is active on this CPU. Runs on that CPU with
    /// interrupts off: an IPI from [`Vmcs::load_here`] or `Drop`, or the
    /// CPU going down (`vmx/cpu.rs`).
    pub(crate) fn clear_if_here(&self) {
        if self.cpu.load(Ordering::Acquire) != kapi::this_cpu() as i32 {
            return;
        }
        if insn::vmclear(&self.page).is_err() {
            pr_err!("VMCLEAR failed on CPU {}; the vCPU is stopped\n", kapi::this_cpu());
            self.broken.store(true, Ordering::Release);
        }
        self.launched.store(false, Ordering::Relaxed);
        // Everything above is done before another CPU may load it.
        self.cpu.store(-1, Ordering::Release);
    }
}

/// A vCPU's VMCS.
pub(crate) struct Vmcs {
    region: Arc<Region>,
}

/// Why [`Vmcs::load`] could not make the VMCS current here.
pub(crate) enum NotHere {
    /// It is active on that CPU: clear it there first ([`Vmcs::clear_on`]).
    ActiveOn(i32),
    /// VMX is off on this CPU: it is going down (the task will be moved).
    VmxOff,
    /// VMPTRLD failed.
    Failed(VmxFail),
}

impl Vmcs {
    /// A new VMCS with `revision` (IA32_VMX_BASIC[30:0]), clear, known to
    /// the CPU-hotplug teardown.
    pub(crate) fn new(revision: u32) -> Result<Self> {
        let mut page = KernelPage::new()?;
        page.set_first_u32(revision);
        let region = Arc::new(
            Region {
                page,
                cpu: AtomicI32::new(-1),
                launched: AtomicBool::new(false),
                host_rsp: AtomicU64::new(0),
                broken: AtomicBool::new(false),
            },
            GFP_KERNEL,
        )?;
        insn::vmclear(&region.page)?;
        crate::vmx::cpu::track_vmcs(region.clone())?;
        Ok(Self { region })
    }

    /// Whether the VMCS has been launched since its last VMCLEAR.
    pub(crate) fn launched(&self) -> bool {
        self.region.launched.load(Ordering::Relaxed)
    }

    /// Records a VM exit after VMLAUNCH (the next entry is VMRESUME).
    pub(crate) fn set_launched(&self) {
        self.region.launched.store(true, Ordering::Relaxed);
    }

    /// The HOST_RSP value this VMCS holds (for the stub).
    pub(crate) fn host_rsp(&self) -> &AtomicU64 {
        &self.region.host_rsp
    }

    /// Makes this VMCS current on this CPU, loading it here if it is clear
    /// (KVM's vmx_vcpu_load_vmcs, with interrupts off instead of preemption
    /// off). Interrupts stay off while the token lives.
    pub(crate) fn load<'a>(&self, irqs: &'a IrqsOff) -> Result<Loaded<'a>, NotHere> {
        let r = &self.region;
        if r.broken.load(Ordering::Acquire) {
            return Err(NotHere::Failed(VmxFail::Invalid));
        }
        let here = kapi::this_cpu() as i32;
        let cpu = r.cpu.load(Ordering::Acquire);
        if cpu != here && cpu != -1 {
            return Err(NotHere::ActiveOn(cpu));
        }
        let cur = Current::load(&r.page, irqs).map_err(|e| e.map_or(NotHere::VmxOff, NotHere::Failed))?;
        if cpu == -1 {
            r.cpu.store(here, Ordering::Release);
        }
        Ok(Loaded { cur, failed: Cell::new(false) })
    }

    /// VMCLEARs the VMCS on `cpu`, where it is active (an IPI; nothing to
    /// do if the CPU went offline: it cleared its VMCSs first). Interrupts
    /// on.
    pub(crate) fn clear_on(&self, cpu: i32) {
        let mut r = self.region.clone();
        // ENXIO: the CPU is offline, and cleared it before going.
        let _ = kapi::run_on_cpu(cpu as u32, &mut r, |r| r.clear_if_here());
    }

    /// Runs `f` with this VMCS current on this CPU (interrupts off), for
    /// ioctls that read or write guest state while the vCPU is not running;
    /// the VMCS stays active here afterwards.
    pub(crate) fn with_loaded<R>(&self, f: impl FnOnce(&Loaded<'_>) -> R) -> Result<R> {
        loop {
            let irqs = IrqsOff::new();
            match self.load(&irqs) {
                Ok(v) => {
                    let r = f(&v);
                    return if v.failed() { Err(EIO) } else { Ok(r) };
                }
                Err(NotHere::ActiveOn(cpu)) => {
                    drop(irqs);
                    self.clear_on(cpu);
                }
                Err(NotHere::VmxOff) => {
                    drop(irqs);
                    if crate::vmx::cpu::shutting_down() || kapi::signal_pending() {
                        return Err(EIO);
                    }
                    kapi::schedule();
                }
                Err(NotHere::Failed(e)) => return Err(e.into()),
            }
        }
    }
}

impl Drop for Vmcs {
    fn drop(&mut self) {
        let cpu = self.region.cpu.load(Ordering::Acquire);
        if cpu != -1 {
            self.clear_on(cpu);
        }
        crate::vmx::cpu::untrack_vmcs(&self.region);
    }
}

/// A VMCS current on this CPU with interrupts off: the typed accessors of
/// [`VmcsAccess`]. A VMREAD or VMWRITE that fails (a field this CPU lacks)
/// is logged and remembered, and no VMWRITE is done after it (a value
/// computed from a failed read must not reach the VMCS); the run loop and
/// `with_loaded` turn it into -EIO when the handler is done, and the run
/// loop refuses to enter that vCPU again (as KVM stops a bugged VM).
pub(crate) struct Loaded<'a> {
    cur: Current<'a>,
    failed: Cell<bool>,
}

impl Loaded<'_> {
    /// Whether a VMREAD or VMWRITE failed since the VMCS was loaded.
    pub(crate) fn failed(&self) -> bool {
        self.failed.get()
    }

    /// The instruction token, for entering the guest.
    pub(crate) fn current(&self) -> &Current<'_> {
        &self.cur
    }

    fn fail(&self, what: &str, f: Field, e: VmxFail) {
        let err = self.cur.vmread(VM_INSTRUCTION_ERROR.field().raw()).unwrap_or(0);
        pr_err!("{} {:#x} failed: {:?}, VM-instruction error {}\n", what, f.raw(), e, err);
        self.failed.set(true);
    }
}

impl VmcsAccess for Loaded<'_> {
    fn read_raw(&self, f: Field) -> u64 {
        self.cur.vmread(f.raw()).unwrap_or_else(|e| {
            self.fail("VMREAD", f, e);
            0
        })
    }

    fn write_raw(&self, f: Field, v: u64) {
        if self.failed.get() {
            return;
        }
        if let Err(e) = self.cur.vmwrite(f.raw(), v) {
            self.fail("VMWRITE", f, e);
        }
    }
}
