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
use super::mitigation::{l1d_flush, L1dFlush};
use crate::kapi::{self, CallbackState, Callbacks, CpuCallbacks, Feature, IrqsOff, KernelPage};
use crate::vmcs::Region;
use crate::x86::cr4::VMXE as CR4_VMXE;
use core::sync::atomic::{AtomicBool, Ordering};
use kernel::c_str;
use kernel::prelude::*;
use kernel::sync::{Arc, SpinLock};

/// One CPU's VMXON region and whether rvmx has VMX on there.
struct Slot {
    region: KernelPage,
    on: AtomicBool,
    /// Turned off by `suspend`, to be turned on again by `resume`.
    suspended: AtomicBool,
}

/// What the callbacks need: the kernel calls them without a context
/// argument, so they find it in [`SHARED`] while [`VmxCpus`] lives.
#[pin_data]
struct Shared {
    caps: RawCaps,
    slots: KVec<Slot>,
    /// Every VMCS, so that a CPU going down can VMCLEAR those active on it
    /// (free places are `None`).
    #[pin]
    vmcss: SpinLock<KVec<Option<Arc<Region>>>>,
    /// The L1D flush before VM entry (L1TF).
    l1d: L1d,
    /// The host's SYSCALL MSRs (the kernel sets the same on every CPU at
    /// boot), for the run loop to put back.
    host_syscall: [u64; 4],
}

/// How to flush L1D before VM entry: when (`mode`), and how: IA32_FLUSH_CMD
/// (`hw`) or by reading `buf` (64 KiB, as KVM's software flush).
struct L1d {
    mode: L1dFlush,
    hw: bool,
    buf: KVec<u8>,
}

impl L1d {
    fn new() -> Result<Self> {
        let arch = insn::arch_capabilities(kapi::cpu_has(Feature::ArchCapabilities));
        let mode = l1d_flush(kapi::cpu_has(Feature::BugL1tf), arch, kapi::l1tf_mitigation());
        let hw = kapi::cpu_has(Feature::FlushL1d);
        let mut buf = KVec::new();
        if mode != L1dFlush::Never && !hw {
            // Each page a different pattern (as KVM: no page sharing).
            for page in 0..16u8 {
                buf.extend_with(4096, page + 1, GFP_KERNEL)?;
            }
        }
        Ok(Self { mode, hw, buf })
    }
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
        let l1d = L1d::new()?;
        if l1d.mode != L1dFlush::Never {
            pr_info!("L1TF: flushing L1D before VM entry ({:?}, {})\n", l1d.mode, if l1d.hw { "IA32_FLUSH_CMD" } else { "software" });
        }
        let shared = KBox::pin_init(
            pin_init!(Shared {
                caps,
                slots,
                vmcss <- kernel::new_spinlock!(KVec::new()),
                l1d,
                host_syscall: insn::SYSCALL_MSRS.map(insn::rdmsr),
            }),
            GFP_KERNEL,
        )?;
        let cb = CpuCallbacks {
            name: c_str!("rvmx:online"),
            up: cpu_up,
            down: cpu_down,
            emergency: emergency_off,
            suspend,
            resume,
            shutdown,
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

/// Set when the host reboots or kexecs: VMX is going off everywhere, for
/// good; runs end with -EIO instead of waiting for a CPU with VMX.
static SHUTTING_DOWN: AtomicBool = AtomicBool::new(false);

/// Whether the host is rebooting (see [`SHUTTING_DOWN`]).
pub(crate) fn shutting_down() -> bool {
    SHUTTING_DOWN.load(Ordering::Acquire)
}

/// Reboot or kexec: VMX off in every CPU, VMCSs written back first, as
/// KVM's kvm_shutdown does. Without it, the CPU that kexecs would still be
/// in VMX operation (only the others leave it, through the emergency
/// callback) and the next kernel would fault clearing CR4.VMXE.
extern "C" fn shutdown(_: *mut core::ffi::c_void) {
    SHUTTING_DOWN.store(true, Ordering::Release);
    kapi::on_each_cpu(&mut (), |_| vmx_off(kapi::this_cpu()));
}

fn shared() -> Option<&'static Shared> {
    SHARED.get()
}

/// The host's STAR, LSTAR, CSTAR and FMASK.
pub(crate) fn host_syscall_msrs() -> [u64; 4] {
    shared().map_or([0; 4], |s| s.host_syscall)
}

/// When the run loop flushes L1D before entry.
pub(crate) fn l1d_mode() -> L1dFlush {
    shared().map_or(L1dFlush::Never, |s| s.l1d.mode)
}

/// Flushes L1D (L1TF), as the mitigation chosen at load says how.
pub(crate) fn flush_l1d() {
    if let Some(s) = shared() {
        insn::flush_l1d(s.l1d.hw, &s.l1d.buf);
    }
}

/// Adds a new VMCS to those a CPU going down clears.
pub(crate) fn track_vmcs(r: Arc<Region>) -> Result {
    let s = shared().ok_or(ENODEV)?;
    let mut list = s.vmcss.lock();
    match list.iter_mut().find(|x| x.is_none()) {
        Some(free) => *free = Some(r),
        None => list.push(Some(r), GFP_ATOMIC)?,
    }
    Ok(())
}

/// Forgets a VMCS that is clear and about to be freed.
pub(crate) fn untrack_vmcs(r: &Arc<Region>) {
    if let Some(s) = shared() {
        let mut list = s.vmcss.lock();
        if let Some(x) = list.iter_mut().find(|x| x.as_ref().is_some_and(|x| Arc::ptr_eq(x, r))) {
            *x = None;
        }
    }
}

/// Hotplug "up": runs on `cpu`. 0 or a negative errno (which makes the
/// load, or the CPU's onlining, fail).
extern "C" fn cpu_up(cpu: u32) -> i32 {
    // AP hotplug callbacks run on the CPU itself.
    if cpu != kapi::this_cpu() {
        return EINVAL.to_errno();
    }
    match vmx_on(cpu) {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

/// Hotplug "down": runs on `cpu`.
extern "C" fn cpu_down(cpu: u32) -> i32 {
    if cpu != kapi::this_cpu() {
        return EINVAL.to_errno();
    }
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
    // VMCLEAR every VMCS active here, so its state is in memory for the
    // CPU that loads it next; with interrupts off from here to VMXOFF, no
    // vCPU task can load one here meanwhile (SDM Vol. 3C 25.11.1).
    let list = shared().map(|s| s.vmcss.lock());
    let irqs = IrqsOff::new();
    for r in list.iter().flat_map(|l| l.iter()).flatten() {
        r.clear_if_here();
    }
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
    let cpu = kapi::this_cpu();
    if let Some(slot) = shared().and_then(|s| s.slots.get(cpu as usize)) {
        if slot.on.load(Ordering::Acquire) {
            vmx_off(cpu);
            slot.suspended.store(true, Ordering::Release);
        }
    }
    0
}

/// Resume: turn VMX on again in the CPU that suspended.
extern "C" fn resume(_: *mut core::ffi::c_void) {
    let cpu = kapi::this_cpu();
    if let Some(slot) = shared().and_then(|s| s.slots.get(cpu as usize)) {
        if slot.suspended.swap(false, Ordering::AcqRel) {
            let _ = vmx_on(cpu);
        }
    }
}
