// SPDX-License-Identifier: GPL-2.0
//! VMs (bhyve's `vm_create`/`vmx_vminit`): guest memory and vCPUs, and
//! the VM file descriptor. A VM lives while its fd or any of its vCPU fds
//! is open.

pub(crate) mod cpuid;
pub(crate) mod memory;
pub(crate) mod vcpu;

use crate::dev::ioctl::{self, Arg, Entry};
use crate::kapi::{self, FileObject};
use crate::uapi;
use kernel::c_str;
use core::sync::atomic::{AtomicU64, Ordering};
use kernel::prelude::*;
use crate::vmx::msr::{MsrFilter, MsrRange};
use kernel::str::CStr;
use kernel::sync::{Arc, Mutex};
use memory::Memory;

/// vCPUs per VM (rvmx_caps.max_vcpus): ids 0..=63.
pub(crate) const MAX_VCPUS: u32 = 64;

/// A VM.
#[pin_data]
pub(crate) struct Vm {
    /// The creator's address space: guest memory is its memory, so only
    /// its threads may run vCPUs (pages are pinned from `current->mm`).
    mm: kapi::MmRef,
    eptp: u64,
    /// TSC_OFFSET of every vCPU: the guest's TSC reads 0 when the VM was
    /// created, the same on every vCPU (KVM synchronizes them too).
    tsc_offset: u64,
    #[pin]
    memory: Mutex<Memory>,
    /// Which vCPU ids exist.
    #[pin]
    vcpus: Mutex<u64>,
    /// MSRs whose guest accesses go to userland, and a generation that
    /// changes with it (each vCPU rebuilds its MSR bitmap at RUN).
    #[pin]
    msr_filter: Mutex<(MsrFilter, u64)>,
    /// The filter's generation, for a check at RUN without the lock.
    filter_gen: AtomicU64,
    /// The preempt notifiers of its vCPUs fire while the VM exists.
    _notifiers: kapi::NotifierKey,
}

impl Vm {
    /// RVMX_CREATE_VM: a new VM and its fd.
    pub(crate) fn create() -> Result<i32> {
        // EPT accessed/dirty flags are not used (yet): nothing reads them.
        let mem = Memory::new(false)?;
        let eptp = mem.eptp();
        let mm = kapi::MmRef::current().ok_or(EINVAL)?;
        let vm = Arc::pin_init(
            pin_init!(Vm {
                mm,
                eptp,
                tsc_offset: 0u64.wrapping_sub(crate::vmx::insn::rdtsc()),
                memory <- kernel::new_mutex!(mem),
                vcpus <- kernel::new_mutex!(0),
                msr_filter <- kernel::new_mutex!((MsrFilter::EMPTY, 0)),
                filter_gen: AtomicU64::new(0),
                _notifiers: kapi::NotifierKey::new(),
            }),
            GFP_KERNEL,
        )?;
        kapi::new_fd(vm)
    }

    /// The EPT pointer of this VM's vCPUs.
    pub(crate) fn eptp(&self) -> u64 {
        self.eptp
    }

    /// The TSC offset new vCPUs start with.
    pub(crate) fn tsc_offset(&self) -> u64 {
        self.tsc_offset
    }

    /// The creator's address space (identity only).
    pub(crate) fn mm(&self) -> usize {
        self.mm.addr()
    }

    /// Guest memory.
    pub(crate) fn memory(&self) -> &Mutex<Memory> {
        &self.memory
    }

    /// The MSR filter and its generation.
    pub(crate) fn msr_filter(&self) -> (MsrFilter, u64) {
        *self.msr_filter.lock()
    }

    /// The MSR filter's generation (changes with every SET_MSR_FILTER).
    pub(crate) fn filter_gen(&self) -> u64 {
        self.filter_gen.load(Ordering::Acquire)
    }
}

impl FileObject for Vm {
    const NAME: &'static CStr = c_str!("rvmx-vm");


    fn ioctl(this: &Arc<Self>, cmd: u32, arg: usize) -> isize {
        ioctl::dispatch(VM_IOCTLS, this, cmd, arg)
    }
}

const VM_IOCTLS: &[Entry<Arc<Vm>>] = &[
    Entry { cmd: uapi::RVMX_SET_MEMORY_REGION, handler: set_memory_region },
    Entry { cmd: uapi::RVMX_CREATE_VCPU, handler: create_vcpu },
    Entry { cmd: uapi::RVMX_SET_MSR_FILTER, handler: set_msr_filter },
];

/// RVMX_SET_MSR_FILTER: replaces the VM's filter (vCPUs see it at their
/// next RUN).
fn set_msr_filter(vm: &Arc<Vm>, arg: &mut Arg<'_>) -> Result<isize> {
    let f: uapi::rvmx_msr_filter = arg.read()?;
    let n = f.nranges as usize;
    if f.reserved != 0 || n > f.ranges.len() || f.ranges[n..].iter().any(|r| r.base | r.count | r.flags | r.reserved != 0) {
        return Err(EINVAL);
    }
    let mut ranges = [MsrRange::default(); MsrFilter::MAX_RANGES];
    for (out, r) in ranges.iter_mut().zip(&f.ranges[..n]) {
        if r.reserved != 0 {
            return Err(EINVAL);
        }
        *out = MsrRange { base: r.base, count: r.count, flags: r.flags };
    }
    let filter = MsrFilter::new(&ranges[..n]).map_err(|()| EINVAL)?;
    let mut cur = vm.msr_filter.lock();
    *cur = (filter, cur.1.wrapping_add(1));
    vm.filter_gen.store(cur.1, Ordering::Release);
    Ok(0)
}

fn set_memory_region(vm: &Arc<Vm>, arg: &mut Arg<'_>) -> Result<isize> {
    let r: uapi::rvmx_memory_region = arg.read()?;
    if kapi::current_mm() != vm.mm() {
        return Err(EIO);
    }
    vm.memory.lock().set_region(&r)?;
    Ok(0)
}

fn create_vcpu(vm: &Arc<Vm>, arg: &mut Arg<'_>) -> Result<isize> {
    let id = u32::try_from(arg.value()).map_err(|_| EINVAL)?;
    if id >= MAX_VCPUS {
        return Err(EINVAL);
    }
    {
        let mut ids = vm.vcpus.lock();
        if *ids & (1 << id) != 0 {
            return Err(EEXIST);
        }
        *ids |= 1 << id;
    }
    // From here the id is released when `VcpuId` drops (with the vCPU, or
    // now if creating it fails).
    vcpu::Vcpu::create(VcpuId { vm: vm.clone(), id }).map(|fd| fd as isize)
}

/// A vCPU id taken in its VM; given back on drop.
pub(crate) struct VcpuId {
    pub(crate) vm: Arc<Vm>,
    pub(crate) id: u32,
}

impl Drop for VcpuId {
    fn drop(&mut self) {
        *self.vm.vcpus.lock() &= !(1u64 << self.id);
    }
}
