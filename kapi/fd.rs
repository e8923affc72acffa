// SPDX-License-Identifier: GPL-2.0
//! File descriptors: the `/dev/rvmx` misc device, and anonymous-inode files
//! that own an `Arc<T>` (VMs, vCPUs). The `private_data` <-> `Arc`
//! protocol and the C trampolines live here and nowhere else.

use super::raw;
use kernel::bindings;
use kernel::error::to_result;
use kernel::prelude::*;
use kernel::str::CStr;
use kernel::sync::{Arc, ArcBorrow};
use kernel::types::Opaque;

// As in the `module!` macro: `struct module` holds a zero-sized lock key.
#[allow(improper_ctypes)]
extern "C" {
    static __this_module: Opaque<bindings::module>;
}

/// `THIS_MODULE`: only its address is taken. Every open file pins the
/// module through its `file_operations.owner`.
const fn this_module() -> *mut bindings::module {
    core::ptr::addr_of!(__this_module).cast_mut().cast()
}

/// A `file_operations` table that may live in a `static`.
#[repr(transparent)]
pub(crate) struct FileOps(bindings::file_operations);

// SAFETY: the table is immutable after construction and only holds function
// pointers and a pointer to this module; the kernel reads it from any thread.
unsafe impl Sync for FileOps {}

/// A file whose `private_data` is an `Arc<Self>`: a VM or a vCPU.
pub(crate) trait FileObject: Send + Sync + Sized + 'static {
    /// The anonymous inode's name ("rvmx-vm", ...).
    const NAME: &'static CStr;
    /// Whether `mmap` is supported ([`FileObject::mmap`]).
    const MMAP: bool = false;
    /// An ioctl; returns a value or a negative errno.
    fn ioctl(this: &Arc<Self>, cmd: u32, arg: usize) -> isize;
    /// Maps the file's memory into `vma`.
    fn mmap(_this: &Self, _vma: &Vma) -> Result {
        Err(ENODEV)
    }
}

/// The VMA an `mmap` call is for, valid during that call.
pub(crate) struct Vma(pub(super) *mut bindings::vm_area_struct);

/// The operations of `T`'s files, built here so that the trampolines and
/// the object type always match.
struct Vtable<T>(core::marker::PhantomData<T>);

impl<T: FileObject> Vtable<T> {
    const FOPS: FileOps = FileOps::new::<T>();
}

impl FileOps {
    /// The operations of a [`FileObject`] file.
    const fn new<T: FileObject>() -> Self {
        FileOps(bindings::file_operations {
            owner: this_module(),
            unlocked_ioctl: Some(obj_ioctl::<T>),
            compat_ioctl: Some(obj_ioctl::<T>),
            mmap: if T::MMAP { Some(obj_mmap::<T>) } else { None },
            release: Some(obj_release::<T>),
            // SAFETY: all other fields are optional hooks; zero means "none".
            ..unsafe { core::mem::MaybeUninit::zeroed().assume_init() }
        })
    }
}

/// Creates an anonymous-inode file (O_RDWR | O_CLOEXEC) that owns `obj`
/// from now on; returns its fd.
pub(crate) fn new_fd<T: FileObject>(obj: Arc<T>) -> Result<i32> {
    let flags = (bindings::O_RDWR | bindings::O_CLOEXEC) as i32;
    let p = obj.into_raw();
    let fops: &'static FileOps = &Vtable::<T>::FOPS;
    // SAFETY: `NAME` and the fops are 'static; the file takes the reference
    // in `private_data`, given back by `obj_release`, which the fops of `T`
    // (built here) treat as an `Arc<T>`.
    let fd = unsafe { raw::anon_inode_getfd(T::NAME.as_char_ptr(), &fops.0, p as *mut _, flags) };
    if fd < 0 {
        // SAFETY: no file was made, so the reference is still ours.
        drop(unsafe { Arc::from_raw(p) });
        return Err(Error::from_errno(fd));
    }
    Ok(fd)
}

/// # Safety
/// Called by the kernel as a file operation of a file made by `new_fd::<T>`.
unsafe extern "C" fn obj_ioctl<T: FileObject>(file: *mut bindings::file, cmd: u32, arg: usize) -> isize {
    // SAFETY: `private_data` holds the reference `new_fd` gave the file; it
    // lives until `obj_release`, after every ioctl returned.
    let this: Arc<T> = unsafe { ArcBorrow::from_raw((*file).private_data as *const T) }.into();
    T::ioctl(&this, cmd, arg)
}

/// # Safety
/// As for `obj_ioctl`; `vma` is the VMA the call is for.
unsafe extern "C" fn obj_mmap<T: FileObject>(file: *mut bindings::file, vma: *mut bindings::vm_area_struct) -> i32 {
    // SAFETY: as in `obj_ioctl`; the mapping holds a reference to the file,
    // so what `T::mmap` maps outlives it.
    let this = unsafe { ArcBorrow::<T>::from_raw((*file).private_data as *const T) };
    match T::mmap(&this, &Vma(vma)) {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

/// # Safety
/// As for `obj_ioctl`.
unsafe extern "C" fn obj_release<T: FileObject>(_inode: *mut bindings::inode, file: *mut bindings::file) -> i32 {
    // SAFETY: the reference given to the file in `new_fd`, released once.
    drop(unsafe { Arc::<T>::from_raw((*file).private_data as *const T) });
    0
}

/// The `/dev/rvmx` file: ioctls with no per-file state.
pub(crate) trait MiscFile: 'static {
    /// An ioctl; returns a value or a negative errno.
    fn ioctl(cmd: u32, arg: usize) -> isize;
}

extern "C" fn misc_ioctl<T: MiscFile>(_file: *mut bindings::file, cmd: u32, arg: usize) -> isize {
    T::ioctl(cmd, arg)
}

impl FileOps {
    /// The operations of a [`MiscFile`].
    pub(crate) const fn misc<T: MiscFile>() -> Self {
        FileOps(bindings::file_operations {
            owner: this_module(),
            unlocked_ioctl: Some(misc_ioctl::<T>),
            compat_ioctl: Some(misc_ioctl::<T>),
            // SAFETY: all other fields are optional hooks; zero means "none".
            ..unsafe { core::mem::MaybeUninit::zeroed().assume_init() }
        })
    }
}

/// A registered misc device (`/dev/<name>`); deregistered on drop.
pub(crate) struct MiscDevice(KBox<Opaque<raw::miscdevice>>);

impl MiscDevice {
    /// Registers `/dev/<name>` with a dynamic minor, the file mode `mode` and `fops`.
    pub(crate) fn register(name: &'static CStr, fops: &'static FileOps, mode: u16) -> Result<Self> {
        let dev = KBox::new(Opaque::<raw::miscdevice>::uninit(), GFP_KERNEL)?;
        let p = dev.get();
        // SAFETY: `p` points to memory we own, sized and aligned for a
        // `miscdevice`; an all-zero `miscdevice` is its documented initial
        // state, and the fields set here are the ones `misc_register` reads.
        // `name` and `fops` are 'static, so they outlive the registration.
        unsafe {
            p.write(core::mem::zeroed());
            (*p).minor = raw::MISC_DYNAMIC_MINOR as _;
            (*p).name = name.as_char_ptr();
            (*p).fops = &fops.0;
            (*p).mode = mode;
            to_result(raw::misc_register(p))?;
        }
        Ok(Self(dev))
    }
}

impl Drop for MiscDevice {
    fn drop(&mut self) {
        // SAFETY: `register` succeeded for this device (a `MiscDevice` exists
        // only then) and it is deregistered exactly once, here.
        unsafe { raw::misc_deregister(self.0.get()) };
    }
}

// SAFETY: the kernel synchronises registration and deregistration internally
// (misc_mtx); the object is only touched through those calls.
unsafe impl Send for MiscDevice {}
// SAFETY: as above; no `&self` method mutates anything.
unsafe impl Sync for MiscDevice {}
