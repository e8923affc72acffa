// SPDX-License-Identifier: GPL-2.0
//! Table-driven ioctl dispatch (FreeBSD vmmdev style): the command selects a
//! handler, and the size and direction encoded in the command decide, in this
//! one place, how much is copied from and to userland.

use crate::kapi::{read_pod, write_pod, Pod};
use kernel::ioctl::{_IOC_DIR, _IOC_SIZE};
use kernel::uapi::{_IOC_READ, _IOC_WRITE};
use kernel::prelude::*;
use kernel::uaccess::{UserPtr, UserSlice};

/// The largest ioctl argument rvmx takes; larger commands are refused.
pub(crate) const MAX_ARG: usize = 512;

/// One ioctl: its full command number (type, number, direction, size) and
/// its handler. `T` is the state of the file the ioctl is made on.
pub(crate) struct Entry<T: 'static> {
    pub(crate) cmd: u32,
    pub(crate) handler: fn(&T, &mut Arg<'_>) -> Result<isize>,
}

/// The argument of one ioctl, as bytes copied from userland (for `_IOW`/`_IOWR`)
/// and copied back after the handler (for `_IOR`/`_IOWR`).
pub(crate) struct Arg<'a> {
    /// The copied bytes: as many as the command encodes (none for `_IO`
    /// commands such as RUN: nothing to clear or copy on the hot path).
    buf: &'a mut [u8],
    value: usize,
    /// The handler set the argument: it goes back to userland even if the
    /// handler then fails (a GET that returns E2BIG with the size needed).
    written: bool,
}

impl Arg<'_> {
    /// The raw argument: the integer of an `_IO` command.
    pub(crate) fn value(&self) -> usize {
        self.value
    }

    /// The argument as a `T`; `T` must be the size the command encodes.
    pub(crate) fn read<T: Pod>(&self) -> Result<T> {
        if core::mem::size_of::<T>() != self.buf.len() {
            return Err(EINVAL);
        }
        read_pod(self.buf).ok_or(EINVAL)
    }

    /// Sets the argument that is copied back to userland.
    pub(crate) fn write<T: Pod>(&mut self, v: &T) {
        write_pod(v, self.buf);
        self.written = true;
    }
}

/// Runs the ioctl `cmd` with the user argument `uarg` against `table`.
/// Returns the handler's value or a negative errno.
pub(crate) fn dispatch<T>(table: &[Entry<T>], state: &T, cmd: u32, uarg: usize) -> isize {
    match run(table, state, cmd, uarg) {
        Ok(v) => v,
        Err(e) => e.to_errno() as isize,
    }
}

fn run<T>(table: &[Entry<T>], state: &T, cmd: u32, uarg: usize) -> Result<isize> {
    let entry = table.iter().find(|e| e.cmd == cmd).ok_or(ENOTTY)?;
    let len = _IOC_SIZE(cmd);
    if len > MAX_ARG {
        return Err(EINVAL);
    }
    let dir = _IOC_DIR(cmd);
    // Stack space only for commands that carry a struct.
    let mut storage;
    let buf: &mut [u8] = if len == 0 {
        &mut []
    } else {
        storage = [0u8; MAX_ARG];
        &mut storage[..len]
    };
    let mut arg = Arg { buf, value: uarg, written: false };
    let user = UserSlice::new(uarg as UserPtr, len);
    let (mut reader, mut writer) = user.reader_writer();
    if dir & _IOC_WRITE != 0 && len != 0 {
        reader.read_slice(arg.buf)?;
    }
    let ret = (entry.handler)(state, &mut arg);
    if dir & _IOC_READ != 0 && len != 0 && (ret.is_ok() || arg.written) {
        writer.write_slice(arg.buf)?;
    }
    ret
}
