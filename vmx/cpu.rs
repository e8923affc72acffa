// SPDX-License-Identifier: GPL-2.0
//! VMX operation on every CPU: the seed's `vmm_ops_intel.init`/`.cleanup`.
//!
//! A CPU-hotplug state turns VMX on in each CPU that comes online (and in
//! every online CPU when rvmx loads) and off in each that goes offline (and
//! in all of them when rvmx unloads). rvmx never turns off a VMX that it did
//! not turn on: a CPU already in VMX operation (CR4.VMXE = 1, e.g. kvm_intel)
//! fails the load with -EBUSY.

use super::caps::{cr_ok, ept_vpid, RawCaps};
use super::insn::{self, VmxFail};
use crate::kapi::{self, CpuHotplug, EmergencyCallback, IrqsOff, KernelPage, Syscore};
use core::sync::atomic::{AtomicBool, AtomicPtr, Ordering};
use kernel::c_str;
use kernel::prelude::*;

const CR4_VMXE: u64 = 1 << 13;
const FC_LOCKED: u64 = 1 << 0;
const FC_VMX_OUTSIDE_SMX: u64 = 1 << 2;

/// One CPU's VMXON region and whether rvmx has VMX on there.
struct Slot {
    region: KernelPage,
    on: AtomicBool,
    /// Turned off by `suspend`, to be turned on again by `resume`.
    suspended: AtomicBool,
}

/// What the hotplug callbacks need; reached through [`SHARED`].
struct Shared {
    caps: RawCaps,
    slots: KVec<Slot>,
}

/// The callbacks are plain C functions without a context argument, so they
/// find the state here. Set before the hotplug state is registered and
/// cleared after it is removed.
static SHARED: AtomicPtr<Shared> = AtomicPtr::new(core::ptr::null_mut());

/// VMX is on in every online CPU while this lives.
pub(crate) struct VmxCpus {
    syscore: Option<Syscore>,
    emergency: Option<EmergencyCallback>,
    hotplug: Option<CpuHotplug>,
    // Owned here; the callbacks reach it through `SHARED`.
    _shared: KBox<Shared>,
}

impl VmxCpus {
    /// Turns VMX on in every online CPU, or in none (and says why).
    pub(crate) fn enable(caps: RawCaps) -> Result<Self> {
        let n = kapi::nr_cpu_ids() as usize;
        let mut slots = KVec::with_capacity(n, GFP_KERNEL)?;
        for _ in 0..n {
            let mut region = KernelPage::new()?;
            // The VMXON region starts with the VMCS revision id, bit 31 clear
            // (SDM Vol. 3C 25.11.5).
            region.set_first_u32(caps.basic as u32 & 0x7fff_ffff);
            slots.push(Slot { region, on: AtomicBool::new(false), suspended: AtomicBool::new(false) }, GFP_KERNEL)?;
        }
        let mut shared = KBox::new(Shared { caps, slots }, GFP_KERNEL)?;
        if SHARED
            .compare_exchange(core::ptr::null_mut(), &mut *shared, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return Err(EBUSY);
        }
        let hotplug = match CpuHotplug::register(c_str!("rvmx:online"), cpu_up, cpu_down) {
            Ok(h) => h,
            Err(e) => {
                SHARED.store(core::ptr::null_mut(), Ordering::Release);
                return Err(e);
            }
        };
        let mut this = Self { syscore: None, emergency: None, hotplug: Some(hotplug), _shared: shared };
        this.emergency = Some(EmergencyCallback::register(emergency_off));
        this.syscore = Some(Syscore::register(suspend, resume)?);
        Ok(this)
    }

}

/// The capabilities read when rvmx loaded (identical on every CPU).
pub(crate) fn loaded_caps() -> Result<RawCaps> {
    shared().map(|s| s.caps).ok_or(ENODEV)
}

/// For the first 64 CPU ids: which CPUs are online, and which are in VMX
/// operation, read from CR4.VMXE on each CPU itself.
pub(crate) fn cpu_status() -> (u64, u64) {
    let (mut online, mut vmx) = (0u64, 0u64);
    for cpu in 0..kapi::nr_cpu_ids().min(64) {
        let mut on = false;
        if kapi::run_on_cpu(cpu, &mut on, |on| *on = insn::read_cr4() & CR4_VMXE != 0).is_ok() {
            online |= 1 << cpu;
            if on {
                vmx |= 1 << cpu;
            }
        }
    }
    (online, vmx)
}

impl Drop for VmxCpus {
    fn drop(&mut self) {
        self.syscore.take();
        self.emergency.take();
        // Removing the hotplug state turns VMX off in every online CPU.
        self.hotplug.take();
        SHARED.store(core::ptr::null_mut(), Ordering::Release);
        // `shared` (the regions) is freed after this, when no CPU uses them.
    }
}

fn shared() -> Option<&'static Shared> {
    let p = SHARED.load(Ordering::Acquire);
    // SAFETY: non-null only while `VmxCpus` owns the `Shared` box. Every
    // hotplug, emergency and syscore callback is unregistered, and
    // /dev/rvmx is gone with no file open (each open file pins the module),
    // before the pointer is cleared and the box freed.
    (!p.is_null()).then(|| unsafe { &*p })
}

/// Hotplug "up": runs on `cpu`. 0 or a negative errno (which makes the
/// load, or the CPU's onlining, fail).
/// # Safety
/// Called by the kernel only (CPU hotplug, emergency or syscore callback).
unsafe extern "C" fn cpu_up(cpu: u32) -> i32 {
    match vmx_on(cpu) {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

/// Hotplug "down": runs on `cpu`.
/// # Safety
/// Called by the kernel only (CPU hotplug, emergency or syscore callback).
unsafe extern "C" fn cpu_down(cpu: u32) -> i32 {
    vmx_off(cpu);
    0
}

fn vmx_on(cpu: u32) -> Result {
    let s = shared().ok_or(ENODEV)?;
    let slot = s.slots.get(cpu as usize).ok_or(EINVAL)?;
    let caps = super::read_caps();
    if caps != s.caps {
        pr_err!("CPU {}: VMX capabilities differ from the boot CPU's; rvmx needs them identical\n", cpu);
        return Err(EIO);
    }
    let irqs = IrqsOff::new();
    if insn::read_cr4() & CR4_VMXE != 0 {
        pr_err!(
            "CPU {}: VMX is already in use (CR4.VMXE = 1), probably by kvm_intel: unload it \
             (rmmod kvm_intel) or boot with kvm.enable_virt_at_load=0, then load rvmx\n",
            cpu
        );
        return Err(EBUSY);
    }
    // IA32_FEATURE_CONTROL: set and lock only if the firmware left it
    // unlocked (SDM Vol. 3C 24.7).
    let fc = insn::rdmsr(super::MSR_IA32_FEATURE_CONTROL);
    if fc & FC_LOCKED == 0 {
        insn::wrmsr_feature_control(fc | FC_LOCKED | FC_VMX_OUTSIDE_SMX);
    } else if fc & FC_VMX_OUTSIDE_SMX == 0 {
        pr_err!("CPU {}: VMX is disabled by the firmware (IA32_FEATURE_CONTROL locked, bit 2 clear)\n", cpu);
        return Err(EIO);
    }
    // CR0 and CR4 must respect the fixed bits in VMX operation (SDM Vol. 3C
    // 24.8); Linux's CR0 already does; CR4 needs VMXE.
    let cr0 = insn::read_cr0();
    let cr4 = insn::read_cr4() | CR4_VMXE;
    if !cr_ok(cr0, caps.cr0_fixed0, caps.cr0_fixed1) || !cr_ok(cr4, caps.cr4_fixed0, caps.cr4_fixed1) {
        pr_err!("CPU {}: CR0 {:#x} / CR4 {:#x} break the VMX fixed bits\n", cpu, cr0, cr4);
        return Err(EIO);
    }
    kapi::cr4_update(&irqs, CR4_VMXE, 0);
    if let Err(f) = insn::vmxon(slot.region.phys()) {
        kapi::cr4_update(&irqs, 0, CR4_VMXE);
        pr_err!("CPU {}: VMXON failed ({:?})\n", cpu, f);
        return Err(if f == VmxFail::Valid { EBUSY } else { EIO });
    }
    // Translations cached before (by an earlier owner, or before this CPU
    // went offline) must not serve rvmx's guests (as KVM does at enable).
    let ev = caps.ept_vpid();
    if ev & ept_vpid::INVEPT_ALL != 0 {
        let _ = insn::invept_all();
    }
    if ev & ept_vpid::INVVPID_ALL != 0 {
        let _ = insn::invvpid_all();
    }
    slot.on.store(true, Ordering::Release);
    Ok(())
}

fn vmx_off(cpu: u32) {
    let Some(slot) = shared().and_then(|s| s.slots.get(cpu as usize)) else { return };
    if !slot.on.load(Ordering::Acquire) {
        return;
    }
    let irqs = IrqsOff::new();
    if let Err(f) = insn::vmxoff() {
        pr_err!("CPU {}: VMXOFF failed ({:?})\n", cpu, f);
    }
    kapi::cr4_update(&irqs, 0, CR4_VMXE);
    slot.on.store(false, Ordering::Release);
}

/// Reboot, kexec or crash: leave VMX operation on this CPU so the next
/// kernel (or the firmware) finds it off. Runs with interrupts off, maybe in
/// NMI context, on every CPU. While rvmx is registered here, a CPU with
/// CR4.VMXE set is one that rvmx turned on (rvmx refuses to load otherwise).
/// # Safety
/// Called by the kernel only (CPU hotplug, emergency or syscore callback).
unsafe extern "C" fn emergency_off() {
    if insn::read_cr4() & CR4_VMXE != 0 {
        let _ = insn::vmxoff();
        let irqs = IrqsOff::new();
        kapi::cr4_update(&irqs, 0, CR4_VMXE);
    }
}

/// Suspend: other CPUs are offline already (their hotplug "down" ran); this
/// is the last one, IRQs off.
/// # Safety
/// Called by the kernel only (CPU hotplug, emergency or syscore callback).
unsafe extern "C" fn suspend(_: *mut core::ffi::c_void) -> i32 {
    if let Some(s) = shared() {
        // The one slot still on is this CPU's.
        for (cpu, slot) in s.slots.iter().enumerate() {
            if slot.on.load(Ordering::Acquire) {
                vmx_off(cpu as u32);
                slot.suspended.store(true, Ordering::Release);
            }
        }
    }
    0
}

/// Resume: turn VMX on again in the CPU that suspended.
/// # Safety
/// Called by the kernel only (CPU hotplug, emergency or syscore callback).
unsafe extern "C" fn resume(_: *mut core::ffi::c_void) {
    if let Some(s) = shared() {
        for (cpu, slot) in s.slots.iter().enumerate() {
            // The slot rvmx marked "off" in `suspend` is this CPU's.
            if slot.suspended.swap(false, Ordering::AcqRel) {
                let _ = vmx_on(cpu as u32);
            }
        }
    }
}
