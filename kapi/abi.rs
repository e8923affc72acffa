// SPDX-License-Identifier: GPL-2.0
//! The ABI's structs (uapi/rvmx.h) as plain bytes, for copying to and from
//! userland and the shared exit record.

use crate::uapi;

/// Marker for ABI structs: plain integers, so every bit pattern is valid and
/// they may be copied to and from user memory as bytes.
///
/// # Safety
/// Implement only for `#[repr(C)]` structs made of integers and arrays of
/// integers (no padding the kernel could leak: explicit fields only).
pub(crate) unsafe trait Pod: Copy + Default {}

// SAFETY: each is integers only (or unions of such structs of one size),
// laid out with explicit fields: uapi/rvmx.h keeps every struct naturally
// aligned with explicit padding.
unsafe impl Pod for uapi::rvmx_version {}
// SAFETY: as above.
unsafe impl Pod for uapi::rvmx_caps {}
// SAFETY: as above.
unsafe impl Pod for uapi::rvmx_cpu_status {}
// SAFETY: as above.
unsafe impl Pod for uapi::rvmx_memory_region {}
// SAFETY: as above.
unsafe impl Pod for uapi::rvmx_regs {}
// SAFETY: as above (rvmx_segment and rvmx_dtable are 24 and 16 bytes).
unsafe impl Pod for uapi::rvmx_sregs {}
// SAFETY: as above (rvmx_event: 4 bytes, a u32, two u64s).
unsafe impl Pod for uapi::rvmx_event {}
// SAFETY: as above (three 24-byte rvmx_event, then u32s).
unsafe impl Pod for uapi::rvmx_events {}
// SAFETY: as above.
unsafe impl Pod for uapi::rvmx_debugregs {}
// SAFETY: as above.
unsafe impl Pod for uapi::rvmx_vcpu_cap {}
// SAFETY: as above.
unsafe impl Pod for uapi::rvmx_msr_filter {}
// SAFETY: as above.
unsafe impl Pod for uapi::rvmx_msrs {}
// SAFETY: as above.
unsafe impl Pod for uapi::rvmx_msr_list {}
// SAFETY: as above.
unsafe impl Pod for uapi::rvmx_cpuid {}
// SAFETY: as above.
unsafe impl Pod for uapi::rvmx_translation {}
// SAFETY: as above.
unsafe impl Pod for uapi::rvmx_xsave {}
// SAFETY: as above; every member of the union is integers and the union
// is padded to its largest member.
unsafe impl Pod for uapi::rvmx_run {}

/// A `T` from the first `size_of::<T>()` bytes of `bytes` (`None` if
/// `bytes` is shorter).
pub(crate) fn read_pod<T: Pod>(bytes: &[u8]) -> Option<T> {
    if bytes.len() < core::mem::size_of::<T>() {
        return None;
    }
    let mut v = T::default();
    // SAFETY: `T: Pod` is plain integers (any byte pattern is valid), the
    // source holds at least `size_of::<T>()` initialised bytes, and `v` is
    // a distinct local, so the regions do not overlap.
    unsafe {
        core::ptr::copy_nonoverlapping(bytes.as_ptr(), (&mut v as *mut T).cast::<u8>(), core::mem::size_of::<T>())
    };
    Some(v)
}

/// Copies `v` into the start of `bytes`, as much as fits; returns the
/// number of bytes copied.
pub(crate) fn write_pod<T: Pod>(v: &T, bytes: &mut [u8]) -> usize {
    let n = core::mem::size_of::<T>().min(bytes.len());
    // SAFETY: `v` is a valid `T` of at least `n` bytes with no padding
    // (`Pod`), `bytes` has room for `n`, and the two do not overlap.
    unsafe { core::ptr::copy_nonoverlapping((v as *const T).cast::<u8>(), bytes.as_mut_ptr(), n) };
    n
}


/// Publishes an exit record: the first `used` bytes of the union (the
/// member the exit reason names; the rest is left as it was), rvmx's flag
/// bytes and `exit_reason`, never the bytes userland owns
/// (`immediate_exit`, `request_interrupt_window`, which rvmx only reads).
pub(crate) fn publish_exit(page: &super::SharedPage<uapi::rvmx_run>, run: &uapi::rvmx_run, used: usize, flags: u16) {
    const WORDS: usize = core::mem::size_of::<uapi::rvmx_run>() / 8;
    const _: () = assert!(
        core::mem::size_of::<uapi::rvmx_run>() % 8 == 0
            && core::mem::align_of::<uapi::rvmx_run>() >= 8
            && core::mem::offset_of!(uapi::rvmx_run, __bindgen_anon_1) == 8
    );
    // SAFETY: `rvmx_run` is plain integers (`Pod`), a whole number of
    // 8-byte words and 8-byte aligned (checked above), so it reads as
    // words.
    let words = unsafe { &*(run as *const uapi::rvmx_run).cast::<[u64; WORDS]>() };
    let end = (1 + used.div_ceil(8)).min(WORDS);
    let mut i = 1; // word 0: exit_reason (below) and the bytes userland owns
    while i < end {
        page.write_u64(i * 8, words[i]);
        i += 1;
    }
    // ready_for_interrupt_injection and if_flag (bytes 6, 7: rvmx's).
    const _: () = assert!(core::mem::offset_of!(uapi::rvmx_run, ready_for_interrupt_injection) == 6);
    const _: () = assert!(core::mem::offset_of!(uapi::rvmx_run, if_flag) == 7);
    page.write_u16(6, flags);
    page.write_u32(core::mem::offset_of!(uapi::rvmx_run, exit_reason), run.exit_reason);
}
