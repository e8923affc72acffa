// SPDX-License-Identifier: GPL-2.0
//! VMs (the seed's `vm_create`/`vmx_vminit`): guest memory and vCPUs, and
//! the VM file descriptor. A VM lives while its fd or any of its vCPU fds
//! is open.

pub(crate) mod memory;
pub(crate) mod vcpu;

use crate::dev::ioctl::{self, Arg, Entry};
use crate::kapi::{self, FileOps};
use crate::uapi;
use kernel::bindings;
use kernel::c_str;
use kernel::prelude::*;
use kernel::sync::{Arc, ArcBorrow, Mutex};
use memory::Memory;

/// vCPUs per VM (rvmx_caps.max_vcpus): ids 0..=63.
pub(crate) const MAX_VCPUS: u32 = 64;

/// A VM.
#[pin_data]
pub(crate) struct Vm {
    /// The creator's address space: guest memory is its memory, so only
    /// its threads may run vCPUs (pages are pinned from `current->mm`).
    mm: usize,
    eptp: u64,
    #[pin]
    memory: Mutex<Memory>,
    /// Which vCPU ids exist.
    #[pin]
    vcpus: Mutex<u64>,
}

impl Vm {
    /// RVMX_CREATE_VM: a new VM and its fd.
    pub(crate) fn create() -> Result<i32> {
        // EPT accessed/dirty flags are not used (yet): nothing reads them.
        let mem = Memory::new(false)?;
        let eptp = mem.eptp();
        let vm = Arc::pin_init(
            pin_init!(Vm {
                mm: kapi::current_mm(),
                eptp,
                memory <- kernel::new_mutex!(mem),
                vcpus <- kernel::new_mutex!(0),
            }),
            GFP_KERNEL,
        )?;
        kapi::anon_fd(c_str!("rvmx-vm"), &VM_FOPS, vm)
    }

    /// The EPT pointer of this VM's vCPUs.
    pub(crate) fn eptp(&self) -> u64 {
        self.eptp
    }

    /// The creator's address space (identity only).
    pub(crate) fn mm(&self) -> usize {
        self.mm
    }

    /// Guest memory.
    pub(crate) fn memory(&self) -> &Mutex<Memory> {
        &self.memory
    }

}

static VM_FOPS: FileOps = FileOps(bindings::file_operations {
    owner: crate::this_module!(),
    unlocked_ioctl: Some(vm_ioctl),
    compat_ioctl: Some(vm_ioctl),
    release: Some(vm_release),
    // SAFETY: all other fields are optional hooks; zero means "none".
    ..unsafe { core::mem::MaybeUninit::zeroed().assume_init() }
});

const VM_IOCTLS: &[Entry<Arc<Vm>>] = &[
    Entry { cmd: uapi::RVMX_SET_MEMORY_REGION, handler: set_memory_region },
    Entry { cmd: uapi::RVMX_CREATE_VCPU, handler: create_vcpu },
];

fn set_memory_region(vm: &Arc<Vm>, arg: &mut Arg) -> Result<isize> {
    let r: uapi::rvmx_memory_region = arg.read()?;
    if kapi::current_mm() != vm.mm {
        return Err(EIO);
    }
    vm.memory.lock().set_region(&r)?;
    Ok(0)
}

fn create_vcpu(vm: &Arc<Vm>, arg: &mut Arg) -> Result<isize> {
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

/// # Safety
/// Called by the kernel as a file operation of a file this module created.
unsafe extern "C" fn vm_ioctl(file: *mut bindings::file, cmd: u32, arg: usize) -> isize {
    // SAFETY: `private_data` holds the reference that `Vm::create` gave the
    // file; it lives until `vm_release`, after every ioctl returned.
    let vm: Arc<Vm> = unsafe { ArcBorrow::from_raw((*file).private_data as *const Vm) }.into();
    ioctl::dispatch(VM_IOCTLS, &vm, cmd, arg)
}

/// # Safety
/// Called by the kernel as a file operation of a file this module created.
unsafe extern "C" fn vm_release(_inode: *mut bindings::inode, file: *mut bindings::file) -> i32 {
    // SAFETY: the reference given to the file in `Vm::create`, released once.
    drop(unsafe { Arc::from_raw((*file).private_data as *const Vm) });
    0
}
