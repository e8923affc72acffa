//! Runs inside the emulated host (needs /dev/rvmx): a real-mode guest
//! driven through the Rust API.
use rvmx::{uapi::rvmx_regs, Exit, GuestMemory, System, Vcpu, Vm};
use std::os::fd::AsRawFd;

/// Opens /dev/rvmx, loading the module first if needed (the emulated
/// host's initramfs has it at /modules/rvmx.ko).
fn open() -> System {
    if !std::path::Path::new("/dev/rvmx").exists() {
        let ko = std::fs::File::open("/modules/rvmx.ko").expect("/modules/rvmx.ko");
        // SAFETY: finit_module with a valid fd and an empty parameter string.
        let r = unsafe { libc::syscall(libc::SYS_finit_module, ko.as_raw_fd(), c"".as_ptr(), 0) };
        let err = std::io::Error::last_os_error();
        assert!(r == 0 || err.raw_os_error() == Some(libc::EEXIST), "insmod rvmx: {err}");
    }
    System::open().expect("open /dev/rvmx")
}

// mov $0x41, %al; out %al, $0x80; in $0x81, %al; inc %al; out %al, $0x82; hlt
const CODE: &[u8] = &[0xb0, 0x41, 0xe6, 0x80, 0xe4, 0x81, 0xfe, 0xc0, 0xe6, 0x82, 0xf4];

/// A VM with 1 MiB of memory, `code` at 0x1000 and a vCPU about to run
/// it in real mode.
fn real_mode_guest(code: &[u8]) -> (Vm, GuestMemory, Vcpu) {
    let sys = open();
    assert!(sys.caps().unwrap().max_vcpus >= 64);
    let vm = sys.create_vm().unwrap();
    let mut mem = GuestMemory::new(1 << 20).unwrap();
    mem.as_mut_slice()[0x1000..0x1000 + code.len()].copy_from_slice(code);
    vm.set_memory(0, 0, &mem).unwrap();
    let vcpu = vm.create_vcpu(0).unwrap();
    let mut s = vcpu.sregs().unwrap();
    s.cs.base = 0;
    s.cs.selector = 0;
    vcpu.set_sregs(&s).unwrap();
    vcpu.set_regs(&rvmx_regs { rip: 0x1000, rflags: 2, ..Default::default() }).unwrap();
    (vm, mem, vcpu)
}

#[test]
fn rust_client_runs_a_guest() {
    let (_vm, _mem, mut vcpu) = real_mode_guest(CODE);
    assert_eq!(vcpu.run().unwrap(), Exit::Out { port: 0x80, size: 1, data: 0x41 });
    assert_eq!(vcpu.run().unwrap(), Exit::In { port: 0x81, size: 1 });
    vcpu.set_in_data(0x63);
    assert_eq!(vcpu.run().unwrap(), Exit::Out { port: 0x82, size: 1, data: 0x64 });
    assert_eq!(vcpu.run().unwrap(), Exit::Hlt);
    assert_eq!(vcpu.regs().unwrap().rip, 0x1000 + CODE.len() as u64);
}

#[test]
fn rust_client_sees_mmio_exit() {
    // mov $0xffff, %ax; mov %ax, %ds; mov %al, (0x10); hlt: the store goes
    // to linear 0xffff0 + 0x10 = 0x100000, the first byte past the region.
    let (_vm, _mem, mut vcpu) = real_mode_guest(&[0xb8, 0xff, 0xff, 0x8e, 0xd8, 0xa2, 0x10, 0x00, 0xf4]);
    match vcpu.run().unwrap() {
        Exit::Mmio { gpa, access } => {
            assert_eq!(gpa, 0x100000);
            assert_eq!(access & rvmx::uapi::RVMX_MMIO_WRITE, rvmx::uapi::RVMX_MMIO_WRITE);
        }
        other => panic!("expected an MMIO exit, got {other:?}"),
    }
}
