//! The generated ABI: layouts the C header fixes, and ioctl numbers that
//! follow the kernel's _IOC encoding.
use rvmx::uapi::*;
use std::mem::size_of;

#[test]
fn struct_sizes() {
    assert_eq!(size_of::<rvmx_version>(), 8);
    assert_eq!(size_of::<rvmx_memory_region>(), 48);
    assert_eq!(size_of::<rvmx_regs>(), 18 * 8);
    assert_eq!(size_of::<rvmx_segment>(), 24);
    assert_eq!(size_of::<rvmx_sregs>(), 8 * 24 + 2 * 16 + 6 * 8 + 4 * 8);
    assert!(size_of::<rvmx_run>() <= 4096);
    assert_eq!(size_of::<rvmx_run>(), 8 + 256);
    assert_eq!(size_of::<rvmx_exit_io>(), 24);
    assert_eq!(size_of::<rvmx_exit_mmio>(), 56);
    assert_eq!(size_of::<rvmx_exit_msr>(), 24);
    assert_eq!(size_of::<rvmx_event>(), 24);
    assert_eq!(size_of::<rvmx_events>(), 3 * 24 + 32);
    assert_eq!(size_of::<rvmx_debugregs>(), 12 * 8);
    assert_eq!(size_of::<rvmx_cpuid_entry>(), 32);
    assert_eq!(size_of::<rvmx_msr_entry>(), 16);
    assert_eq!(size_of::<rvmx_msr_filter>(), 8 + 16 * 16);
    assert_eq!(size_of::<rvmx_translation>(), 32);
    // The string-I/O data area fits in the page after the record.
    assert!(size_of::<rvmx_run>() <= RVMX_RUN_DATA_OFFSET as usize);
    assert_eq!(RVMX_RUN_DATA_OFFSET + RVMX_RUN_DATA_SIZE, 4096);
    assert_eq!(size_of::<rvmx_exit_fail_entry>(), 256);
    assert_eq!(size_of::<rvmx_exit_vmx>(), 40);
}

#[test]
fn ioctl_numbers() {
    // _IOC(dir, type, nr, size) = dir << 30 | size << 16 | type << 8 | nr
    let ioc = |dir: u32, nr: u32, size: usize| (dir << 30) | ((size as u32) << 16) | (RVMX_IOC << 8) | nr;
    assert_eq!(RVMX_GET_VERSION, ioc(2, 0, size_of::<rvmx_version>()));
    assert_eq!(RVMX_CREATE_VM, ioc(0, 3, 0));
    assert_eq!(RVMX_SET_MEMORY_REGION, ioc(1, 0x10, size_of::<rvmx_memory_region>()));
    assert_eq!(RVMX_RUN, ioc(0, 0x20, 0));
    assert_eq!(RVMX_SET_SREGS, ioc(1, 0x24, size_of::<rvmx_sregs>()));
}
