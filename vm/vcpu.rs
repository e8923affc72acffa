// SPDX-License-Identifier: GPL-2.0
//! vCPUs: a VMCS, a VPID, the registers the VMCS does not hold, the
//! shared exit record (mmap), and the vCPU file descriptor.

use super::VcpuId;
use crate::dev::ioctl::{self, Arg, Entry};
use crate::kapi::{self, FileObject, GuestFpu, KernelPage, PreemptHook, SharedPage, Vma};
use crate::vmx::msr::{build_bitmap, MsrFilter, Msrs, BITMAP_SIZE};
use crate::vm::cpuid::Cpuid;
use crate::vm::memory::SlotMem;
use crate::vmx::exit::strio::Phys;
use crate::vmx::run::HostSwitch;
use crate::uapi;
use crate::vmcs::field::{Seg, VmcsAccess, *};
use crate::vmcs::{setup, Loaded, Vmcs};
use crate::vmx::caps::{ept_vpid, Basic};
use crate::vmx::exit::cr::{cr0_hw, cr0_visible, cr4_hw, cr4_visible, set_ia32e, CR4_HOST_OWNED};
use crate::vmx::caps::proc;
use crate::vmx::exit::event::{has_error_code, Events, Exception};
use crate::vmx::exit::{msr, CpuState};
use kernel::uaccess::{UserPtr, UserSlice};
use crate::vmx::exit_info::{IntrInfo, INTR_TYPE_EXTERNAL, INTR_TYPE_HW_EXCEPTION, INTR_TYPE_NMI};
use crate::x86::vector;
use crate::vmx::regs::GuestRegs;
use crate::x86::{ar, efer};
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use kernel::c_str;
use kernel::prelude::*;
use kernel::str::CStr;
use kernel::sync::{Arc, Mutex};

/// A vCPU.
#[pin_data]
pub(crate) struct Vcpu {
    pub(crate) id: VcpuId,
    pub(crate) vpid: Vpid,
    pub(crate) vmcs: Vmcs,
    /// The exit record, mapped into userland.
    pub(crate) run_page: SharedPage<uapi::rvmx_run>,
    /// An ioctl is in progress (RUN for as long as the guest runs): the
    /// others get -EBUSY at once instead of waiting.
    busy: AtomicBool,
    /// Puts host state back when the vCPU task leaves a CPU during RUN.
    #[pin]
    pub(crate) preempt: PreemptHook<HostSwitch>,
    #[pin]
    pub(crate) state: Mutex<State>,
    /// The guest's CPUID table (taken after `state` when both are).
    #[pin]
    pub(crate) cpuid: Mutex<Cpuid>,
}

/// vCPU state outside the VMCS, under the vCPU's lock (held by RUN for
/// the whole run, so nothing else touches a running vCPU).
pub(crate) struct State {
    /// Registers and the rest that the exit handlers use.
    pub(crate) cpu: CpuState,
    /// Host state as the VMCS holds it, to rewrite only what changed.
    pub(crate) host: HostState,
    /// A VMREAD or VMWRITE failed during a run: the VMCS may be
    /// inconsistent, so the vCPU is never entered again (RUN: -EIO).
    pub(crate) broken: bool,
    /// Flush L1D before the next entry (L1TF, "cond" mode): the host ran
    /// code since the last one that may have left secrets in it.
    pub(crate) l1d_flush: bool,
    /// The guest has EFER.SCE this RUN: its SYSCALL MSRs are switched.
    pub(crate) guest_sce: bool,
    /// Bytes 6 and 7 of the run record for the last exit to userland:
    /// ready_for_interrupt_injection and if_flag.
    pub(crate) user_flags: u16,
    /// The VM's MSR filter as this vCPU's bitmap has it, and its generation.
    /// The MSR bitmap (SDM Vol. 3C 25.6.9).
    pub(crate) msr_bitmap: KernelPage,
    /// Staging for string I/O between guest memory and the run record's
    /// data area (the run record is shared: never read twice).
    pub(crate) io_buf: KBox<[u8; uapi::RVMX_RUN_DATA_SIZE as usize]>,
    pub(crate) fpu: GuestFpu,
}

/// Host-state fields as last written to the vCPU's VMCS (they stay in the
/// VMCS across VMCLEAR and VMPTRLD).
pub(crate) struct HostState {
    /// HOST_CR3 and HOST_CR4.
    pub(crate) cr3: u64,
    pub(crate) cr4: u64,
    /// HOST_FS_BASE: the RUN caller's (each thread has its own).
    pub(crate) fs_base: u64,
    /// The CPU whose per-CPU host state (GDT, TSS, GS base, SYSENTER_ESP)
    /// the VMCS holds, where the guest ran last; -1 before the first entry.
    pub(crate) cpu: i32,
}

/// Builds the MSR bitmap for `filter` (with TSC offsetting on: guest TSC
/// reads need no exit).
pub(crate) fn fill_msr_bitmap(page: &mut KernelPage, filter: &MsrFilter) -> Result {
    let mut bits = KBox::new([0u8; BITMAP_SIZE], GFP_KERNEL)?;
    build_bitmap(&mut bits, filter, true);
    page.copy_from(&bits);
    Ok(())
}

/// Claim on a vCPU for one ioctl; released on drop.
pub(crate) struct Busy<'a>(&'a AtomicBool);

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

impl Vcpu {
    /// RVMX_CREATE_VCPU: a vCPU in the reset state, and its fd.
    pub(crate) fn create(id: VcpuId) -> Result<i32> {
        let caps = crate::vmx::cpu::loaded_caps()?;
        let vpid = Vpid::alloc().ok_or(ENOSPC)?;
        let vmcs = Vmcs::new(Basic(caps.basic).revision())?;
        let (filter, filter_gen) = id.vm.msr_filter();
        let mut msr_bitmap = KernelPage::new()?;
        fill_msr_bitmap(&mut msr_bitmap, &filter)?;
        let cpuid = Cpuid::new(&caps, filter, filter_gen)?;
        vmcs.with_loaded(|v| {
            setup::init(v, &caps, id.vm.eptp(), vpid.0, msr_bitmap.phys())?;
            v.write(TSC_OFFSET, id.vm.tsc_offset());
            v.write(CR4_GUEST_HOST_MASK, CR4_HOST_OWNED | cpuid.cpuid_cr4_mask_bits());
            Ok::<(), Error>(())
        })??;
        let mut cpu = CpuState::reset();
        cpu.msrs = Msrs::reset(id.id);
        // Never a real value: the first entry writes every one of them.
        let host = HostState { cr3: u64::MAX, cr4: u64::MAX, fs_base: u64::MAX, cpu: -1 };
        let state = State {
            cpu,
            msr_bitmap,
            host,
            broken: false,
            l1d_flush: true,
            guest_sce: false,
            user_flags: 0,
            io_buf: KBox::new([0; uapi::RVMX_RUN_DATA_SIZE as usize], GFP_KERNEL)?,
            fpu: GuestFpu::new()?,
        };
        let run_page = SharedPage::new()?;
        let vcpu = Arc::pin_init(
            pin_init!(Vcpu {
                id,
                vpid,
                vmcs,
                run_page,
                busy: AtomicBool::new(false),
                preempt <- PreemptHook::new(HostSwitch::new()),
                state <- kernel::new_mutex!(state),
                cpuid <- kernel::new_mutex!(cpuid),
            }),
            GFP_KERNEL,
        )?;
        kapi::new_fd(vcpu)
    }

    /// Claims the vCPU for one ioctl: -EBUSY if another is in progress (a
    /// RUN, for as long as the guest runs).
    fn claim(&self) -> Result<Busy<'_>> {
        if self.busy.swap(true, Ordering::Acquire) {
            return Err(EBUSY);
        }
        Ok(Busy(&self.busy))
    }
}

impl FileObject for Vcpu {
    const NAME: &'static CStr = c_str!("rvmx-vcpu");
    const MMAP: bool = true;


    fn ioctl(this: &Arc<Self>, cmd: u32, arg: usize) -> isize {
        match this.claim() {
            Ok(_busy) => ioctl::dispatch(VCPU_IOCTLS, this, cmd, arg),
            Err(e) => e.to_errno() as isize,
        }
    }

    fn mmap(this: &Self, vma: &Vma) -> Result {
        this.run_page.mmap(vma)
    }
}

/// VPIDs in use: bit n is VPID n; VPID 0 is the host's (SDM Vol. 3C 29.1).
static VPIDS: [AtomicU64; 1024] = [const { AtomicU64::new(0) }; 1024];

/// A VPID owned by one vCPU.
pub(crate) struct Vpid(pub(crate) u16);

impl Vpid {
    /// Drops this CPU's cached linear and combined translations tagged
    /// with this VPID (SDM Vol. 3C 29.4.3.3): single-context where the CPU
    /// has it, else all contexts.
    pub(crate) fn flush_here(&self, caps: &crate::vmx::caps::RawCaps) {
        let r = if caps.ept_vpid() & ept_vpid::INVVPID_SINGLE != 0 {
            crate::vmx::insn::invvpid_single(self.0)
        } else {
            crate::vmx::insn::invvpid_all()
        };
        if r.is_err() {
            pr_err!("INVVPID failed\n");
        }
    }
}

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

const VCPU_IOCTLS: &[Entry<Arc<Vcpu>>] = &[
    Entry { cmd: uapi::RVMX_RUN, handler: run },
    Entry { cmd: uapi::RVMX_GET_REGS, handler: get_regs },
    Entry { cmd: uapi::RVMX_SET_REGS, handler: set_regs },
    Entry { cmd: uapi::RVMX_GET_SREGS, handler: get_sregs },
    Entry { cmd: uapi::RVMX_SET_SREGS, handler: set_sregs },
    Entry { cmd: uapi::RVMX_INJECT, handler: inject },
    Entry { cmd: uapi::RVMX_GET_EVENTS, handler: get_events },
    Entry { cmd: uapi::RVMX_SET_EVENTS, handler: set_events },
    Entry { cmd: uapi::RVMX_GET_DEBUGREGS, handler: get_debugregs },
    Entry { cmd: uapi::RVMX_SET_DEBUGREGS, handler: set_debugregs },
    Entry { cmd: uapi::RVMX_GET_CAP, handler: get_cap },
    Entry { cmd: uapi::RVMX_SET_CAP, handler: set_cap },
    Entry { cmd: uapi::RVMX_TRANSLATE, handler: translate },
    Entry { cmd: uapi::RVMX_GET_XSAVE, handler: get_xsave },
    Entry { cmd: uapi::RVMX_SET_XSAVE, handler: set_xsave },
    Entry { cmd: uapi::RVMX_GET_CPUID, handler: get_cpuid },
    Entry { cmd: uapi::RVMX_SET_CPUID, handler: set_cpuid },
    Entry { cmd: uapi::RVMX_GET_MSRS, handler: get_msrs },
    Entry { cmd: uapi::RVMX_SET_MSRS, handler: set_msrs },
];

fn run(vcpu: &Arc<Vcpu>, arg: &mut Arg<'_>) -> Result<isize> {
    if arg.value() != 0 {
        return Err(EINVAL);
    }
    crate::vmx::run::run(vcpu).map(|()| 0)
}

fn get_regs(vcpu: &Arc<Vcpu>, arg: &mut Arg<'_>) -> Result<isize> {
    let st = vcpu.state.lock();
    let g = &st.cpu.regs;
    let (rsp, rip, rflags) = vcpu.vmcs.with_loaded(|v| (v.read(GUEST_RSP), v.read(GUEST_RIP), v.read(GUEST_RFLAGS)))?;
    arg.write(&uapi::rvmx_regs {
        rax: g.rax, rbx: g.rbx, rcx: g.rcx, rdx: g.rdx, rsi: g.rsi, rdi: g.rdi, rsp, rbp: g.rbp,
        r8: g.r8, r9: g.r9, r10: g.r10, r11: g.r11, r12: g.r12, r13: g.r13, r14: g.r14, r15: g.r15,
        rip, rflags,
    });
    Ok(0)
}

fn set_regs(vcpu: &Arc<Vcpu>, arg: &mut Arg<'_>) -> Result<isize> {
    let r: uapi::rvmx_regs = arg.read()?;
    let mut st = vcpu.state.lock();
    // Bad RFLAGS values are not refused here: VM entry checks them
    // (SDM Vol. 3C 27.3.1.4) and reports a VM-entry failure.
    vcpu.vmcs.with_loaded(|v| {
        v.write(GUEST_RSP, r.rsp);
        v.write(GUEST_RIP, r.rip);
        v.write(GUEST_RFLAGS, r.rflags);
    })?;
    st.cpu.regs = GuestRegs {
        rax: r.rax, rcx: r.rcx, rdx: r.rdx, rbx: r.rbx, rbp: r.rbp, rsi: r.rsi, rdi: r.rdi,
        r8: r.r8, r9: r.r9, r10: r.r10, r11: r.r11, r12: r.r12, r13: r.r13, r14: r.r14, r15: r.r15,
    };
    // New registers replace a half-done IN or INS.
    st.cpu.pending_in = None;
    st.cpu.pending_str_in = None;
    st.cpu.pending_mmio = None;
    st.cpu.pending_msr = None;
    // And a waiting exception (a single-step trap queued after the last
    // instruction, say): the new RIP is not where it happened (KVM too).
    st.cpu.events.exception = None;
    Ok(0)
}

/// `struct rvmx_sregs`'s segments, in its order, with their VMCS segment.
fn segs_mut(s: &mut uapi::rvmx_sregs) -> [(&mut uapi::rvmx_segment, Seg); 8] {
    [
        (&mut s.cs, Seg::Cs),
        (&mut s.ds, Seg::Ds),
        (&mut s.es, Seg::Es),
        (&mut s.fs, Seg::Fs),
        (&mut s.gs, Seg::Gs),
        (&mut s.ss, Seg::Ss),
        (&mut s.tr, Seg::Tr),
        (&mut s.ldtr, Seg::Ldtr),
    ]
}

fn read_seg(v: &Loaded<'_>, s: Seg) -> uapi::rvmx_segment {
    let f = s.fields();
    uapi::rvmx_segment {
        selector: v.read(f.selector),
        base: v.read(f.base),
        limit: v.read(f.limit),
        ar: v.read(f.ar),
        ..Default::default()
    }
}

/// Checks a segment from userland; VM entry would fail on reserved
/// access-rights bits (SDM Vol. 3C 25.4.1), so they are refused here.
fn check_seg(s: &uapi::rvmx_segment) -> Result {
    if s.reserved != 0 || s.reserved2 != 0 || s.ar & ar::RESERVED != 0 {
        return Err(EINVAL);
    }
    Ok(())
}

fn write_seg(v: &Loaded<'_>, seg: Seg, s: &uapi::rvmx_segment) {
    let f = seg.fields();
    v.write(f.selector, s.selector);
    v.write(f.base, s.base);
    v.write(f.limit, s.limit);
    v.write(f.ar, s.ar);
}

fn get_sregs(vcpu: &Arc<Vcpu>, arg: &mut Arg<'_>) -> Result<isize> {
    let st = vcpu.state.lock();
    let mut s = vcpu.vmcs.with_loaded(|v| {
        let mut s = uapi::rvmx_sregs::default();
        for (dst, seg) in segs_mut(&mut s) {
            *dst = read_seg(v, seg);
        }
        s.gdt = uapi::rvmx_dtable { base: v.read(GUEST_GDTR_BASE), limit: v.read(GUEST_GDTR_LIMIT), reserved: 0 };
        s.idt = uapi::rvmx_dtable { base: v.read(GUEST_IDTR_BASE), limit: v.read(GUEST_IDTR_LIMIT), reserved: 0 };
        // What the guest sees: host-owned bits come from the read shadows.
        s.cr0 = cr0_visible(v);
        s.cr4 = cr4_visible(v);
        s.cr3 = v.read(GUEST_CR3);
        s.efer = v.read(GUEST_IA32_EFER);
        s
    })?;
    s.cr2 = st.cpu.cr2;
    s.cr8 = st.cpu.cr8;
    arg.write(&s);
    Ok(0)
}

fn set_sregs(vcpu: &Arc<Vcpu>, arg: &mut Arg<'_>) -> Result<isize> {
    let mut s: uapi::rvmx_sregs = arg.read()?;
    if s.reserved != [0; 4] || s.gdt.reserved != 0 || s.idt.reserved != 0 || s.cr8 > 15 {
        return Err(EINVAL);
    }
    // Limits are 16 bits for the descriptor tables.
    if s.gdt.limit > 0xffff || s.idt.limit > 0xffff {
        return Err(EINVAL);
    }
    for (seg, _) in segs_mut(&mut s) {
        check_seg(seg)?;
    }
    let mut st = vcpu.state.lock();
    vcpu.vmcs.with_loaded(|v| {
        for (src, seg) in segs_mut(&mut s) {
            write_seg(v, seg, src);
        }
        v.write(GUEST_GDTR_BASE, s.gdt.base);
        v.write(GUEST_GDTR_LIMIT, s.gdt.limit);
        v.write(GUEST_IDTR_BASE, s.idt.base);
        v.write(GUEST_IDTR_LIMIT, s.idt.limit);
        v.write(CR0_READ_SHADOW, s.cr0);
        v.write(GUEST_CR0, cr0_hw(s.cr0));
        v.write(CR4_READ_SHADOW, s.cr4);
        v.write(GUEST_CR4, cr4_hw(s.cr4));
        v.write(GUEST_CR3, s.cr3);
        v.write(GUEST_IA32_EFER, s.efer);
        // The guest is in IA-32e mode exactly when EFER.LMA is set
        // (SDM Vol. 3C 27.3.1.1).
        set_ia32e(v, s.efer & efer::LMA != 0);
    })?;
    st.cpu.cr2 = s.cr2;
    st.cpu.cr8 = s.cr8;
    st.cpu.osxsave = s.cr4 & crate::x86::cr4::OSXSAVE != 0;
    // New modes and segments replace a half-done emulation; PAE paging
    // takes its PDPTEs from guest memory before the next entry.
    st.cpu.pending_mmio = None;
    st.cpu.pending_str_in = None;
    st.cpu.load_pdptes = true;
    // New paging state: the CPU did not see a MOV to CR3/CR0/CR4, so
    // translations cached for this VPID must go before the next entry.
    st.cpu.flush_tlb = true;
    Ok(0)
}

/// An event from userland, checked: exceptions 0..=31 but NMI (2), with an
/// error code exactly where the vector has one (VM entry refuses the rest:
/// SDM Vol. 3C 27.2.1.3), a payload only for #PF and #DB; interrupts
/// 32..=255 (0..=31 are exceptions).
fn check_event(e: &uapi::rvmx_event, kind: u32) -> Result {
    if u32::from(e.kind) != kind || e.reserved != 0 {
        return Err(EINVAL);
    }
    let ok = match kind {
        // Error codes have 16 bits on VM entry (KVM truncates; rvmx
        // refuses); a #DB payload only DR6's reporting bits.
        uapi::RVMX_EVENT_EXCEPTION => {
            e.vector < 32
                && e.vector != vector::NMI
                && (e.has_error_code != 0) == has_error_code(e.vector)
                && e.error_code >> 16 == 0
                && (e.has_payload == 0 || matches!(e.vector, vector::PF | vector::DB))
                && (e.has_payload == 0 || e.vector != vector::DB || e.payload & !crate::x86::dr::DB_PAYLOAD == 0)
        }
        uapi::RVMX_EVENT_NMI => e.vector == vector::NMI || e.vector == 0,
        _ => e.vector >= 32 && e.has_error_code == 0 && e.has_payload == 0,
    };
    if !ok || e.has_error_code > 1 || e.has_payload > 1 {
        return Err(EINVAL);
    }
    Ok(())
}

fn to_exception(e: &uapi::rvmx_event) -> Exception {
    Exception {
        vector: e.vector,
        error_code: (e.has_error_code != 0).then_some(e.error_code),
        payload: (e.has_payload != 0).then_some(e.payload),
    }
}

fn from_exception(x: &Exception) -> uapi::rvmx_event {
    uapi::rvmx_event {
        kind: uapi::RVMX_EVENT_EXCEPTION as u8,
        vector: x.vector,
        has_error_code: x.error_code.is_some().into(),
        has_payload: x.payload.is_some().into(),
        error_code: x.error_code.unwrap_or(0),
        payload: x.payload.unwrap_or(0),
        reserved: 0,
    }
}

/// RVMX_INJECT: queues one event for the next entries. A second exception
/// or interrupt while one waits: EBUSY (an NMI while one waits is one NMI,
/// as the CPU latches one).
fn inject(vcpu: &Arc<Vcpu>, arg: &mut Arg<'_>) -> Result<isize> {
    let e: uapi::rvmx_event = arg.read()?;
    let mut st = vcpu.state.lock();
    let ev = &mut st.cpu.events;
    match u32::from(e.kind) {
        k @ uapi::RVMX_EVENT_EXCEPTION => {
            check_event(&e, k)?;
            if ev.exception.is_some() {
                return Err(EBUSY);
            }
            ev.exception = Some(to_exception(&e));
        }
        k @ uapi::RVMX_EVENT_NMI => {
            check_event(&e, k)?;
            ev.nmi = true;
        }
        k @ uapi::RVMX_EVENT_INTERRUPT => {
            check_event(&e, k)?;
            if ev.interrupt.is_some() {
                return Err(EBUSY);
            }
            ev.interrupt = Some(e.vector);
        }
        _ => return Err(EINVAL),
    }
    Ok(0)
}

/// RVMX_GET_EVENTS: what waits, and the blocking state. An event already
/// in the VMCS for the next entry (a redelivery) is reported as waiting.
fn get_events(vcpu: &Arc<Vcpu>, arg: &mut Arg<'_>) -> Result<isize> {
    let st = vcpu.state.lock();
    let (pending, blocking) = vcpu.vmcs.with_loaded(|v| {
        let info = if st.cpu.injecting { IntrInfo(v.read(ENTRY_INTR_INFO)) } else { IntrInfo(0) };
        let code = if info.has_error_code() { v.read(ENTRY_EXCEPTION_ERROR_CODE) } else { 0 };
        ((info, code), v.read(GUEST_INTERRUPTIBILITY))
    })?;
    let ev = &st.cpu.events;
    let mut out = uapi::rvmx_events { interruptibility: blocking & INTERRUPTIBILITY_UAPI, ..Default::default() };
    if let Some(x) = &ev.exception {
        out.exception = from_exception(x);
    }
    if ev.nmi {
        out.nmi = uapi::rvmx_event { kind: uapi::RVMX_EVENT_NMI as u8, vector: vector::NMI, ..Default::default() };
    }
    if let Some(vec) = ev.interrupt {
        out.interrupt = uapi::rvmx_event { kind: uapi::RVMX_EVENT_INTERRUPT as u8, vector: vec, ..Default::default() };
    }
    let (info, code) = pending;
    if info.valid() {
        match info.kind() {
            INTR_TYPE_HW_EXCEPTION if out.exception.kind == 0 => {
                out.exception = from_exception(&Exception {
                    vector: info.vector(),
                    error_code: info.has_error_code().then_some(code),
                    payload: None,
                });
            }
            INTR_TYPE_NMI => out.nmi.kind = uapi::RVMX_EVENT_NMI as u8,
            INTR_TYPE_EXTERNAL if out.interrupt.kind == 0 => {
                out.interrupt = uapi::rvmx_event { kind: uapi::RVMX_EVENT_INTERRUPT as u8, vector: info.vector(), ..Default::default() };
            }
            _ => {}
        }
    }
    arg.write(&out);
    Ok(0)
}

/// Interruptibility bits userland sees and sets (STI, MOV SS, NMI).
const INTERRUPTIBILITY_UAPI: u32 = uapi::RVMX_BLOCKING_STI | uapi::RVMX_BLOCKING_MOV_SS | uapi::RVMX_BLOCKING_NMI;

/// RVMX_SET_EVENTS: replaces what waits and the blocking state (restore).
fn set_events(vcpu: &Arc<Vcpu>, arg: &mut Arg<'_>) -> Result<isize> {
    let e: uapi::rvmx_events = arg.read()?;
    if e.reserved != [0; 7] || e.interruptibility & !INTERRUPTIBILITY_UAPI != 0 {
        return Err(EINVAL);
    }
    // STI and MOV-SS blocking are never both set (SDM Vol. 3C 27.3.1.5).
    if e.interruptibility & 3 == 3 {
        return Err(EINVAL);
    }
    let checked = |ev: &uapi::rvmx_event, kind: u32| -> Result<bool> {
        if ev.kind == 0 {
            return if ev.vector == 0 && ev.has_error_code == 0 && ev.has_payload == 0 && ev.error_code == 0 && ev.payload == 0 && ev.reserved == 0 { Ok(false) } else { Err(EINVAL) };
        }
        check_event(ev, kind)?;
        Ok(true)
    };
    let exception = checked(&e.exception, uapi::RVMX_EVENT_EXCEPTION)?.then(|| to_exception(&e.exception));
    let nmi = checked(&e.nmi, uapi::RVMX_EVENT_NMI)?;
    let interrupt = checked(&e.interrupt, uapi::RVMX_EVENT_INTERRUPT)?.then_some(e.interrupt.vector);
    let mut st = vcpu.state.lock();
    vcpu.vmcs.with_loaded(|v| {
        v.write(ENTRY_INTR_INFO, 0);
        v.write(GUEST_INTERRUPTIBILITY, e.interruptibility);
    })?;
    st.cpu.injecting = false;
    st.cpu.events = Events { exception, nmi, interrupt };
    Ok(0)
}

/// IA32_DEBUGCTL bits userland may give the guest: BTF (single step on
/// branches). LBR and the rest would record into host-visible MSRs.
const DEBUGCTL_ALLOWED: u64 = 1 << 1;

fn get_debugregs(vcpu: &Arc<Vcpu>, arg: &mut Arg<'_>) -> Result<isize> {
    let st = vcpu.state.lock();
    let (dr7, debugctl) = vcpu.vmcs.with_loaded(|v| (v.read(GUEST_DR7), v.read(GUEST_IA32_DEBUGCTL)))?;
    arg.write(&uapi::rvmx_debugregs { db: st.cpu.db, dr6: st.cpu.dr6, dr7, debugctl, reserved: [0; 5] });
    Ok(0)
}

/// RVMX_SET_DEBUGREGS: DR6 and DR7 bits 63:32 are reserved (SDM Vol. 3B
/// 18.2.4; VM entry checks DR7's: 27.3.1.1), and so are DEBUGCTL bits
/// other than BTF here.
fn set_debugregs(vcpu: &Arc<Vcpu>, arg: &mut Arg<'_>) -> Result<isize> {
    let d: uapi::rvmx_debugregs = arg.read()?;
    if d.reserved != [0; 5] || d.dr6 >> 32 != 0 || d.dr7 >> 32 != 0 || d.debugctl & !DEBUGCTL_ALLOWED != 0 {
        return Err(EINVAL);
    }
    let mut st = vcpu.state.lock();
    vcpu.vmcs.with_loaded(|v| {
        v.write(GUEST_DR7, d.dr7 | crate::x86::dr::DR7_FIXED_1);
        v.write(GUEST_IA32_DEBUGCTL, d.debugctl);
    })?;
    st.cpu.db = d.db;
    st.cpu.dr6 = d.dr6 | crate::x86::dr::DR6_FIXED_1 & !(1 << 12) & !crate::x86::dr::DR6_ACTIVE_LOW | (d.dr6 & crate::x86::dr::DR6_ACTIVE_LOW);
    st.cpu.breakpoints_on = d.dr7 & 0xff != 0;
    Ok(0)
}

/// The processor-based control behind a per-vCPU capability.
fn cap_control(cap: u32) -> Result<u32> {
    Ok(match cap {
        uapi::RVMX_VCPU_CAP_HLT_EXIT => proc::HLT,
        uapi::RVMX_VCPU_CAP_MTF => proc::MTF,
        uapi::RVMX_VCPU_CAP_PAUSE_EXIT => proc::PAUSE,
        _ => return Err(EINVAL),
    })
}

/// Whether the CPU lets rvmx turn `ctl` on and off.
fn cap_supported(ctl: u32) -> Result<bool> {
    let caps = crate::vmx::cpu::loaded_caps()?;
    Ok(caps.proc().allows(ctl) && caps.proc().must_be_1 & ctl == 0)
}

fn get_cap(vcpu: &Arc<Vcpu>, arg: &mut Arg<'_>) -> Result<isize> {
    let mut c: uapi::rvmx_vcpu_cap = arg.read()?;
    let ctl = cap_control(c.cap)?;
    if !cap_supported(ctl)? {
        return Err(Error::from_errno(-(kernel::bindings::EOPNOTSUPP as i32)));
    }
    let _st = vcpu.state.lock();
    c.value = u32::from(vcpu.vmcs.with_loaded(|v| v.read(PROC_BASED_CONTROLS))? & ctl != 0);
    arg.write(&c);
    Ok(0)
}

fn set_cap(vcpu: &Arc<Vcpu>, arg: &mut Arg<'_>) -> Result<isize> {
    let c: uapi::rvmx_vcpu_cap = arg.read()?;
    let ctl = cap_control(c.cap)?;
    if c.value > 1 {
        return Err(EINVAL);
    }
    if !cap_supported(ctl)? {
        return Err(Error::from_errno(-(kernel::bindings::EOPNOTSUPP as i32)));
    }
    let _st = vcpu.state.lock();
    vcpu.vmcs.with_loaded(|v| {
        let now = v.read(PROC_BASED_CONTROLS);
        v.write(PROC_BASED_CONTROLS, if c.value != 0 { now | ctl } else { now & !ctl });
    })?;
    Ok(0)
}

/// One `struct rvmx_msr_entry` in userland: 16 bytes, index at 0, data at 8.
const MSR_ENTRY: usize = core::mem::size_of::<uapi::rvmx_msr_entry>();

/// RVMX_GET_MSRS / RVMX_SET_MSRS: each entry in turn; stops at the first
/// MSR rvmx refuses. Returns how many were done.
fn msrs(vcpu: &Arc<Vcpu>, arg: &mut Arg<'_>, set: bool) -> Result<isize> {
    let m: uapi::rvmx_msrs = arg.read()?;
    if m.reserved != 0 || m.nmsrs > uapi::RVMX_MAX_MSRS {
        return Err(EINVAL);
    }
    let caps = crate::vmx::cpu::loaded_caps()?;
    let mut guard = vcpu.state.lock();
    let st = &mut *guard;
    let cpuid = vcpu.cpuid.lock();
    let env = crate::vmx::run::env(&caps, vcpu.id.id, &cpuid);
    let cpu = &mut st.cpu;
    let mut done = 0;
    for i in 0..m.nmsrs as usize {
        let at = m.entries.checked_add((i * MSR_ENTRY) as u64).ok_or(EFAULT)?;
        let mut raw = [0u8; MSR_ENTRY];
        UserSlice::new(at as UserPtr, MSR_ENTRY).reader().read_slice(&mut raw)?;
        let index = u32::from_ne_bytes([raw[0], raw[1], raw[2], raw[3]]);
        if raw[4..8] != [0; 4] {
            return Err(EINVAL);
        }
        let ok = vcpu.vmcs.with_loaded(|v| {
            if set {
                let data = u64::from_ne_bytes([raw[8], raw[9], raw[10], raw[11], raw[12], raw[13], raw[14], raw[15]]);
                msr::set(v, cpu, &env, index, data).map(|()| None)
            } else {
                msr::get(v, cpu, &env, index).map(Some)
            }
        })?;
        match ok {
            Ok(Some(data)) => {
                UserSlice::new((at + 8) as UserPtr, 8).writer().write_slice(&data.to_ne_bytes())?;
            }
            Ok(None) => {}
            Err(()) => break,
        }
        done += 1;
    }
    if set {
        // EFER, SYSCALL MSRs and the rest are taken at the next RUN.
        let _ = cpu.msrs.take_dirty();
        if let Ok(efer) = vcpu.vmcs.with_loaded(|v| v.read(GUEST_IA32_EFER)) {
            vcpu.vmcs.with_loaded(|v| set_ia32e(v, efer & efer::LMA != 0))?;
        }
    }
    Ok(done)
}

fn get_msrs(vcpu: &Arc<Vcpu>, arg: &mut Arg<'_>) -> Result<isize> {
    msrs(vcpu, arg, false)
}

fn set_msrs(vcpu: &Arc<Vcpu>, arg: &mut Arg<'_>) -> Result<isize> {
    msrs(vcpu, arg, true)
}

fn get_cpuid(vcpu: &Arc<Vcpu>, arg: &mut Arg<'_>) -> Result<isize> {
    let cpuid = vcpu.cpuid.lock();
    crate::vm::cpuid::copy_out(arg, &cpuid.entries)
}

/// RVMX_SET_CPUID: a new table; CR4 bits it does not offer exit from now
/// on (the read shadow gets the guest's current value of each first).
fn set_cpuid(vcpu: &Arc<Vcpu>, arg: &mut Arg<'_>) -> Result<isize> {
    let caps = crate::vmx::cpu::loaded_caps()?;
    let entries = crate::vm::cpuid::copy_in(arg)?;
    let _st = vcpu.state.lock();
    let (filter, filter_gen) = {
        let c = vcpu.cpuid.lock();
        (c.msr_filter, c.filter_gen)
    };
    let new = Cpuid::from_user(entries, &caps, filter, filter_gen)?;
    vcpu.vmcs.with_loaded(|v| {
        v.write(CR4_READ_SHADOW, cr4_visible(v));
        v.write(CR4_GUEST_HOST_MASK, CR4_HOST_OWNED | new.cpuid_cr4_mask_bits());
    })?;
    *vcpu.cpuid.lock() = new;
    Ok(0)
}

/// RVMX_TRANSLATE: walks the guest's page tables (x86/paging.rs) for a
/// supervisor read, a supervisor write and a user read.
fn translate(vcpu: &Arc<Vcpu>, arg: &mut Arg<'_>) -> Result<isize> {
    use crate::x86::paging::{walk, Access, AccessKind, WalkError};
    let mut t: uapi::rvmx_translation = arg.read()?;
    if t.reserved != 0 {
        return Err(EINVAL);
    }
    // Guest memory is read through the creator's mapping (as RUN).
    if kapi::current_mm() != vcpu.id.vm.mm() {
        return Err(EIO);
    }
    let _st = vcpu.state.lock();
    let (maxphyaddr, gbpages) = {
        let c = vcpu.cpuid.lock();
        (c.maxphyaddr, c.gbpages)
    };
    let frame = vcpu.vmcs.with_loaded(|v| crate::vmx::exit::mmio::Frame::read(v, maxphyaddr, gbpages))?;
    let mut m = SlotMem(vcpu.id.vm.memory());
    let mut try_walk = |kind, user| walk(&mut Phys(&mut m), &frame.paging, t.linear_address, Access::new(kind, user));
    let read = try_walk(AccessKind::Read, false);
    let write_ok = try_walk(AccessKind::Write, false).is_ok();
    let user_ok = try_walk(AccessKind::Read, true).is_ok();
    match read {
        Ok(tr) => {
            t.physical_address = tr.gpa;
            t.page_size = tr.size.bytes();
            t.valid = 1;
            t.writeable = write_ok.into();
            t.usermode = user_ok.into();
            t.error_code = 0;
        }
        Err(WalkError::Memory) => return Err(EFAULT),
        Err(e) => {
            t.physical_address = 0;
            t.page_size = 0;
            t.valid = 0;
            t.writeable = 0;
            t.usermode = 0;
            t.error_code = match e {
                WalkError::PageFault { error_code } => error_code,
                _ => 0,
            };
        }
    }
    arg.write(&t);
    Ok(0)
}

/// The XSAVE components the guest may have: its XCR0 choices, x87 and SSE
/// always (they exist without XSAVE too).
fn guest_xfeatures(vcpu: &Vcpu) -> u64 {
    vcpu.cpuid.lock().xcr0_allowed | crate::x86::xcr0::X87 | crate::x86::xcr0::SSE
}

/// RVMX_GET_XSAVE: the guest's FPU state and XCR0.
fn get_xsave(vcpu: &Arc<Vcpu>, arg: &mut Arg<'_>) -> Result<isize> {
    let mut x: uapi::rvmx_xsave = arg.read()?;
    if x.reserved != [0; 2] {
        return Err(EINVAL);
    }
    let allowed = guest_xfeatures(vcpu);
    let mut buf = KBox::new([0u8; uapi::RVMX_XSAVE_SIZE as usize], GFP_KERNEL)?;
    let st = vcpu.state.lock();
    st.fpu.to_uabi(&mut buf, allowed, st.cpu.pkru);
    x.xcr0 = st.cpu.xcr0;
    drop(st);
    UserSlice::new(x.buffer as UserPtr, buf.len()).writer().write_slice(&buf[..])?;
    arg.write(&x);
    Ok(0)
}

/// RVMX_SET_XSAVE: replaces the guest's FPU state and XCR0 (checked as
/// XSETBV checks it).
fn set_xsave(vcpu: &Arc<Vcpu>, arg: &mut Arg<'_>) -> Result<isize> {
    let x: uapi::rvmx_xsave = arg.read()?;
    let allowed = guest_xfeatures(vcpu);
    if x.reserved != [0; 2] || !crate::vmx::exit::cr::xcr0_valid(x.xcr0, allowed) {
        return Err(EINVAL);
    }
    let mut buf = KBox::new([0u8; uapi::RVMX_XSAVE_SIZE as usize], GFP_KERNEL)?;
    UserSlice::new(x.buffer as UserPtr, buf.len()).reader().read_slice(&mut buf[..])?;
    let mut st = vcpu.state.lock();
    let mut pkru = st.cpu.pkru;
    st.fpu.from_uabi(&buf, allowed, &mut pkru)?;
    st.cpu.pkru = pkru;
    st.cpu.xcr0 = x.xcr0;
    Ok(0)
}
