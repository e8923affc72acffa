// SPDX-License-Identifier: GPL-2.0
//! `/dev/rvmx`: the system file descriptor and its ioctl table.
//!
//! Every ioctl goes through [`ioctl::dispatch`], which checks the command
//! against the table, copies the argument in and out with the size encoded
//! in the command, and only then calls the handler.

pub(crate) mod ioctl;

use crate::kapi::{FileOps, MiscDevice, MiscFile};
use crate::uapi;
use ioctl::{Arg, Entry};
use kernel::c_str;
use kernel::prelude::*;

/// `/dev/rvmx` is for root (and whoever an administrator gives the node to).
const DEV_MODE: u16 = 0o600;

/// The system file.
struct System;

impl MiscFile for System {
    fn ioctl(cmd: u32, arg: usize) -> isize {
        ioctl::dispatch(SYSTEM_IOCTLS, &(), cmd, arg)
    }
}

static SYSTEM_FOPS: FileOps = FileOps::misc::<System>();

/// Registers `/dev/rvmx`.
pub(crate) fn register() -> Result<MiscDevice> {
    MiscDevice::register(c_str!("rvmx"), &SYSTEM_FOPS, DEV_MODE)
}

/// The ioctls of the system fd.
const SYSTEM_IOCTLS: &[Entry<()>] = &[
    Entry { cmd: uapi::RVMX_GET_VERSION, handler: get_version },
    Entry { cmd: uapi::RVMX_GET_CAPS, handler: get_caps },
    Entry { cmd: uapi::RVMX_GET_CPU_STATUS, handler: get_cpu_status },
    Entry { cmd: uapi::RVMX_GET_MSR_LIST, handler: get_msr_list },
    Entry { cmd: uapi::RVMX_GET_SUPPORTED_CPUID, handler: get_supported_cpuid },
    Entry { cmd: uapi::RVMX_CREATE_VM, handler: create_vm },
];

fn create_vm(_: &(), arg: &mut Arg<'_>) -> Result<isize> {
    if arg.value() != 0 {
        return Err(EINVAL);
    }
    crate::vm::Vm::create().map(|fd| fd as isize)
}

fn get_version(_: &(), arg: &mut Arg<'_>) -> Result<isize> {
    arg.write(&uapi::rvmx_version { api: uapi::RVMX_API_VERSION, reserved: 0 });
    Ok(0)
}

fn get_caps(_: &(), arg: &mut Arg<'_>) -> Result<isize> {
    use crate::vmx::caps::{ept_vpid as ev, pin, proc, proc2};
    let c = crate::vmx::cpu::loaded_caps()?;
    let e = c.ept_vpid();
    let flags = [
        (c.proc2().allows(proc2::EPT), uapi::RVMX_CAP_EPT),
        (c.proc2().allows(proc2::VPID), uapi::RVMX_CAP_VPID),
        (c.proc2().allows(proc2::UNRESTRICTED_GUEST), uapi::RVMX_CAP_UNRESTRICTED_GUEST),
        (c.pin().allows(pin::PREEMPTION_TIMER), uapi::RVMX_CAP_PREEMPTION_TIMER),
        (c.pin().allows(pin::VIRTUAL_NMI), uapi::RVMX_CAP_VIRTUAL_NMI),
        (e & ev::AD != 0, uapi::RVMX_CAP_EPT_AD),
        (e & ev::PAGE_2M != 0, uapi::RVMX_CAP_EPT_2M),
        (e & ev::PAGE_1G != 0, uapi::RVMX_CAP_EPT_1G),
        (e & ev::EXEC_ONLY != 0, uapi::RVMX_CAP_EPT_EXEC_ONLY),
        (e & ev::INVVPID != 0, uapi::RVMX_CAP_INVVPID),
        (c.proc2().allows(proc2::PML), uapi::RVMX_CAP_PML),
        (c.proc().allows(proc::MTF), uapi::RVMX_CAP_MTF),
        (c.proc().allows(proc::PAUSE), uapi::RVMX_CAP_PAUSE_EXIT),
        // Guests get XSAVE (XCR0 switched) where the host uses it.
        (crate::vmx::insn::read_cr4() & crate::x86::cr4::OSXSAVE != 0, uapi::RVMX_CAP_XSAVE),
    ]
    .iter()
    .filter(|(has, _)| *has)
    .fold(0u64, |acc, (_, bit)| acc | *bit as u64);
    arg.write(&uapi::rvmx_caps {
        flags,
        max_vcpus: crate::vm::MAX_VCPUS,
        max_mem_slots: crate::vm::memory::MAX_SLOTS as u32,
        vmcs_revision: crate::vmx::caps::Basic(c.basic).revision(),
        preemption_timer_shift: c.preemption_timer_shift(),
        vmx_basic: c.basic,
        ept_vpid_cap: e,
        reserved: [0; 10],
    });
    Ok(0)
}

fn get_cpu_status(_: &(), arg: &mut Arg<'_>) -> Result<isize> {
    let (online, vmx_on) = crate::vmx::cpu::cpu_status();
    arg.write(&uapi::rvmx_cpu_status { online, vmx_on, nr_cpu_ids: crate::kapi::nr_cpu_ids(), reserved: 0 });
    Ok(0)
}

/// RVMX_GET_MSR_LIST: the MSRs to save and restore a vCPU.
fn get_msr_list(_: &(), arg: &mut Arg<'_>) -> Result<isize> {
    use crate::vmx::msr::SAVE_LIST;
    use kernel::uaccess::{UserPtr, UserSlice};
    let mut l: uapi::rvmx_msr_list = arg.read()?;
    if l.reserved != 0 {
        return Err(EINVAL);
    }
    let asked = l.nmsrs as usize;
    l.nmsrs = SAVE_LIST.len() as u32;
    arg.write(&l);
    if asked < SAVE_LIST.len() {
        return Err(E2BIG);
    }
    let mut w = UserSlice::new(l.indices as UserPtr, SAVE_LIST.len() * 4).writer();
    for i in SAVE_LIST {
        w.write_slice(&i.to_ne_bytes())?;
    }
    Ok(0)
}

/// RVMX_GET_SUPPORTED_CPUID: everything a vCPU's table may offer.
fn get_supported_cpuid(_: &(), arg: &mut Arg<'_>) -> Result<isize> {
    let caps = crate::vmx::cpu::loaded_caps()?;
    let sup = crate::vm::cpuid::supported(&caps)?;
    crate::vm::cpuid::copy_out(arg, &sup)
}
