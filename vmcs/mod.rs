// SPDX-License-Identifier: GPL-2.0
//! The VMCS: field encodings and typed access (pure, host-tested), the
//! per-vCPU VMCS region and the loaded-VMCS token, its defaults (`setup`)
//! and the guest's reset state (`reset`, pure).

#[allow(unreachable_pub)] // pure: `pub` for the host crate (hosttest/)
pub(crate) mod field;
#[allow(unreachable_pub)] // pure: `pub` for the host crate (hosttest/)
pub(crate) mod reset;
pub(crate) mod setup;

use crate::kapi::{IrqsOff, KernelPage};
use crate::vmx::insn::{self, Current, VmxFail};
use core::cell::Cell;
use field::{Field, VmcsAccess, VM_INSTRUCTION_ERROR};
use kernel::prelude::*;

/// A VMCS region (SDM Vol. 3C 25.2): one page, revision id first.
///
/// Rule kept by all users: the VMCS is *clear* (inactive, written back)
/// whenever no run loop or [`Vmcs::with_loaded`] holds it on a CPU, so it
/// can be loaded on any CPU next.
pub(crate) struct Vmcs {
    page: KernelPage,
}

impl Vmcs {
    /// A new VMCS with `revision` (IA32_VMX_BASIC[30:0]), VMCLEARed.
    pub(crate) fn new(revision: u32) -> Result<Self> {
        let mut page = KernelPage::new()?;
        page.set_first_u32(revision);
        let v = Self { page };
        v.clear()?;
        Ok(v)
    }

    /// VMCLEAR: write back and deactivate (the VMCS must be active on no
    /// CPU or on this one).
    pub(crate) fn clear(&self) -> Result<(), VmxFail> {
        insn::vmclear(&self.page)
    }

    /// Makes this VMCS current on this CPU (unless it already is) for as
    /// long as interrupts stay off.
    pub(crate) fn load<'a>(&self, irqs: &'a IrqsOff) -> Result<Loaded<'a>, VmxFail> {
        Ok(Loaded { cur: Current::load(&self.page, irqs)?, failed: Cell::new(false) })
    }

    /// Runs `f` with this (clear) VMCS current on this CPU, interrupts off,
    /// and clears it again. For ioctls that read or write guest state
    /// while the vCPU is not running.
    pub(crate) fn with_loaded<R>(&self, f: impl FnOnce(&Loaded<'_>) -> R) -> Result<R> {
        let irqs = IrqsOff::new();
        let v = self.load(&irqs)?;
        let r = f(&v);
        let failed = v.failed();
        self.clear()?;
        if failed {
            return Err(EIO);
        }
        Ok(r)
    }
}

/// A VMCS current on this CPU with interrupts off: the typed accessors of
/// [`VmcsAccess`]. A VMREAD or VMWRITE that fails (a field this CPU lacks)
/// is logged and remembered; the run loop and `with_loaded` turn it into
/// -EIO when the handler is done (as KVM warns on a failed VMREAD).
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
        if let Err(e) = self.cur.vmwrite(f.raw(), v) {
            self.fail("VMWRITE", f, e);
        }
    }
}
