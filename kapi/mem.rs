// SPDX-License-Identifier: GPL-2.0
//! Memory: kernel pages (VMXON regions, VMCSs, EPT tables), user pages
//! pinned for the guest, and the page shared with userland by mmap.

use super::abi::Pod;
use super::raw;
use super::Vma;
use core::marker::PhantomData;
use kernel::page::PAGE_SIZE;
use kernel::error::to_result;
use kernel::prelude::*;

/// One zeroed 4-KiB page of kernel memory (direct map), freed on drop.
pub(crate) struct KernelPage {
    virt: usize,
    phys: u64,
}

impl KernelPage {
    /// Allocates a zeroed page.
    pub(crate) fn new() -> Result<Self> {
        // SAFETY: plain allocation; a zero return means failure.
        let virt = unsafe { raw::get_zeroed_page_noprof(kernel::bindings::GFP_KERNEL) } as usize;
        if virt == 0 {
            return Err(ENOMEM);
        }
        // SAFETY: `virt` is a live direct-map page we own.
        let phys = unsafe { raw::slow_virt_to_phys(virt as *mut core::ffi::c_void) };
        Ok(Self { virt, phys })
    }

    /// The page's kernel virtual address.
    pub(crate) fn as_ptr(&self) -> *mut u8 {
        self.virt as *mut u8
    }

    /// The page's physical address.
    pub(crate) fn phys(&self) -> u64 {
        self.phys
    }

    /// Overwrites the whole page (an MSR bitmap the CPU reads only while a
    /// guest of its vCPU runs: never during this call).
    pub(crate) fn copy_from(&mut self, src: &[u8; 4096]) {
        // SAFETY: the page is 4 KiB and ours; `&mut self` means no other
        // Rust reference to it exists.
        unsafe { core::ptr::copy_nonoverlapping(src.as_ptr(), self.as_ptr(), 4096) };
    }

    /// Writes the page's first 32 bits (a VMCS or VMXON revision id).
    pub(crate) fn set_first_u32(&mut self, v: u32) {
        // SAFETY: the page is 4 KiB, page-aligned and ours; `&mut self` means
        // no other Rust reference to it exists.
        unsafe { self.as_ptr().cast::<u32>().write(v) };
    }
}

impl Drop for KernelPage {
    fn drop(&mut self) {
        // SAFETY: `virt` came from `get_zeroed_page` (order 0) and is freed once.
        unsafe { raw::free_pages(self.virt as _, 0) };
    }
}

// SAFETY: the page is plain memory owned by this object.
unsafe impl Send for KernelPage {}
// SAFETY: `&KernelPage` gives only the addresses; writes to the page's
// memory through it are the owners' business (`SharedPage` writes whole
// plain-data values with volatile stores; the CPU owns VMCS/VMXON pages).
unsafe impl Sync for KernelPage {}

/// A page holding one `T`, shared with userland through `mmap`: userland
/// may write it at any time, so it is read and written field by field,
/// with volatile accesses, never through a Rust reference.
pub(crate) struct SharedPage<T: Pod> {
    page: KernelPage,
    _t: PhantomData<T>,
}

impl<T: Pod> SharedPage<T> {
    const FITS: () = assert!(core::mem::size_of::<T>() <= 4096);

    /// A zeroed page.
    pub(crate) fn new() -> Result<Self> {
        let () = Self::FITS;
        Ok(Self { page: KernelPage::new()?, _t: PhantomData })
    }

    /// The byte at `offset` in the `T`, whatever userland wrote.
    pub(crate) fn read_u8(&self, offset: usize) -> Option<u8> {
        if offset >= core::mem::size_of::<T>() {
            return None;
        }
        // SAFETY: in bounds of the `T` in our page (checked); any byte
        // value is valid.
        Some(unsafe { self.page.as_ptr().add(offset).read_volatile() })
    }

    /// Stores an aligned 32-bit value at `offset` in the `T` (userland's
    /// fields around it untouched); `false` if out of bounds or misaligned.
    pub(crate) fn write_u32(&self, offset: usize, v: u32) -> bool {
        if offset % 4 != 0 || offset + 4 > core::mem::size_of::<T>() {
            return false;
        }
        // SAFETY: in bounds and aligned (checked) in our page.
        unsafe { self.page.as_ptr().add(offset).cast::<u32>().write_volatile(v) };
        true
    }

    /// Stores an aligned 16-bit value at `offset` in the `T`.
    pub(crate) fn write_u16(&self, offset: usize, v: u16) -> bool {
        if offset % 2 != 0 || offset + 2 > core::mem::size_of::<T>() {
            return false;
        }
        // SAFETY: in bounds and aligned (checked) in our page.
        unsafe { self.page.as_ptr().add(offset).cast::<u16>().write_volatile(v) };
        true
    }

    /// Copies `src` to `offset` in the page (beyond the `T`: the data
    /// area of string I/O), byte by byte; false if it does not fit.
    pub(crate) fn write_bytes(&self, offset: usize, src: &[u8]) -> bool {
        if offset > PAGE_SIZE || src.len() > PAGE_SIZE - offset {
            return false;
        }
        for (i, b) in src.iter().enumerate() {
            // SAFETY: in the page (checked above).
            unsafe { self.page.as_ptr().add(offset + i).write_volatile(*b) };
        }
        true
    }

    /// Copies from `offset` in the page to `dst`; false if out of it.
    pub(crate) fn read_bytes(&self, offset: usize, dst: &mut [u8]) -> bool {
        if offset > PAGE_SIZE || dst.len() > PAGE_SIZE - offset {
            return false;
        }
        for (i, b) in dst.iter_mut().enumerate() {
            // SAFETY: in the page (checked above); any byte is valid.
            *b = unsafe { self.page.as_ptr().add(offset + i).read_volatile() };
        }
        true
    }

    /// Stores an aligned 64-bit value at `offset` in the `T`.
    pub(crate) fn write_u64(&self, offset: usize, v: u64) -> bool {
        if offset % 8 != 0 || offset + 8 > core::mem::size_of::<T>() {
            return false;
        }
        // SAFETY: in bounds and aligned (checked) in our page.
        unsafe { self.page.as_ptr().add(offset).cast::<u64>().write_volatile(v) };
        true
    }

    /// The aligned 64-bit value at `offset` in the `T`.
    pub(crate) fn read_u64(&self, offset: usize) -> Option<u64> {
        if offset % 8 != 0 || offset + 8 > core::mem::size_of::<T>() {
            return None;
        }
        // SAFETY: in bounds and 8-byte aligned (checked; the page is
        // page-aligned); any value is valid.
        Some(unsafe { self.page.as_ptr().add(offset).cast::<u64>().read_volatile() })
    }

    /// Maps the page at the start of `vma`, which must be exactly one page
    /// at offset 0. The VMA holds a reference to the file, and the file to
    /// the object owning this page, so the page outlives the mapping.
    pub(crate) fn mmap(&self, vma: &Vma) -> Result {
        // SAFETY: `vma` is valid for the duration of the mmap call (the
        // `Vma` borrow); `vm_start`/`vm_end` sit in a union with an RCU head
        // that is unused while the VMA is live.
        let (start, end, pgoff, prot) = unsafe {
            let v = vma.0;
            let range = (*v).__bindgen_anon_1.__bindgen_anon_1;
            (range.vm_start, range.vm_end, (*v).vm_pgoff, (*v).vm_page_prot)
        };
        if end.wrapping_sub(start) != 4096 || pgoff != 0 {
            return Err(EINVAL);
        }
        // Shared mappings only: a private one would give the caller a copy
        // on its first write, and rvmx would never see what it wrote (an
        // IN's data, say).
        // SAFETY: as above; `vm_flags` is read-only to us here.
        let flags = unsafe { (*vma.0).__bindgen_anon_2.vm_flags };
        if flags & kernel::bindings::VM_SHARED as usize == 0 {
            return Err(EINVAL);
        }
        // SAFETY: maps one page of ours into the caller's VMA, as
        // remap_pfn_range is meant to be used from an mmap handler.
        to_result(unsafe { raw::remap_pfn_range(vma.0, start, (self.page.phys() >> 12) as _, 4096, prot) })
    }
}

/// A user page pinned long-term (FOLL_LONGTERM): it stays in memory, at
/// the same physical address, until dropped.
pub(crate) struct PinnedPage {
    page: *mut kernel::bindings::page,
    phys: u64,
}

// SAFETY: a pinned page may be released from any thread.
unsafe impl Send for PinnedPage {}
// SAFETY: shared references only read `phys`.
unsafe impl Sync for PinnedPage {}

/// How many pages one `PinnedPage::pin` call pins at most.
pub(crate) const PIN_BATCH: usize = 16;

impl PinnedPage {
    /// Pins up to `n` (<= PIN_BATCH) pages of the current process from
    /// `uaddr` (page-aligned), for writing if `write` (a read-only region
    /// may be a read-only mapping), and hands each to `f` with its index.
    /// Returns how many were pinned (at least one) or an error.
    pub(crate) fn pin(uaddr: usize, n: usize, write: bool, mut f: impl FnMut(usize, PinnedPage)) -> Result<usize> {
        let mut pages = [core::ptr::null_mut::<kernel::bindings::page>(); PIN_BATCH];
        let n = n.min(PIN_BATCH);
        let flags = if write { raw::FOLL_WRITE | raw::FOLL_LONGTERM } else { raw::FOLL_LONGTERM };
        // SAFETY: `pages` has room for `n` pointers; the call checks that the
        // range is user memory of the current process and may sleep (we are
        // in process context).
        let got = unsafe { raw::pin_user_pages_fast(uaddr as _, n as i32, flags as _, pages.as_mut_ptr()) };
        if got <= 0 {
            return Err(if got < 0 { Error::from_errno(got) } else { EFAULT });
        }
        for (i, &page) in pages.iter().enumerate().take(got as usize) {
            // SAFETY: `page` was just pinned, so it is a live page; the
            // temporary mapping gives its direct-map address.
            let phys = unsafe {
                let va = kernel::bindings::kmap_local_page(page);
                let pa = raw::slow_virt_to_phys(va);
                kernel::bindings::kunmap_local(va);
                pa
            };
            f(i, PinnedPage { page, phys });
        }
        Ok(got as usize)
    }

    /// The page's physical address.
    pub(crate) fn phys(&self) -> u64 {
        self.phys
    }
}

impl Drop for PinnedPage {
    fn drop(&mut self) {
        // SAFETY: pinned by `pin` (one reference per page), unpinned once.
        unsafe { raw::unpin_user_page(self.page) };
    }
}
