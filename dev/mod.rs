// SPDX-License-Identifier: GPL-2.0
//! `/dev/rvmx`: the system file descriptor and its ioctl table.
//!
//! Every ioctl goes through [`ioctl::dispatch`], which checks the command
//! against the table, copies the argument in and out with the size encoded
//! in the command, and only then calls the handler.

mod ioctl;

use crate::kapi::{FileOps, MiscDevice};
use crate::uapi;
use ioctl::{Arg, Entry};
use kernel::bindings;
use kernel::c_str;
use kernel::prelude::*;

/// `/dev/rvmx` is for root (and whoever an administrator gives the node to).
const DEV_MODE: u16 = 0o600;

// As in the `module!` macro: `struct module` holds a zero-sized lock key.
#[allow(improper_ctypes)]
extern "C" {
    static __this_module: kernel::types::Opaque<bindings::module>;
}

static SYSTEM_FOPS: FileOps = FileOps(bindings::file_operations {
    // The module's own `THIS_MODULE` (only its address is taken): it pins
    // the module while a file is open.
    owner: core::ptr::addr_of!(__this_module).cast_mut().cast(),
    unlocked_ioctl: Some(system_ioctl),
    compat_ioctl: Some(system_ioctl),
    // SAFETY: all other fields are optional hooks or data for which zero
    // (NULL) is the documented "not provided".
    ..unsafe { core::mem::MaybeUninit::zeroed().assume_init() }
});

/// Registers `/dev/rvmx`.
pub(crate) fn register() -> Result<MiscDevice> {
    MiscDevice::register(c_str!("rvmx"), &SYSTEM_FOPS, DEV_MODE)
}

/// The ioctls of the system fd.
const SYSTEM_IOCTLS: &[Entry<()>] = &[Entry { cmd: uapi::RVMX_GET_VERSION, handler: get_version }];

fn get_version(_: &(), arg: &mut Arg) -> Result<isize> {
    arg.write(&uapi::rvmx_version { api: uapi::RVMX_API_VERSION, reserved: 0 });
    Ok(0)
}

unsafe extern "C" fn system_ioctl(
    _file: *mut bindings::file,
    cmd: kernel::ffi::c_uint,
    arg: kernel::ffi::c_ulong,
) -> kernel::ffi::c_long {
    ioctl::dispatch(SYSTEM_IOCTLS, &(), cmd, arg)
}
