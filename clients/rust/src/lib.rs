//! A Rust client for rvmx: open `/dev/rvmx`, create VMs, give them memory,
//! create vCPUs, set registers and run them.
//!
//! ```no_run
//! let sys = rvmx::System::open()?;
//! let vm = sys.create_vm()?;
//! let mut mem = rvmx::GuestMemory::new(1 << 20)?;
//! mem.as_mut_slice()[0x1000] = 0xf4; // hlt
//! vm.set_memory(0, 0, &mem)?;
//! let mut vcpu = vm.create_vcpu(0)?;
//! let mut s = vcpu.sregs()?;
//! s.cs.base = 0;
//! s.cs.selector = 0;
//! vcpu.set_sregs(&s)?;
//! vcpu.set_regs(&rvmx::uapi::rvmx_regs { rip: 0x1000, rflags: 2, ..Default::default() })?;
//! assert!(matches!(vcpu.run()?, rvmx::Exit::Hlt));
//! # Ok::<(), std::io::Error>(())
//! ```

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;

/// The ABI, generated from uapi/rvmx.h.
#[allow(non_camel_case_types, non_upper_case_globals, non_snake_case, dead_code, clippy::all)]
pub mod uapi {
    include!(concat!(env!("OUT_DIR"), "/uapi.rs"));
}

use uapi::*;

fn check(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// ioctl with a pointer argument.
fn ioctl_ptr<T>(fd: &impl AsRawFd, cmd: u32, arg: *mut T) -> io::Result<libc::c_int> {
    // SAFETY: `arg` points to a live `T` of the size encoded in `cmd` (the
    // generated constants and structs come from the same header).
    check(unsafe { libc::ioctl(fd.as_raw_fd(), cmd as _, arg) })
}

/// ioctl with an integer argument.
fn ioctl_val(fd: &impl AsRawFd, cmd: u32, arg: libc::c_ulong) -> io::Result<libc::c_int> {
    // SAFETY: the command takes an integer, not a pointer.
    check(unsafe { libc::ioctl(fd.as_raw_fd(), cmd as _, arg) })
}

/// `/dev/rvmx`.
pub struct System(File);

impl System {
    /// Opens `/dev/rvmx` and checks the API version.
    pub fn open() -> io::Result<System> {
        let f = OpenOptions::new().read(true).write(true).open("/dev/rvmx")?;
        let mut v = rvmx_version::default();
        ioctl_ptr(&f, RVMX_GET_VERSION, &mut v)?;
        if v.api != RVMX_API_VERSION {
            return Err(io::Error::new(io::ErrorKind::Unsupported, format!("rvmx API {} (want {})", v.api, RVMX_API_VERSION)));
        }
        Ok(System(f))
    }

    /// What the hardware and rvmx support.
    pub fn caps(&self) -> io::Result<rvmx_caps> {
        let mut c = rvmx_caps::default();
        ioctl_ptr(&self.0, RVMX_GET_CAPS, &mut c)?;
        Ok(c)
    }

    /// A new VM.
    pub fn create_vm(&self) -> io::Result<Vm> {
        let fd = ioctl_val(&self.0, RVMX_CREATE_VM, 0)?;
        // SAFETY: a new fd that nothing else owns.
        Ok(Vm(unsafe { OwnedFd::from_raw_fd(fd) }))
    }
}

/// Anonymous memory for a guest (page-aligned, zeroed), unmapped on drop.
pub struct GuestMemory {
    ptr: NonNull<u8>,
    len: usize,
}

impl GuestMemory {
    /// `len` bytes (a multiple of 4096).
    pub fn new(len: usize) -> io::Result<GuestMemory> {
        if len == 0 || len % 4096 != 0 {
            return Err(io::ErrorKind::InvalidInput.into());
        }
        // SAFETY: a fresh private anonymous mapping; checked below.
        let p = unsafe {
            libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0)
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(GuestMemory { ptr: NonNull::new(p.cast()).ok_or(io::ErrorKind::Other)?, len })
    }

    /// The memory as bytes (the guest may write it while a vCPU runs).
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: `len` bytes mapped for our lifetime.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    /// The memory as mutable bytes.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as above, and `&mut self` is exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for GuestMemory {
    fn drop(&mut self) {
        // SAFETY: our mapping, unmapped once.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

/// A VM (its fd).
pub struct Vm(OwnedFd);

impl Vm {
    /// Maps `mem` at guest-physical `gpa` in `slot`. `mem` must outlive
    /// the slot (delete it with `delete_memory` or drop the VM first).
    pub fn set_memory(&self, slot: u32, gpa: u64, mem: &GuestMemory) -> io::Result<()> {
        let mut r = rvmx_memory_region {
            slot,
            guest_phys_addr: gpa,
            memory_size: mem.len as u64,
            userspace_addr: mem.ptr.as_ptr() as u64,
            ..Default::default()
        };
        ioctl_ptr(&self.0, RVMX_SET_MEMORY_REGION, &mut r).map(drop)
    }

    /// Deletes memory slot `slot`.
    pub fn delete_memory(&self, slot: u32) -> io::Result<()> {
        let mut r = rvmx_memory_region { slot, ..Default::default() };
        ioctl_ptr(&self.0, RVMX_SET_MEMORY_REGION, &mut r).map(drop)
    }

    /// vCPU `id`.
    pub fn create_vcpu(&self, id: u32) -> io::Result<Vcpu> {
        let fd = ioctl_val(&self.0, RVMX_CREATE_VCPU, id.into())?;
        // SAFETY: a new fd that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: maps the one-page exit record of this vCPU fd.
        let p = unsafe { libc::mmap(std::ptr::null_mut(), 4096, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED, fd.as_raw_fd(), 0) };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Vcpu { fd, run: NonNull::new(p.cast()).ok_or(io::ErrorKind::Other)? })
    }
}

/// Why the guest stopped (the exit record, decoded).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Exit {
    /// OUT: the value written.
    Out { port: u16, size: u8, data: u32 },
    /// IN: answer with [`Vcpu::set_in_data`] before the next run.
    In { port: u16, size: u8 },
    /// HLT.
    Hlt,
    /// An access outside every memory region.
    Mmio { gpa: u64, access: u32 },
    /// Triple fault.
    Shutdown,
    /// VM entry failed; `account` says which field broke which rule.
    FailEntry { reason: u32, qualification: u64, vm_instruction_error: u32, account: String },
    /// An exit rvmx does not handle: the raw VMX information.
    Vmx { reason: u32, qualification: u64 },
}

/// A vCPU (its fd and its exit record).
pub struct Vcpu {
    fd: OwnedFd,
    run: NonNull<rvmx_run>,
}

impl Vcpu {
    fn record(&self) -> rvmx_run {
        // SAFETY: the mapping lives as long as `self`; read as a whole.
        unsafe { self.run.as_ptr().read_volatile() }
    }

    /// Runs until an exit for userland; `Interrupted` on a signal.
    pub fn run(&mut self) -> io::Result<Exit> {
        ioctl_val(&self.fd, RVMX_RUN, 0)?;
        let r = self.record();
        // SAFETY: the union member read is the one `exit_reason` names; all
        // members are plain integers.
        Ok(unsafe {
            match r.exit_reason {
                RVMX_EXIT_IO => {
                    let io = r.__bindgen_anon_1.io;
                    if u32::from(io.direction) == RVMX_IO_OUT {
                        Exit::Out { port: io.port, size: io.size, data: io.data as u32 }
                    } else {
                        Exit::In { port: io.port, size: io.size }
                    }
                }
                RVMX_EXIT_HLT => Exit::Hlt,
                RVMX_EXIT_MMIO => Exit::Mmio { gpa: r.__bindgen_anon_1.mmio.gpa, access: r.__bindgen_anon_1.mmio.access },
                RVMX_EXIT_SHUTDOWN => Exit::Shutdown,
                RVMX_EXIT_FAIL_ENTRY => {
                    let f = r.__bindgen_anon_1.fail_entry;
                    let bytes: Vec<u8> = f.account.iter().map(|&c| c as u8).take_while(|&c| c != 0).collect();
                    Exit::FailEntry {
                        reason: f.reason,
                        qualification: f.qualification,
                        vm_instruction_error: f.vm_instruction_error,
                        account: String::from_utf8_lossy(&bytes).into_owned(),
                    }
                }
                _ => Exit::Vmx { reason: r.__bindgen_anon_1.vmx.reason, qualification: r.__bindgen_anon_1.vmx.qualification },
            }
        })
    }

    /// The data an IN reads, for the next run.
    pub fn set_in_data(&mut self, data: u32) {
        // SAFETY: a volatile write of one field of our mapped record.
        unsafe { std::ptr::addr_of_mut!((*self.run.as_ptr()).__bindgen_anon_1.io.data).write_volatile(data.into()) };
    }

    /// General registers, RIP and RFLAGS.
    pub fn regs(&self) -> io::Result<rvmx_regs> {
        let mut r = rvmx_regs::default();
        ioctl_ptr(&self.fd, RVMX_GET_REGS, &mut r)?;
        Ok(r)
    }

    /// Sets general registers, RIP and RFLAGS.
    pub fn set_regs(&self, r: &rvmx_regs) -> io::Result<()> {
        let mut r = *r;
        ioctl_ptr(&self.fd, RVMX_SET_REGS, &mut r).map(drop)
    }

    /// Segment, descriptor-table and control registers.
    pub fn sregs(&self) -> io::Result<rvmx_sregs> {
        let mut s = rvmx_sregs::default();
        ioctl_ptr(&self.fd, RVMX_GET_SREGS, &mut s)?;
        Ok(s)
    }

    /// Sets segment, descriptor-table and control registers.
    pub fn set_sregs(&self, s: &rvmx_sregs) -> io::Result<()> {
        let mut s = *s;
        ioctl_ptr(&self.fd, RVMX_SET_SREGS, &mut s).map(drop)
    }
}

impl Drop for Vcpu {
    fn drop(&mut self) {
        // SAFETY: our one-page mapping, unmapped once.
        unsafe { libc::munmap(self.run.as_ptr().cast(), 4096) };
    }
}

// SAFETY: the fds and mappings may be used from any thread; `&mut self`
// serialises runs on one vCPU.
unsafe impl Send for Vcpu {}
// SAFETY: as above, for the memory mapping.
unsafe impl Send for GuestMemory {}
