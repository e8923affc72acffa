// SPDX-License-Identifier: GPL-2.0
//! The VMCS: field encodings (pure, host-tested), the per-vCPU VMCS region
//! with typed access, and its defaults (`setup`).

#[allow(dead_code, unreachable_pub)]
pub(crate) mod field;
pub(crate) mod setup;

use crate::kapi::KernelPage;
use crate::vmx::insn::{self, VmxFail};
use field::Field;
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
    /// A new VMCS with the revision id from IA32_VMX_BASIC, VMCLEARed.
    pub(crate) fn new(revision: u32) -> Result<Self> {
        let mut page = KernelPage::new()?;
        page.set_first_u32(revision & 0x7fff_ffff);
        let v = Self { page };
        v.clear().map_err(|_| EIO)?;
        Ok(v)
    }

    /// The region's physical address (the VMCS pointer).
    pub(crate) fn phys(&self) -> u64 {
        self.page.phys()
    }

    /// VMCLEAR: write back and deactivate (may run on any CPU only if the
    /// VMCS is active on none or on this one).
    pub(crate) fn clear(&self) -> Result<(), VmxFail> {
        insn::vmclear(self.phys())
    }

    /// Makes this VMCS current on this CPU unless it already is.
    /// Interrupts must be off (the caller holds an `IrqsOff`).
    pub(crate) fn make_current(&self) -> Result<(), VmxFail> {
        if insn::vmptrst() != self.phys() {
            insn::vmptrld(self.phys())?;
        }
        Ok(())
    }

    /// Runs `f` with this (clear) VMCS current on this CPU, interrupts off,
    /// and clears it again. For ioctls that read or write guest state
    /// while the vCPU is not running.
    pub(crate) fn with_loaded<R>(&self, f: impl FnOnce(&Loaded<'_>) -> Result<R>) -> Result<R> {
        let _irqs = crate::kapi::IrqsOff::new();
        insn::vmptrld(self.phys()).map_err(|_| EIO)?;
        let r = f(&Loaded(core::marker::PhantomData));
        self.clear().map_err(|_| EIO)?;
        r
    }
}

/// Proof that a VMCS is current on this CPU with interrupts off: the typed
/// accessors live here, so they cannot be called otherwise.
pub(crate) struct Loaded<'a>(core::marker::PhantomData<&'a ()>);

impl Loaded<'_> {
    /// The token, for the run loop.
    ///
    /// # Safety
    /// The caller made a VMCS current on this CPU (VMX on) and keeps
    /// interrupts off while the token lives.
    pub(crate) unsafe fn assume() -> Self {
        Loaded(core::marker::PhantomData)
    }

    /// Reads a field (16/32-bit fields zero-extended).
    pub(crate) fn read(&self, f: Field) -> Result<u64> {
        insn::vmread(f.raw()).map_err(|e| {
            let err = insn::vmread(field::VM_INSTRUCTION_ERROR.raw()).unwrap_or(0);
            pr_err!("VMREAD {:#x} failed: {:?}, VM-instruction error {}, current VMCS {:#x}\n", f.raw(), e, err, insn::vmptrst());
            EIO
        })
    }

    /// Reads a 32-bit or 16-bit field.
    pub(crate) fn read32(&self, f: Field) -> Result<u32> {
        Ok(self.read(f)? as u32)
    }

    /// Writes a field.
    pub(crate) fn write(&self, f: Field, v: u64) -> Result {
        insn::vmwrite(f.raw(), v).map_err(|_| {
            let err = insn::vmread(field::VM_INSTRUCTION_ERROR.raw()).unwrap_or(0);
            pr_err!("VMWRITE {:#x} = {:#x} failed (VM-instruction error {})\n", f.raw(), v, err);
            EIO
        })
    }
}
