// SPDX-License-Identifier: GPL-2.0
//! VMX operation on every CPU: bhyve's `vmm_ops_intel.init`/`.cleanup`.
//!
//! A CPU-hotplug state turns VMX on in each CPU that comes online (and in
//! every online CPU when rvmx loads) and off in each that goes offline (and
//! in all of them when rvmx unloads). rvmx never turns off a VMX that it did
//! not turn on: a CPU already in VMX operation (CR4.VMXE = 1, e.g. kvm_intel)
//! fails the load with -EBUSY.

use super::caps::{cr_ok, ept_vpid, Basic, RawCaps};
use super::insn::{self, VmxFail};
use crate::kapi::{self, CallbackState, Callbacks, CpuCallbacks, IrqsOff, KernelPage};
use crate::x86::cr4::VMXE as CR4_VMXE;
use core::sync::atomic::{AtomicBool, Ordering};
use kernel::c_str;
use kernel::prelude::*;

/// One CPU's VMXON region and whether rvmx has VMX on there.
struct Slot {
    region: KernelPage,
    on: AtomicBool,
    /// Turned off by `suspend`, to be turned on again by `resume`.
    suspended: AtomicBool,
}

/// What the callbacks need: the kernel calls them without a context
/// argument, so they find it in [`SHARED`] while [`VmxCpus`] lives.
struct Shared {
    caps: RawCaps,
    slots: KVec<Slot>,
}

static SHARED: CallbackState<Shared> = CallbackState::new();

/// VMX is on in every online CPU while this lives.
pub(crate) struct VmxCpus {
    _callbacks: Callbacks<Shared>,
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
            region.set_first_u32(Basic(caps.basic).revision());
            slots.push(Slot { region, on: AtomicBool::new(false), suspended: AtomicBool::new(false) }, GFP_KERNEL)?;
        }
        let shared = KBox::new(Shared { caps, slots }, GFP_KERNEL)?;
        let cb = CpuCallbacks {
            name: c_str!("rvmx:online"),
            up: cpu_up,
            down: cpu_down,
            emergency: emergency_off,
            suspend,
            resume,
        };
        // Dropping the callbacks removes the hotplug state, which turns VMX
        // off in every online CPU, and then frees the regions.
        Ok(Self { _callbacks: Callbacks::register(&SHARED, shared, cb)? })
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

fn shared() -> Option<&'static Shared> {
    SHARED.get()
}

/// Hotplug "up": runs on `cpu`. 0 or a negative errno (which makes the
/// load, or the CPU's onlining, fail).
extern "C" fn cpu_up(cpu: u32) -> i32 {
    match vmx_on(cpu) {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

/// Hotplug "down": runs on `cpu`.
extern "C" fn cpu_down(cpu: u32) -> i32 {
    vmx_off(cpu);
    0
}

fn vmx_on(cpu: u32) -> Result {
    let s = shared().ok_or(ENODEV)?;
    let slot = s.slots.get(cpu as usize).ok_or(EINVAL)?;
    let caps = insn::read_vmx_caps();
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
    super::check_feature_control(Some(&irqs))?;
    // CR0 and CR4 must respect the fixed bits in VMX operation (SDM Vol. 3C
    // 24.8); Linux's CR0 already does; CR4 needs VMXE.
    let cr0 = insn::read_cr0();
    let cr4 = insn::read_cr4() | CR4_VMXE;
    if !cr_ok(cr0, caps.cr0_fixed0, caps.cr0_fixed1) || !cr_ok(cr4, caps.cr4_fixed0, caps.cr4_fixed1) {
        pr_err!("CPU {}: CR0 {:#x} / CR4 {:#x} break the VMX fixed bits\n", cpu, cr0, cr4);
        return Err(EIO);
    }
    kapi::cr4_update(&irqs, CR4_VMXE, 0);
    if let Err(f) = insn::vmxon(&slot.region) {
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
extern "C" fn emergency_off() {
    if insn::read_cr4() & CR4_VMXE != 0 {
        let _ = insn::vmxoff();
        let irqs = IrqsOff::new();
        kapi::cr4_update(&irqs, 0, CR4_VMXE);
    }
}

/// Suspend: other CPUs are offline already (their hotplug "down" ran); this
/// is the last one, IRQs off.
extern "C" fn suspend(_: *mut core::ffi::c_void) -> i32 {
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
extern "C" fn resume(_: *mut core::ffi::c_void) {
    if let Some(s) = shared() {
        for (cpu, slot) in s.slots.iter().enumerate() {
            // The slot rvmx marked "off" in `suspend` is this CPU's.
            if slot.suspended.swap(false, Ordering::AcqRel) {
                let _ = vmx_on(cpu as u32);
            }
        }
    }
}
