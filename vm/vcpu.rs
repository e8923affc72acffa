// SPDX-License-Identifier: GPL-2.0
//! vCPUs: a VMCS, a VPID, the registers the VMCS does not hold, the
//! shared exit record (mmap), and the vCPU file descriptor.

use super::VcpuId;
use crate::dev::ioctl::{self, Arg, Entry};
use crate::kapi::{self, FileOps, GuestFpu, KernelPage};
use crate::uapi;
use crate::vmcs::field::*;
use crate::vmcs::setup::{self, CR0_HOST_OWNED, CR4_HOST_OWNED};
use crate::vmcs::{Loaded, Vmcs};
use crate::vmx::caps::{entry, ept_vpid, Basic};
use core::sync::atomic::{AtomicU64, Ordering};
use kernel::bindings;
use kernel::c_str;
use kernel::prelude::*;
use kernel::sync::{Arc, ArcBorrow, Mutex};

/// A vCPU.
#[pin_data]
pub(crate) struct Vcpu {
    pub(crate) id: VcpuId,
    pub(crate) vpid: Vpid,
    pub(crate) vmcs: Vmcs,
    /// The `struct rvmx_run` page, mapped into userland.
    run_page: KernelPage,
    #[pin]
    pub(crate) state: Mutex<State>,
}

/// vCPU state outside the VMCS, under the vCPU's lock (held by RUN for
/// the whole run, so nothing else touches a running vCPU).
pub(crate) struct State {
    /// RAX, RCX, RDX, RBX, (RSP: in the VMCS), RBP, RSI, RDI, R8..R15.
    pub(crate) gprs: [u64; 16],
    pub(crate) cr2: u64,
    pub(crate) cr8: u64,
    pub(crate) kernel_gs_base: u64,
    /// An IN waiting for userland's data: (size, instruction length).
    pub(crate) pending_in: Option<(u8, u64)>,
    pub(crate) fpu: GuestFpu,
}

impl Vcpu {
    /// RVMX_CREATE_VCPU: a vCPU in the reset state, and its fd.
    pub(crate) fn create(id: VcpuId) -> Result<i32> {
        let caps = crate::vmx::cpu::loaded_caps()?;
        let vpid = Vpid::alloc().ok_or(ENOSPC)?;
        let vmcs = Vmcs::new(Basic(caps.basic).revision())?;
        vmcs.with_loaded(|v| setup::init(v, &caps, id.vm.eptp(), vpid.0))?;
        let state = State { gprs: [0; 16], cr2: 0, cr8: 0, kernel_gs_base: 0, pending_in: None, fpu: GuestFpu::new()? };
        let run_page = KernelPage::new()?;
        let vcpu = Arc::pin_init(
            pin_init!(Vcpu { id, vpid, vmcs, run_page, state <- kernel::new_mutex!(state) }),
            GFP_KERNEL,
        )?;
        kapi::anon_fd(c_str!("rvmx-vcpu"), &VCPU_FOPS, vcpu)
    }

    /// The exit record shared with userland. Userland may write it at any
    /// time, so it is only read and written as a whole, with volatile
    /// accesses.
    pub(crate) fn run_page(&self) -> *mut uapi::rvmx_run {
        self.run_page.as_ptr().cast()
    }
}

/// VPIDs in use: bit n is VPID n; VPID 0 is the host's (SDM Vol. 3C 29.1).
static VPIDS: [AtomicU64; 1024] = [const { AtomicU64::new(0) }; 1024];

/// A VPID owned by one vCPU.
pub(crate) struct Vpid(pub(crate) u16);

impl Vpid {
    fn alloc() -> Option<Self> {
        for (w, word) in VPIDS.iter().enumerate() {
            let mut cur = word.load(Ordering::Relaxed);
            loop {
                // Skip VPID 0.
                let free = !cur & if w == 0 { !1 } else { !0 };
                if free == 0 {
                    break;
                }
                let bit = free.trailing_zeros();
                match word.compare_exchange(cur, cur | (1 << bit), Ordering::AcqRel, Ordering::Relaxed) {
                    Ok(_) => return Some(Vpid((w * 64) as u16 + bit as u16)),
                    Err(now) => cur = now,
                }
            }
        }
        None
    }
}

impl Drop for Vpid {
    fn drop(&mut self) {
        // Drop this VPID's cached linear translations on every CPU before
        // another vCPU can get it (SDM Vol. 3C 29.4.3.3).
        let single = crate::vmx::cpu::loaded_caps().map(|c| c.ept_vpid() & ept_vpid::INVVPID_SINGLE != 0).unwrap_or(false);
        let mut arg = (self.0, single);
        kapi::on_each_cpu(&mut arg, |(vpid, single)| {
            let r = if *single { crate::vmx::insn::invvpid_single(*vpid) } else { crate::vmx::insn::invvpid_all() };
            if r.is_err() {
                pr_err!("INVVPID failed\n");
            }
        });
        VPIDS[usize::from(self.0) / 64].fetch_and(!(1 << (self.0 % 64)), Ordering::AcqRel);
    }
}

static VCPU_FOPS: FileOps = FileOps(bindings::file_operations {
    owner: crate::this_module!(),
    unlocked_ioctl: Some(vcpu_ioctl),
    compat_ioctl: Some(vcpu_ioctl),
    mmap: Some(vcpu_mmap),
    release: Some(vcpu_release),
    // SAFETY: all other fields are optional hooks; zero means "none".
    ..unsafe { core::mem::MaybeUninit::zeroed().assume_init() }
});

const VCPU_IOCTLS: &[Entry<Arc<Vcpu>>] = &[
    Entry { cmd: uapi::RVMX_RUN, handler: run },
    Entry { cmd: uapi::RVMX_GET_REGS, handler: get_regs },
    Entry { cmd: uapi::RVMX_SET_REGS, handler: set_regs },
    Entry { cmd: uapi::RVMX_GET_SREGS, handler: get_sregs },
    Entry { cmd: uapi::RVMX_SET_SREGS, handler: set_sregs },
];

fn run(vcpu: &Arc<Vcpu>, arg: &mut Arg) -> Result<isize> {
    if arg.value() != 0 {
        return Err(EINVAL);
    }
    crate::vmx::run::run(vcpu).map(|()| 0)
}

// GPR indices in `State::gprs` (x86 register encoding).
const RAX: usize = 0;
const RCX: usize = 1;
const RDX: usize = 2;
const RBX: usize = 3;
const RBP: usize = 5;
const RSI: usize = 6;
const RDI: usize = 7;

fn get_regs(vcpu: &Arc<Vcpu>, arg: &mut Arg) -> Result<isize> {
    let st = vcpu.state.lock();
    let g = &st.gprs;
    let (rsp, rip, rflags) = vcpu.vmcs.with_loaded(|v| Ok((v.read(GUEST_RSP)?, v.read(GUEST_RIP)?, v.read(GUEST_RFLAGS)?)))?;
    arg.write(&uapi::rvmx_regs {
        rax: g[RAX], rbx: g[RBX], rcx: g[RCX], rdx: g[RDX], rsi: g[RSI], rdi: g[RDI], rsp, rbp: g[RBP],
        r8: g[8], r9: g[9], r10: g[10], r11: g[11], r12: g[12], r13: g[13], r14: g[14], r15: g[15],
        rip, rflags,
    });
    Ok(0)
}

fn set_regs(vcpu: &Arc<Vcpu>, arg: &mut Arg) -> Result<isize> {
    let r: uapi::rvmx_regs = arg.read()?;
    let mut st = vcpu.state.lock();
    // Bad RFLAGS values are not refused here: VM entry checks them
    // (SDM Vol. 3C 27.3.1.4) and reports a VM-entry failure.
    vcpu.vmcs.with_loaded(|v| {
        v.write(GUEST_RSP, r.rsp)?;
        v.write(GUEST_RIP, r.rip)?;
        v.write(GUEST_RFLAGS, r.rflags)
    })?;
    st.gprs = [r.rax, r.rcx, r.rdx, r.rbx, 0, r.rbp, r.rsi, r.rdi, r.r8, r.r9, r.r10, r.r11, r.r12, r.r13, r.r14, r.r15];
    // New registers replace a half-done IN.
    st.pending_in = None;
    Ok(0)
}

/// VMCS fields of one segment register: selector, base, limit, rights.
type SegFields = (Field, Field, Field, Field);

/// The order of `struct rvmx_sregs`: cs, ds, es, fs, gs, ss, tr, ldtr.
const SEGS: [SegFields; 8] = [
    (GUEST_CS_SELECTOR, GUEST_CS_BASE, GUEST_CS_LIMIT, GUEST_CS_AR),
    (GUEST_DS_SELECTOR, GUEST_DS_BASE, GUEST_DS_LIMIT, GUEST_DS_AR),
    (GUEST_ES_SELECTOR, GUEST_ES_BASE, GUEST_ES_LIMIT, GUEST_ES_AR),
    (GUEST_FS_SELECTOR, GUEST_FS_BASE, GUEST_FS_LIMIT, GUEST_FS_AR),
    (GUEST_GS_SELECTOR, GUEST_GS_BASE, GUEST_GS_LIMIT, GUEST_GS_AR),
    (GUEST_SS_SELECTOR, GUEST_SS_BASE, GUEST_SS_LIMIT, GUEST_SS_AR),
    (GUEST_TR_SELECTOR, GUEST_TR_BASE, GUEST_TR_LIMIT, GUEST_TR_AR),
    (GUEST_LDTR_SELECTOR, GUEST_LDTR_BASE, GUEST_LDTR_LIMIT, GUEST_LDTR_AR),
];

fn read_seg(v: &Loaded<'_>, f: SegFields) -> Result<uapi::rvmx_segment> {
    Ok(uapi::rvmx_segment {
        selector: v.read(f.0)? as u16,
        base: v.read(f.1)?,
        limit: v.read32(f.2)?,
        ar: v.read32(f.3)?,
        ..Default::default()
    })
}

fn write_seg(v: &Loaded<'_>, f: SegFields, s: &uapi::rvmx_segment) -> Result {
    if s.reserved != 0 || s.reserved2 != 0 {
        return Err(EINVAL);
    }
    v.write(f.0, s.selector.into())?;
    v.write(f.1, s.base)?;
    v.write(f.2, s.limit.into())?;
    // Bits 31:17 and 11:8 of the access rights are reserved (SDM Vol. 3C
    // 25.4.1); VM entry would fail on them, refuse them here instead.
    if s.ar & 0xfffe_0f00 != 0 {
        return Err(EINVAL);
    }
    v.write(f.3, s.ar.into())
}

const EFER_LMA: u64 = 1 << 10;

fn get_sregs(vcpu: &Arc<Vcpu>, arg: &mut Arg) -> Result<isize> {
    let st = vcpu.state.lock();
    let mut s = vcpu.vmcs.with_loaded(|v| {
        let mut s = uapi::rvmx_sregs::default();
        let segs = [&mut s.cs, &mut s.ds, &mut s.es, &mut s.fs, &mut s.gs, &mut s.ss, &mut s.tr, &mut s.ldtr];
        for (dst, f) in segs.into_iter().zip(SEGS) {
            *dst = read_seg(v, f)?;
        }
        s.gdt = uapi::rvmx_dtable { base: v.read(GUEST_GDTR_BASE)?, limit: v.read32(GUEST_GDTR_LIMIT)?, reserved: 0 };
        s.idt = uapi::rvmx_dtable { base: v.read(GUEST_IDTR_BASE)?, limit: v.read32(GUEST_IDTR_LIMIT)?, reserved: 0 };
        // What the guest sees: host-owned bits come from the read shadows.
        s.cr0 = (v.read(GUEST_CR0)? & !CR0_HOST_OWNED) | (v.read(CR0_READ_SHADOW)? & CR0_HOST_OWNED);
        s.cr4 = (v.read(GUEST_CR4)? & !CR4_HOST_OWNED) | (v.read(CR4_READ_SHADOW)? & CR4_HOST_OWNED);
        s.cr3 = v.read(GUEST_CR3)?;
        s.efer = v.read(GUEST_IA32_EFER)?;
        Ok(s)
    })?;
    s.cr2 = st.cr2;
    s.cr8 = st.cr8;
    arg.write(&s);
    Ok(0)
}

fn set_sregs(vcpu: &Arc<Vcpu>, arg: &mut Arg) -> Result<isize> {
    let s: uapi::rvmx_sregs = arg.read()?;
    if s.reserved != [0; 4] || s.gdt.reserved != 0 || s.idt.reserved != 0 || s.cr8 > 15 {
        return Err(EINVAL);
    }
    // Limits are 16 bits for the descriptor tables.
    if s.gdt.limit > 0xffff || s.idt.limit > 0xffff {
        return Err(EINVAL);
    }
    let mut st = vcpu.state.lock();
    vcpu.vmcs.with_loaded(|v| {
        let segs = [&s.cs, &s.ds, &s.es, &s.fs, &s.gs, &s.ss, &s.tr, &s.ldtr];
        for (src, f) in segs.into_iter().zip(SEGS) {
            write_seg(v, f, src)?;
        }
        v.write(GUEST_GDTR_BASE, s.gdt.base)?;
        v.write(GUEST_GDTR_LIMIT, s.gdt.limit.into())?;
        v.write(GUEST_IDTR_BASE, s.idt.base)?;
        v.write(GUEST_IDTR_LIMIT, s.idt.limit.into())?;
        v.write(CR0_READ_SHADOW, s.cr0)?;
        v.write(GUEST_CR0, s.cr0 | CR0_HOST_OWNED)?;
        v.write(CR4_READ_SHADOW, s.cr4)?;
        v.write(GUEST_CR4, s.cr4 | CR4_HOST_OWNED)?;
        v.write(GUEST_CR3, s.cr3)?;
        v.write(GUEST_IA32_EFER, s.efer)?;
        // The guest is in IA-32e mode exactly when EFER.LMA is set
        // (SDM Vol. 3C 27.3.1.1).
        let ctl = v.read(ENTRY_CONTROLS)?;
        let ia32e = u64::from(entry::IA32E_GUEST);
        v.write(ENTRY_CONTROLS, if s.efer & EFER_LMA != 0 { ctl | ia32e } else { ctl & !ia32e })
    })?;
    st.cr2 = s.cr2;
    st.cr8 = s.cr8;
    Ok(0)
}

/// # Safety
/// Called by the kernel as a file operation of a file this module created.
unsafe extern "C" fn vcpu_ioctl(file: *mut bindings::file, cmd: u32, arg: usize) -> isize {
    // SAFETY: `private_data` holds the reference that `Vcpu::create` gave
    // the file; it lives until `vcpu_release`, after every ioctl returned.
    let vcpu: Arc<Vcpu> = unsafe { ArcBorrow::from_raw((*file).private_data as *const Vcpu) }.into();
    ioctl::dispatch(VCPU_IOCTLS, &vcpu, cmd, arg)
}

/// # Safety
/// Called by the kernel as a file operation of a file this module created.
unsafe extern "C" fn vcpu_mmap(file: *mut bindings::file, vma: *mut bindings::vm_area_struct) -> i32 {
    // SAFETY: as in `vcpu_ioctl`; the mapping holds a reference to the file,
    // so the page outlives it.
    let vcpu = unsafe { ArcBorrow::from_raw((*file).private_data as *const Vcpu) };
    // SAFETY: `vma` is the VMA this mmap call is for.
    match unsafe { kapi::mmap_page(vma, &vcpu.run_page) } {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

/// # Safety
/// Called by the kernel as a file operation of a file this module created.
unsafe extern "C" fn vcpu_release(_inode: *mut bindings::inode, file: *mut bindings::file) -> i32 {
    // SAFETY: the reference given to the file in `Vcpu::create`, released once.
    drop(unsafe { Arc::from_raw((*file).private_data as *const Vcpu) });
    0
}
