// SPDX-License-Identifier: GPL-2.0
//! Why a VM entry failed (pure logic): the checks VM entry makes, applied
//! to copies of the VMCS fields, so that userland learns which field broke
//! which rule rather than a bare number:
//! - control fields, SDM Vol. 3C 27.2.1 (VM-instruction error 7);
//! - host state, SDM Vol. 3C 27.2.2-27.2.4 (VM-instruction error 8);
//! - guest state, SDM Vol. 3C 27.3.1 (exit reason 33, bit 31 set);
//!
//! and the VM-instruction error numbers (SDM Vol. 3C 31.4). Rules that need
//! memory (the VMCS the link pointer names, PDPTEs loaded from CR3, the
//! virtual-APIC page's VTPR) or features rvmx never uses (VM functions,
//! tertiary controls, CET, PMU, SGX state) are not checked. The snapshots
//! read a field only where the CPU has it (VMREAD of a field the CPU lacks
//! fails: SDM Vol. 3C 31.3).

use crate::vmcs::field::{Seg as SegReg, *};
use crate::vmx::caps::{cr_ok, entry, ept_vpid, exit, pin, proc, proc2, Allowed, Basic, RawCaps};
use crate::vmx::exit_info::{interruptibility, IntrInfo, INTR_TYPE_HW_EXCEPTION, INTR_TYPE_NMI};
use crate::x86::{ar, canonical, cr0, cr4, efer, rflags};

/// A segment register as the VMCS holds it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Seg {
    /// Selector.
    pub selector: u16,
    /// Base address.
    pub base: u64,
    /// Limit (bytes, or 4-KiB units as G says; the VMCS holds bytes).
    pub limit: u32,
    /// Access rights in the VMCS format (SDM Vol. 3C 25.4.1).
    pub ar: u32,
}

impl Seg {
    fn unusable(&self) -> bool {
        self.ar & ar::UNUSABLE != 0
    }
    fn kind(&self) -> u32 {
        self.ar & 0xf
    }
    fn s(&self) -> bool {
        self.ar & (1 << 4) != 0
    }
    fn dpl(&self) -> u32 {
        (self.ar >> 5) & 3
    }
    fn rpl(&self) -> u32 {
        (self.selector & 3).into()
    }
    fn present(&self) -> bool {
        self.ar & (1 << 7) != 0
    }
    fn long(&self) -> bool {
        self.ar & (1 << 13) != 0
    }
    fn db(&self) -> bool {
        self.ar & (1 << 14) != 0
    }
    fn g(&self) -> bool {
        self.ar & (1 << 15) != 0
    }
}

/// The guest state and the controls and capabilities its checks need.
#[derive(Clone, Copy, Debug, Default)]
pub struct GuestState {
    /// Guest CR0.
    pub cr0: u64,
    /// Guest CR3.
    pub cr3: u64,
    /// Guest CR4.
    pub cr4: u64,
    /// Guest DR7.
    pub dr7: u64,
    /// Guest IA32_DEBUGCTL.
    pub debugctl: u64,
    /// Guest IA32_SYSENTER_ESP.
    pub sysenter_esp: u64,
    /// Guest IA32_SYSENTER_EIP.
    pub sysenter_eip: u64,
    /// Guest IA32_PAT (read with "load IA32_PAT").
    pub pat: u64,
    /// Guest IA32_EFER (read with "load IA32_EFER").
    pub efer: u64,
    /// Guest RFLAGS.
    pub rflags: u64,
    /// Guest RIP.
    pub rip: u64,
    /// IA32_VMX_CR0_FIXED0/1.
    pub cr0_fixed: (u64, u64),
    /// IA32_VMX_CR4_FIXED0/1.
    pub cr4_fixed: (u64, u64),
    /// IA32_VMX_MISC (supported activity states).
    pub misc: u64,
    /// The CPU's physical-address width (MAXPHYADDR).
    pub maxphyaddr: u32,
    /// "Unrestricted guest" is on.
    pub unrestricted: bool,
    /// "Enable EPT" is on (the PDPTE fields are used).
    pub ept: bool,
    /// "Virtual NMIs" is on.
    pub virtual_nmi: bool,
    /// "IA-32e mode guest" entry control.
    pub ia32e: bool,
    /// "Load debug controls" entry control.
    pub load_debug: bool,
    /// "Load IA32_PAT" entry control.
    pub load_pat: bool,
    /// "Load IA32_EFER" entry control.
    pub load_efer: bool,
    /// VM-entry interruption information (the event being injected).
    pub entry_intr_info: u32,
    /// CS.
    pub cs: Seg,
    /// SS.
    pub ss: Seg,
    /// DS.
    pub ds: Seg,
    /// ES.
    pub es: Seg,
    /// FS.
    pub fs: Seg,
    /// GS.
    pub gs: Seg,
    /// TR.
    pub tr: Seg,
    /// LDTR.
    pub ldtr: Seg,
    /// GDTR (base, limit).
    pub gdtr: (u64, u32),
    /// IDTR (base, limit).
    pub idtr: (u64, u32),
    /// Activity state.
    pub activity: u32,
    /// Interruptibility state.
    pub interruptibility: u32,
    /// Pending debug exceptions.
    pub pending_dbg: u64,
    /// VMCS link pointer.
    pub link_pointer: u64,
    /// PDPTE0-3 (read with EPT).
    pub pdpte: [u64; 4],
}

/// The control fields VM entry checks (SDM Vol. 3C 27.2.1), and the guest
/// CR0 that the event-injection rules read. A field whose control is off
/// (or which the CPU lacks) is 0.
#[derive(Clone, Copy, Debug, Default)]
pub struct ControlState {
    /// Pin-based VM-execution controls.
    pub pin: u32,
    /// Primary processor-based VM-execution controls.
    pub proc: u32,
    /// Secondary processor-based VM-execution controls (0 unless
    /// "activate secondary controls").
    pub proc2: u32,
    /// VM-exit controls.
    pub exit: u32,
    /// VM-entry controls.
    pub entry: u32,
    /// CR3-target count.
    pub cr3_target_count: u32,
    /// I/O bitmap A and B addresses.
    pub io_bitmap: [u64; 2],
    /// MSR-bitmap address.
    pub msr_bitmap: u64,
    /// Virtual-APIC address.
    pub virtual_apic: u64,
    /// TPR threshold.
    pub tpr_threshold: u32,
    /// APIC-access address.
    pub apic_access: u64,
    /// Posted-interrupt notification vector.
    pub posted_intr_nv: u16,
    /// Posted-interrupt descriptor address.
    pub posted_intr_desc: u64,
    /// VPID.
    pub vpid: u16,
    /// EPT pointer.
    pub eptp: u64,
    /// PML address.
    pub pml: u64,
    /// VMREAD-bitmap and VMWRITE-bitmap addresses.
    pub vmrw_bitmap: [u64; 2],
    /// Virtualization-exception information address.
    pub ve_info: u64,
    /// VM-exit MSR-store count and address.
    pub exit_msr_store: (u32, u64),
    /// VM-exit MSR-load count and address.
    pub exit_msr_load: (u32, u64),
    /// VM-entry MSR-load count and address.
    pub entry_msr_load: (u32, u64),
    /// VM-entry interruption information.
    pub entry_intr_info: u32,
    /// VM-entry exception error code.
    pub entry_error_code: u32,
    /// VM-entry instruction length.
    pub entry_insn_len: u32,
    /// Guest CR0 (its PE bit bears on the deliver-error-code rule).
    pub guest_cr0: u64,
    /// The CPU's physical-address width (MAXPHYADDR).
    pub maxphyaddr: u32,
}

/// The host-state fields VM entry checks (SDM Vol. 3C 27.2.2-27.2.4).
#[derive(Clone, Copy, Debug, Default)]
pub struct HostState {
    /// Host CR0.
    pub cr0: u64,
    /// Host CR3.
    pub cr3: u64,
    /// Host CR4.
    pub cr4: u64,
    /// IA32_VMX_CR0_FIXED0/1.
    pub cr0_fixed: (u64, u64),
    /// IA32_VMX_CR4_FIXED0/1.
    pub cr4_fixed: (u64, u64),
    /// Host IA32_SYSENTER_ESP.
    pub sysenter_esp: u64,
    /// Host IA32_SYSENTER_EIP.
    pub sysenter_eip: u64,
    /// Host IA32_PAT (read with the "load IA32_PAT" exit control).
    pub pat: u64,
    /// Host IA32_EFER (read with the "load IA32_EFER" exit control).
    pub efer: u64,
    /// Selectors: ES, CS, SS, DS, FS, GS, TR (VMCS order).
    pub selectors: [u16; 7],
    /// FS base.
    pub fs_base: u64,
    /// GS base.
    pub gs_base: u64,
    /// TR base.
    pub tr_base: u64,
    /// GDTR base.
    pub gdtr_base: u64,
    /// IDTR base.
    pub idtr_base: u64,
    /// Host RIP.
    pub rip: u64,
}

/// The first rule found broken: the field and the rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Finding {
    /// The VMCS field (as the SDM names it).
    pub field: &'static str,
    /// The rule, with its SDM section.
    pub rule: &'static str,
}

const EFER_ALLOWED: u64 = efer::SCE | efer::LME | efer::LMA | efer::NXE;
/// IA32_DEBUGCTL bits that exist: 2:0 and 15:6 (SDM Vol. 3B 18.4.1).
const DEBUGCTL_DEFINED: u64 = 0xffc7;
/// IA32_DEBUGCTL.BTF (single-step on branches).
const DEBUGCTL_BTF: u64 = 1 << 1;
/// Pending debug exceptions: BS (bit 14), RTM (bit 16); bits 11:4, 13,
/// 15 and 63:17 are reserved (SDM Vol. 3C 25.4.2, Table 25-4).
const PENDING_BS: u64 = 1 << 14;
const PENDING_RTM: u64 = 1 << 16;
const PENDING_RESERVED: u64 = 0xff0 | (1 << 13) | (1 << 15) | !0x1_ffff;
/// Interruptibility: blocking by SMI, by NMI, enclave interruption; bits
/// 31:5 reserved (SDM Vol. 3C 25.4.2, Table 25-3).
const BLOCK_SMI: u32 = 1 << 2;
const BLOCK_NMI: u32 = 1 << 3;
const ENCLAVE_INTR: u32 = 1 << 4;
/// IA32_VMX_BASIC bit 56: hardware exceptions may be injected with or
/// without an error code, whatever the vector (SDM Vol. 3D A.1).
const BASIC_ANY_ERROR_CODE: u64 = 1 << 56;
/// IA32_VMX_MISC bit 30: software interrupts and exceptions may be
/// injected with instruction length 0 (SDM Vol. 3D A.6).
const MISC_INJECT_LEN0: u64 = 1 << 30;
/// CR3 bits 62:61 are LAM's on CPUs with LAM: not judged here.
const CR3_LAM: u64 = 3 << 61;

const PAGE_RULE: &str = "must be 4-KiB aligned and within the physical-address width (SDM Vol. 3C 27.2.1.1)";
const MSR_AREA_RULE: &str =
    "with a nonzero count: 16-byte aligned, first and last byte within the physical-address width (SDM Vol. 3C 27.2.1.2, 27.2.1.3)";

/// CR3-target values the CPU supports: IA32_VMX_MISC bits 24:16 (SDM Vol. 3D A.6).
const fn misc_cr3_targets(misc: u64) -> u32 {
    ((misc >> 16) & 0x1ff) as u32
}

/// Activity state `s` is supported: 0 always, 1-3 (HLT, shutdown,
/// wait-for-SIPI) as IA32_VMX_MISC bits 8:6 say (SDM Vol. 3D A.6).
const fn misc_activity(misc: u64, s: u32) -> bool {
    s == 0 || (s <= 3 && misc & (1 << (5 + s)) != 0)
}

/// Whether `addr` sets a bit at or above `width`.
const fn beyond(addr: u64, width: u32) -> bool {
    width < 64 && addr >> width != 0
}

/// A 4-KiB aligned address within `width`.
const fn page_ok(addr: u64, width: u32) -> bool {
    addr & 0xfff == 0 && !beyond(addr, width)
}

/// An MSR area of `count` 16-byte entries at `addr`: aligned, and its first
/// and last byte within `width` (computed without wrapping).
fn msr_area_ok((count, addr): (u32, u64), width: u32) -> bool {
    if count == 0 {
        return true;
    }
    let last = addr.checked_add(u64::from(count) * 16 - 1);
    addr & 0xf == 0 && !beyond(addr, width) && last.is_some_and(|l| !beyond(l, width))
}

/// Every control in `v` is as `a` allows: the bits it requires are 1, the
/// bits it forbids 0 (SDM Vol. 3D A.3-A.5).
const fn ctls_ok(v: u32, a: Allowed) -> bool {
    v & a.must_be_1 == a.must_be_1 && v & !a.may_be_1 == 0
}

/// Control `bit` is 1 in `v` and the CPU has it (so its fields exist).
const fn on(v: u32, bit: u32, a: Allowed) -> bool {
    v & bit != 0 && a.allows(bit)
}

/// Every byte of an IA32_PAT value is a memory type: 0 (UC), 1 (WC), 4
/// (WT), 5 (WP), 6 (WB) or 7 (UC-) (SDM Vol. 3A 13.12.2).
fn pat_ok(pat: u64) -> bool {
    pat.to_le_bytes().iter().all(|b| matches!(b, 0 | 1 | 4 | 5 | 6 | 7))
}

/// Reads `f` if `yes`, else 0.
fn read_if<V: VmcsAccess, T: Value + Default>(v: &V, yes: bool, f: Rw<T>) -> T {
    if yes {
        v.read(f)
    } else {
        T::default()
    }
}

/// The CPU's physical-address width, MAXPHYADDR: CPUID.80000008H:EAX[7:0],
/// or 36 where that leaf is missing (SDM Vol. 3A 4.1.4).
pub fn maxphyaddr(cpuid: fn(u32, u32) -> [u32; 4]) -> u32 {
    let w = if cpuid(0x8000_0000, 0)[0] >= 0x8000_0008 { cpuid(0x8000_0008, 0)[0] & 0xff } else { 36 };
    if (32..=52).contains(&w) {
        w
    } else {
        36
    }
}

/// The secondary controls as the CPU uses them: 0 unless "activate
/// secondary controls" is 1 (SDM Vol. 3C 27.2.1.1).
fn secondary<V: VmcsAccess>(v: &V, caps: &RawCaps, procv: u32) -> u32 {
    read_if(v, on(procv, proc::SECONDARY, caps.proc()), PROC_BASED_CONTROLS2)
}

/// Reads the guest state and controls that [`check`] examines from the
/// current VMCS; `maxphyaddr` as [`maxphyaddr`] finds it.
pub fn snapshot<V: VmcsAccess>(v: &V, caps: &RawCaps, maxphyaddr: u32) -> GuestState {
    let seg = |s: SegReg| {
        let f = s.fields();
        Seg { selector: v.read(f.selector), base: v.read(f.base), limit: v.read(f.limit), ar: v.read(f.ar) }
    };
    let entry_ctl = v.read(ENTRY_CONTROLS);
    let p2 = secondary(v, caps, v.read(PROC_BASED_CONTROLS));
    let ept = on(p2, proc2::EPT, caps.proc2());
    let pdpte = |f| read_if(v, ept, f);
    GuestState {
        cr0: v.read(GUEST_CR0),
        cr3: v.read(GUEST_CR3),
        cr4: v.read(GUEST_CR4),
        dr7: v.read(GUEST_DR7),
        debugctl: v.read(GUEST_IA32_DEBUGCTL),
        sysenter_esp: v.read(GUEST_SYSENTER_ESP),
        sysenter_eip: v.read(GUEST_SYSENTER_EIP),
        pat: read_if(v, on(entry_ctl, entry::LOAD_PAT, caps.entry()), GUEST_IA32_PAT),
        efer: read_if(v, on(entry_ctl, entry::LOAD_EFER, caps.entry()), GUEST_IA32_EFER),
        rflags: v.read(GUEST_RFLAGS),
        rip: v.read(GUEST_RIP),
        cr0_fixed: (caps.cr0_fixed0, caps.cr0_fixed1),
        cr4_fixed: (caps.cr4_fixed0, caps.cr4_fixed1),
        misc: caps.misc,
        maxphyaddr,
        unrestricted: p2 & proc2::UNRESTRICTED_GUEST != 0,
        ept,
        virtual_nmi: v.read(PIN_BASED_CONTROLS) & pin::VIRTUAL_NMI != 0,
        ia32e: entry_ctl & entry::IA32E_GUEST != 0,
        load_debug: entry_ctl & entry::LOAD_DEBUG != 0,
        load_pat: entry_ctl & entry::LOAD_PAT != 0,
        load_efer: entry_ctl & entry::LOAD_EFER != 0,
        entry_intr_info: v.read(ENTRY_INTR_INFO),
        cs: seg(SegReg::Cs),
        ss: seg(SegReg::Ss),
        ds: seg(SegReg::Ds),
        es: seg(SegReg::Es),
        fs: seg(SegReg::Fs),
        gs: seg(SegReg::Gs),
        tr: seg(SegReg::Tr),
        ldtr: seg(SegReg::Ldtr),
        gdtr: (v.read(GUEST_GDTR_BASE), v.read(GUEST_GDTR_LIMIT)),
        idtr: (v.read(GUEST_IDTR_BASE), v.read(GUEST_IDTR_LIMIT)),
        activity: v.read(GUEST_ACTIVITY_STATE),
        interruptibility: v.read(GUEST_INTERRUPTIBILITY),
        pending_dbg: v.read(GUEST_PENDING_DBG_EXCEPTIONS),
        link_pointer: v.read(VMCS_LINK_POINTER),
        pdpte: [pdpte(GUEST_PDPTE0), pdpte(GUEST_PDPTE1), pdpte(GUEST_PDPTE2), pdpte(GUEST_PDPTE3)],
    }
}

/// Reads the control fields that [`check_controls`] examines.
pub fn snapshot_controls<V: VmcsAccess>(v: &V, caps: &RawCaps, maxphyaddr: u32) -> ControlState {
    let (pinv, procv) = (v.read(PIN_BASED_CONTROLS), v.read(PROC_BASED_CONTROLS));
    let p2 = secondary(v, caps, procv);
    let (p, s) = (caps.proc(), caps.proc2());
    let posted = on(pinv, pin::POSTED_INTR, caps.pin());
    let shadow = on(p2, proc2::SHADOW_VMCS, s);
    let msr_area = |count: Rw<u32>, addr| {
        let n = v.read(count);
        (n, read_if(v, n != 0, addr))
    };
    ControlState {
        pin: pinv,
        proc: procv,
        proc2: p2,
        exit: v.read(EXIT_CONTROLS),
        entry: v.read(ENTRY_CONTROLS),
        cr3_target_count: v.read(CR3_TARGET_COUNT),
        io_bitmap: [
            read_if(v, procv & proc::IO_BITMAPS != 0, IO_BITMAP_A),
            read_if(v, procv & proc::IO_BITMAPS != 0, IO_BITMAP_B),
        ],
        msr_bitmap: read_if(v, on(procv, proc::MSR_BITMAP, p), MSR_BITMAP),
        virtual_apic: read_if(v, on(procv, proc::TPR_SHADOW, p), VIRTUAL_APIC_PAGE_ADDR),
        tpr_threshold: read_if(v, on(procv, proc::TPR_SHADOW, p), TPR_THRESHOLD),
        apic_access: read_if(v, on(p2, proc2::APIC_ACCESS, s), APIC_ACCESS_ADDR),
        posted_intr_nv: read_if(v, posted, POSTED_INTR_NV),
        posted_intr_desc: read_if(v, posted, POSTED_INTR_DESC_ADDR),
        vpid: read_if(v, on(p2, proc2::VPID, s), VPID),
        eptp: read_if(v, on(p2, proc2::EPT, s), EPT_POINTER),
        pml: read_if(v, on(p2, proc2::PML, s), PML_ADDRESS),
        vmrw_bitmap: [read_if(v, shadow, VMREAD_BITMAP), read_if(v, shadow, VMWRITE_BITMAP)],
        ve_info: read_if(v, on(p2, proc2::EPT_VE, s), VE_INFO_ADDR),
        exit_msr_store: msr_area(EXIT_MSR_STORE_COUNT, EXIT_MSR_STORE_ADDR),
        exit_msr_load: msr_area(EXIT_MSR_LOAD_COUNT, EXIT_MSR_LOAD_ADDR),
        entry_msr_load: msr_area(ENTRY_MSR_LOAD_COUNT, ENTRY_MSR_LOAD_ADDR),
        entry_intr_info: v.read(ENTRY_INTR_INFO),
        entry_error_code: v.read(ENTRY_EXCEPTION_ERROR_CODE),
        entry_insn_len: v.read(ENTRY_INSTRUCTION_LENGTH),
        guest_cr0: v.read(GUEST_CR0),
        maxphyaddr,
    }
}

/// Reads the host-state fields that [`check_host`] examines.
pub fn snapshot_host<V: VmcsAccess>(v: &V, caps: &RawCaps) -> HostState {
    let exit_ctl = v.read(EXIT_CONTROLS);
    HostState {
        cr0: v.read(HOST_CR0),
        cr3: v.read(HOST_CR3),
        cr4: v.read(HOST_CR4),
        cr0_fixed: (caps.cr0_fixed0, caps.cr0_fixed1),
        cr4_fixed: (caps.cr4_fixed0, caps.cr4_fixed1),
        sysenter_esp: v.read(HOST_SYSENTER_ESP),
        sysenter_eip: v.read(HOST_SYSENTER_EIP),
        pat: read_if(v, on(exit_ctl, exit::LOAD_PAT, caps.exit()), HOST_IA32_PAT),
        efer: read_if(v, on(exit_ctl, exit::LOAD_EFER, caps.exit()), HOST_IA32_EFER),
        selectors: [
            HOST_ES_SELECTOR,
            HOST_CS_SELECTOR,
            HOST_SS_SELECTOR,
            HOST_DS_SELECTOR,
            HOST_FS_SELECTOR,
            HOST_GS_SELECTOR,
            HOST_TR_SELECTOR,
        ]
        .map(|f| v.read(f)),
        fs_base: v.read(HOST_FS_BASE),
        gs_base: v.read(HOST_GS_BASE),
        tr_base: v.read(HOST_TR_BASE),
        gdtr_base: v.read(HOST_GDTR_BASE),
        idtr_base: v.read(HOST_IDTR_BASE),
        rip: v.read(HOST_RIP),
    }
}

/// Limit and granularity agree (SDM Vol. 3C 27.3.1.2): low 12 bits not all
/// ones need G = 0; any of bits 31:20 set needs G = 1.
fn limit_ok(s: &Seg) -> bool {
    !((s.limit & 0xfff != 0xfff && s.g()) || (s.limit >> 20 != 0 && !s.g()))
}

macro_rules! fail {
    ($field:expr, $rule:expr) => {
        return Some(Finding { field: $field, rule: $rule })
    };
}

/// Checks the control fields (what VM-instruction error 7 is about); `None`
/// if no rule checked here is broken.
pub fn check_controls(c: &ControlState, caps: &RawCaps) -> Option<Finding> {
    // Structures a control points to lie below 4 GiB where
    // IA32_VMX_BASIC[48] says so (SDM Vol. 3D A.1).
    let width = if Basic(caps.basic).addr_32bit() { c.maxphyaddr.min(32) } else { c.maxphyaddr };
    let p2 = if c.proc & proc::SECONDARY != 0 { c.proc2 } else { 0 };
    // VM-execution control fields (SDM Vol. 3C 27.2.1.1).
    if !ctls_ok(c.pin, caps.pin()) {
        fail!("PIN_BASED_VM_EXEC_CONTROL", "a bit IA32_VMX_(TRUE_)PINBASED_CTLS requires is 0, or one it forbids is 1 (SDM Vol. 3C 27.2.1.1)");
    }
    if !ctls_ok(c.proc, caps.proc()) {
        fail!("CPU_BASED_VM_EXEC_CONTROL", "a bit IA32_VMX_(TRUE_)PROCBASED_CTLS requires is 0, or one it forbids is 1 (SDM Vol. 3C 27.2.1.1)");
    }
    if c.proc & proc::SECONDARY != 0 && !ctls_ok(c.proc2, caps.proc2()) {
        fail!("SECONDARY_VM_EXEC_CONTROL", "a bit IA32_VMX_PROCBASED_CTLS2 requires is 0, or one it forbids is 1 (SDM Vol. 3C 27.2.1.1)");
    }
    if c.cr3_target_count > misc_cr3_targets(caps.misc) {
        fail!("CR3_TARGET_COUNT", "above the number IA32_VMX_MISC bits 24:16 allow (SDM Vol. 3C 27.2.1.1)");
    }
    if c.proc & proc::IO_BITMAPS != 0 {
        if !page_ok(c.io_bitmap[0], width) {
            fail!("IO_BITMAP_A", PAGE_RULE);
        }
        if !page_ok(c.io_bitmap[1], width) {
            fail!("IO_BITMAP_B", PAGE_RULE);
        }
    }
    if c.proc & proc::MSR_BITMAP != 0 && !page_ok(c.msr_bitmap, width) {
        fail!("MSR_BITMAP", PAGE_RULE);
    }
    if c.proc & proc::TPR_SHADOW != 0 {
        if !page_ok(c.virtual_apic, width) {
            fail!("VIRTUAL_APIC_PAGE_ADDR", PAGE_RULE);
        }
        if p2 & proc2::VINTR_DELIVERY == 0 && c.tpr_threshold >> 4 != 0 {
            fail!("TPR_THRESHOLD", "bits 31:4 must be 0 with TPR shadow and no virtual-interrupt delivery (SDM Vol. 3C 27.2.1.1)");
        }
    } else if p2 & (proc2::X2APIC | proc2::APIC_REGISTER | proc2::VINTR_DELIVERY) != 0 {
        fail!("SECONDARY_VM_EXEC_CONTROL", "virtualize x2APIC mode, APIC-register virtualization and virtual-interrupt delivery need use TPR shadow (SDM Vol. 3C 27.2.1.1)");
    }
    if c.pin & pin::NMI == 0 && c.pin & pin::VIRTUAL_NMI != 0 {
        fail!("PIN_BASED_VM_EXEC_CONTROL", "virtual NMIs (bit 5) needs NMI exiting (bit 3) (SDM Vol. 3C 27.2.1.1)");
    }
    if c.pin & pin::VIRTUAL_NMI == 0 && c.proc & proc::NMI_WINDOW != 0 {
        fail!("CPU_BASED_VM_EXEC_CONTROL", "NMI-window exiting (bit 22) needs virtual NMIs (SDM Vol. 3C 27.2.1.1)");
    }
    if p2 & proc2::APIC_ACCESS != 0 && !page_ok(c.apic_access, width) {
        fail!("APIC_ACCESS_ADDR", PAGE_RULE);
    }
    if p2 & proc2::X2APIC != 0 && p2 & proc2::APIC_ACCESS != 0 {
        fail!("SECONDARY_VM_EXEC_CONTROL", "virtualize x2APIC mode and virtualize APIC accesses cannot both be 1 (SDM Vol. 3C 27.2.1.1)");
    }
    if p2 & proc2::VINTR_DELIVERY != 0 && c.pin & pin::EXT_INTR == 0 {
        fail!("PIN_BASED_VM_EXEC_CONTROL", "virtual-interrupt delivery needs external-interrupt exiting (SDM Vol. 3C 27.2.1.1)");
    }
    if c.pin & pin::POSTED_INTR != 0 {
        if p2 & proc2::VINTR_DELIVERY == 0 {
            fail!("PIN_BASED_VM_EXEC_CONTROL", "process posted interrupts needs virtual-interrupt delivery (SDM Vol. 3C 27.2.1.1)");
        }
        if c.exit & exit::ACK_INTR == 0 {
            fail!("VM_EXIT_CONTROLS", "process posted interrupts needs acknowledge interrupt on exit (SDM Vol. 3C 27.2.1.1)");
        }
        if c.posted_intr_nv >> 8 != 0 {
            fail!("POSTED_INTR_NV", "bits 15:8 must be 0 (SDM Vol. 3C 27.2.1.1)");
        }
        if c.posted_intr_desc & 0x3f != 0 || beyond(c.posted_intr_desc, width) {
            fail!("POSTED_INTR_DESC_ADDR", "must be 64-byte aligned and within the physical-address width (SDM Vol. 3C 27.2.1.1)");
        }
    }
    if p2 & proc2::VPID != 0 && c.vpid == 0 {
        fail!("VIRTUAL_PROCESSOR_ID", "must not be 0 with enable VPID (SDM Vol. 3C 27.2.1.1)");
    }
    if p2 & proc2::EPT != 0 {
        if let Some(rule) = eptp_rule(c.eptp, caps.ept_vpid(), c.maxphyaddr) {
            fail!("EPT_POINTER", rule);
        }
    }
    if p2 & proc2::PML != 0 {
        if p2 & proc2::EPT == 0 {
            fail!("SECONDARY_VM_EXEC_CONTROL", "enable PML needs enable EPT (SDM Vol. 3C 27.2.1.1)");
        }
        if !page_ok(c.pml, width) {
            fail!("PML_ADDRESS", PAGE_RULE);
        }
    }
    if p2 & proc2::UNRESTRICTED_GUEST != 0 && p2 & proc2::EPT == 0 {
        fail!("SECONDARY_VM_EXEC_CONTROL", "unrestricted guest needs enable EPT (SDM Vol. 3C 27.2.1.1)");
    }
    if p2 & (proc2::MODE_BASED_EPT | proc2::SPP) != 0 && p2 & proc2::EPT == 0 {
        fail!("SECONDARY_VM_EXEC_CONTROL", "mode-based execute control and sub-page write permissions need enable EPT (SDM Vol. 3C 27.2.1.1)");
    }
    if p2 & proc2::SHADOW_VMCS != 0 {
        if !page_ok(c.vmrw_bitmap[0], width) {
            fail!("VMREAD_BITMAP", PAGE_RULE);
        }
        if !page_ok(c.vmrw_bitmap[1], width) {
            fail!("VMWRITE_BITMAP", PAGE_RULE);
        }
    }
    if p2 & proc2::EPT_VE != 0 && !page_ok(c.ve_info, width) {
        fail!("VE_INFORMATION_ADDRESS", PAGE_RULE);
    }
    // VM-exit control fields (SDM Vol. 3C 27.2.1.2).
    if !ctls_ok(c.exit, caps.exit()) {
        fail!("VM_EXIT_CONTROLS", "a bit IA32_VMX_(TRUE_)EXIT_CTLS requires is 0, or one it forbids is 1 (SDM Vol. 3C 27.2.1.2)");
    }
    if c.pin & pin::PREEMPTION_TIMER == 0 && c.exit & exit::SAVE_PREEMPTION_TIMER != 0 {
        fail!("VM_EXIT_CONTROLS", "save VMX-preemption timer value needs activate VMX-preemption timer (SDM Vol. 3C 27.2.1.2)");
    }
    if !msr_area_ok(c.exit_msr_store, width) {
        fail!("VM_EXIT_MSR_STORE_ADDR", MSR_AREA_RULE);
    }
    if !msr_area_ok(c.exit_msr_load, width) {
        fail!("VM_EXIT_MSR_LOAD_ADDR", MSR_AREA_RULE);
    }
    // VM-entry control fields (SDM Vol. 3C 27.2.1.3).
    if !ctls_ok(c.entry, caps.entry()) {
        fail!("VM_ENTRY_CONTROLS", "a bit IA32_VMX_(TRUE_)ENTRY_CTLS requires is 0, or one it forbids is 1 (SDM Vol. 3C 27.2.1.3)");
    }
    if let Some(f) = check_injection(c, caps, p2) {
        return Some(f);
    }
    if !msr_area_ok(c.entry_msr_load, width) {
        fail!("VM_ENTRY_MSR_LOAD_ADDR", MSR_AREA_RULE);
    }
    if c.entry & (entry::SMM | entry::DEACTIVATE_DUAL_MONITOR) != 0 {
        fail!("VM_ENTRY_CONTROLS", "entry to SMM and deactivate dual-monitor treatment must be 0 outside SMM (SDM Vol. 3C 27.2.1.3)");
    }
    // Last, as CPUs with CET allow it: EPTP bit 7.
    if p2 & proc2::EPT != 0 && c.eptp & (1 << 7) != 0 {
        fail!("EPT_POINTER", "bit 7 (supervisor shadow-stack control) is 1: allowed only on CPUs with CET (SDM Vol. 3C 27.2.1.1)");
    }
    None
}

/// What is wrong with an EPT pointer, if anything (SDM Vol. 3C 27.2.1.1;
/// capabilities in SDM Vol. 3D A.10). Bit 7 is judged by the caller.
fn eptp_rule(eptp: u64, ev: u64, maxphyaddr: u32) -> Option<&'static str> {
    let memtype_ok = match eptp & 7 {
        0 => ev & ept_vpid::MEMTYPE_UC != 0,
        6 => ev & ept_vpid::MEMTYPE_WB != 0,
        _ => false,
    };
    let walk_ok = match (eptp >> 3) & 7 {
        3 => ev & ept_vpid::WALK_4 != 0,
        4 => ev & ept_vpid::WALK_5 != 0,
        _ => false,
    };
    if !memtype_ok {
        Some("memory type (bits 2:0) must be UC (0) or WB (6), as IA32_VMX_EPT_VPID_CAP allows (SDM Vol. 3C 27.2.1.1)")
    } else if !walk_ok {
        Some("bits 5:3 (page-walk length - 1) must be 3, or 4 where IA32_VMX_EPT_VPID_CAP allows 5-level EPT (SDM Vol. 3C 27.2.1.1)")
    } else if eptp & (1 << 6) != 0 && ev & ept_vpid::AD == 0 {
        Some("bit 6 (accessed and dirty flags) needs IA32_VMX_EPT_VPID_CAP bit 21 (SDM Vol. 3C 27.2.1.1)")
    } else if eptp & 0xf00 != 0 || beyond(eptp, maxphyaddr) {
        Some("reserved bits 11:8 and bits beyond the physical-address width must be 0 (SDM Vol. 3C 27.2.1.1)")
    } else {
        None
    }
}

/// The VM-entry interruption-information rules (SDM Vol. 3C 27.2.1.3;
/// types in Vol. 3C 25.8.3, Table 25-17).
fn check_injection(c: &ControlState, caps: &RawCaps, p2: u32) -> Option<Finding> {
    const INFO: &str = "VM_ENTRY_INTR_INFO_FIELD";
    let i = IntrInfo(c.entry_intr_info);
    if !i.valid() {
        return None;
    }
    let (kind, vector) = (i.kind(), c.entry_intr_info & 0xff);
    if kind == 1 || (kind == 7 && !caps.proc().allows(proc::MTF)) {
        fail!(INFO, "type (bits 10:8) 1 is reserved, and 7 (other event) needs monitor trap flag support (SDM Vol. 3C 27.2.1.3)");
    }
    if kind == INTR_TYPE_NMI && vector != 2 {
        fail!(INFO, "an NMI (type 2) must have vector 2 (SDM Vol. 3C 27.2.1.3)");
    }
    if kind == INTR_TYPE_HW_EXCEPTION && vector > 31 {
        fail!(INFO, "a hardware exception (type 3) must have a vector of at most 31 (SDM Vol. 3C 27.2.1.3)");
    }
    if kind == 7 && vector != 0 {
        fail!(INFO, "other event (type 7) must have vector 0, a pending MTF VM exit (SDM Vol. 3C 27.2.1.3)");
    }
    if caps.basic & BASIC_ANY_ERROR_CODE == 0 {
        let real = p2 & proc2::UNRESTRICTED_GUEST != 0 && c.guest_cr0 & cr0::PE == 0;
        let wants = kind == INTR_TYPE_HW_EXCEPTION && matches!(vector, 8 | 10..=14 | 17) && !real;
        if i.has_error_code() != wants {
            fail!(INFO, "deliver error code (bit 11) must be 1 exactly for hardware exceptions 8, 10-14 and 17, and 0 with unrestricted guest and guest CR0.PE = 0 (SDM Vol. 3C 27.2.1.3)");
        }
    }
    if c.entry_intr_info & 0x7fff_f000 != 0 {
        fail!(INFO, "reserved bits 30:12 must be 0 (SDM Vol. 3C 27.2.1.3)");
    }
    if i.has_error_code() && c.entry_error_code >> 16 != 0 {
        fail!("VM_ENTRY_EXCEPTION_ERROR_CODE", "bits 31:16 must be 0 when an error code is delivered (SDM Vol. 3C 27.2.1.3)");
    }
    let len = c.entry_insn_len;
    if matches!(kind, 4..=6) && (len > 15 || (len == 0 && caps.misc & MISC_INJECT_LEN0 == 0)) {
        fail!("VM_ENTRY_INSTRUCTION_LEN", "must be 1-15 for a software interrupt or exception (types 4-6); 0 only where IA32_VMX_MISC bit 30 allows (SDM Vol. 3C 27.2.1.3)");
    }
    None
}

/// Checks the host state (what VM-instruction error 8 is about) under the
/// controls `c`; `None` if no rule checked here is broken.
pub fn check_host(h: &HostState, c: &ControlState) -> Option<Finding> {
    let host64 = c.exit & exit::HOST_64 != 0;
    // Control registers and MSRs (SDM Vol. 3C 27.2.2).
    if !cr_ok(h.cr0, h.cr0_fixed.0, h.cr0_fixed.1) {
        fail!("HOST_CR0", "breaks IA32_VMX_CR0_FIXED0/FIXED1 (SDM Vol. 3C 27.2.2)");
    }
    if !cr_ok(h.cr4, h.cr4_fixed.0, h.cr4_fixed.1) {
        fail!("HOST_CR4", "breaks IA32_VMX_CR4_FIXED0/FIXED1 (SDM Vol. 3C 27.2.2)");
    }
    if h.cr4 & cr4::CET != 0 && h.cr0 & cr0::WP == 0 {
        fail!("HOST_CR4", "CET (bit 23) needs CR0.WP (bit 16) = 1 (SDM Vol. 3C 27.2.2)");
    }
    if beyond(h.cr3 & !CR3_LAM, c.maxphyaddr) {
        fail!("HOST_CR3", "bits beyond the physical-address width must be 0 (SDM Vol. 3C 27.2.2)");
    }
    if !canonical(h.sysenter_esp) {
        fail!("HOST_IA32_SYSENTER_ESP", "not canonical (SDM Vol. 3C 27.2.2)");
    }
    if !canonical(h.sysenter_eip) {
        fail!("HOST_IA32_SYSENTER_EIP", "not canonical (SDM Vol. 3C 27.2.2)");
    }
    if c.exit & exit::LOAD_PAT != 0 && !pat_ok(h.pat) {
        fail!("HOST_IA32_PAT", "with load IA32_PAT, each byte must be 0, 1, 4, 5, 6 or 7 (SDM Vol. 3C 27.2.2)");
    }
    if c.exit & exit::LOAD_EFER != 0 {
        if h.efer & !EFER_ALLOWED != 0 {
            fail!("HOST_IA32_EFER", "reserved bits are 1 (SDM Vol. 3C 27.2.2)");
        }
        if (h.efer & efer::LMA != 0) != host64 || (h.efer & efer::LME != 0) != host64 {
            fail!("HOST_IA32_EFER", "LMA (bit 10) and LME (bit 8) must each equal host address-space size (SDM Vol. 3C 27.2.2)");
        }
    }
    // Segment and descriptor-table registers (SDM Vol. 3C 27.2.3).
    const SEL: [&str; 7] = [
        "HOST_ES_SELECTOR",
        "HOST_CS_SELECTOR",
        "HOST_SS_SELECTOR",
        "HOST_DS_SELECTOR",
        "HOST_FS_SELECTOR",
        "HOST_GS_SELECTOR",
        "HOST_TR_SELECTOR",
    ];
    for (name, sel) in SEL.into_iter().zip(h.selectors) {
        if sel & 7 != 0 {
            fail!(name, "RPL (bits 1:0) and TI (bit 2) must be 0 (SDM Vol. 3C 27.2.3)");
        }
    }
    let [_, cs, ss, _, _, _, tr] = h.selectors;
    if cs == 0 {
        fail!("HOST_CS_SELECTOR", "must not be 0000H (SDM Vol. 3C 27.2.3)");
    }
    if tr == 0 {
        fail!("HOST_TR_SELECTOR", "must not be 0000H (SDM Vol. 3C 27.2.3)");
    }
    if ss == 0 && !host64 {
        fail!("HOST_SS_SELECTOR", "may be 0000H only with host address-space size = 1 (SDM Vol. 3C 27.2.3)");
    }
    let bases = [
        ("HOST_FS_BASE", h.fs_base),
        ("HOST_GS_BASE", h.gs_base),
        ("HOST_GDTR_BASE", h.gdtr_base),
        ("HOST_IDTR_BASE", h.idtr_base),
        ("HOST_TR_BASE", h.tr_base),
    ];
    for (name, base) in bases {
        if !canonical(base) {
            fail!(name, "not canonical (SDM Vol. 3C 27.2.3)");
        }
    }
    // Address-space size (SDM Vol. 3C 27.2.4). rvmx enters from IA-32e mode
    // (64-bit Linux), so the rules for a 0 "host address-space size" never
    // come into play.
    if !host64 {
        fail!("VM_EXIT_CONTROLS", "host address-space size (bit 9) must be 1 when VM entry starts in IA-32e mode (SDM Vol. 3C 27.2.4)");
    }
    if h.cr4 & cr4::PAE == 0 {
        fail!("HOST_CR4", "PAE (bit 5) must be 1 with host address-space size = 1 (SDM Vol. 3C 27.2.4)");
    }
    if !canonical(h.rip) {
        fail!("HOST_RIP", "not canonical with host address-space size = 1 (SDM Vol. 3C 27.2.4)");
    }
    None
}

/// Checks the guest state `g` (what exit reason 33 is about); `None` if no
/// rule checked here is broken.
pub fn check(g: &GuestState) -> Option<Finding> {
    // Control registers and MSRs (SDM Vol. 3C 27.3.1.1).
    let free = if g.unrestricted { cr0::PE | cr0::PG } else { 0 };
    if g.cr0 & (g.cr0_fixed.0 & !free) != g.cr0_fixed.0 & !free {
        fail!("GUEST_CR0", "a bit that IA32_VMX_CR0_FIXED0 requires is 0 (SDM Vol. 3C 27.3.1.1)");
    }
    if g.cr0 & !g.cr0_fixed.1 != 0 {
        fail!("GUEST_CR0", "a bit that IA32_VMX_CR0_FIXED1 forbids is 1 (SDM Vol. 3C 27.3.1.1)");
    }
    if g.cr0 & cr0::PG != 0 && g.cr0 & cr0::PE == 0 {
        fail!("GUEST_CR0", "PG (bit 31) is 1 but PE (bit 0) is 0 (SDM Vol. 3C 27.3.1.1)");
    }
    if !cr_ok(g.cr4, g.cr4_fixed.0, g.cr4_fixed.1) {
        fail!("GUEST_CR4", "breaks IA32_VMX_CR4_FIXED0/FIXED1 (SDM Vol. 3C 27.3.1.1)");
    }
    if g.cr4 & cr4::CET != 0 && g.cr0 & cr0::WP == 0 {
        fail!("GUEST_CR4", "CET (bit 23) needs CR0.WP (bit 16) = 1 (SDM Vol. 3C 27.3.1.1)");
    }
    if g.load_debug && g.debugctl & !DEBUGCTL_DEFINED != 0 {
        fail!("GUEST_IA32_DEBUGCTL", "with load debug controls, reserved bits 63:16 and 5:3 must be 0 (SDM Vol. 3C 27.3.1.1)");
    }
    if g.ia32e && (g.cr0 & cr0::PG == 0 || g.cr4 & cr4::PAE == 0) {
        fail!("VM_ENTRY_CONTROLS", "IA-32e mode guest needs CR0.PG = 1 and CR4.PAE = 1 (SDM Vol. 3C 27.3.1.1)");
    }
    if !g.ia32e && g.cr4 & cr4::PCIDE != 0 {
        fail!("GUEST_CR4", "PCIDE (bit 17) is 1 outside IA-32e mode (SDM Vol. 3C 27.3.1.1)");
    }
    if beyond(g.cr3 & !CR3_LAM, g.maxphyaddr) {
        fail!("GUEST_CR3", "bits beyond the physical-address width must be 0 (SDM Vol. 3C 27.3.1.1)");
    }
    if g.load_debug && g.dr7 >> 32 != 0 {
        fail!("GUEST_DR7", "with load debug controls, bits 63:32 must be 0 (SDM Vol. 3C 27.3.1.1)");
    }
    if !canonical(g.sysenter_esp) {
        fail!("GUEST_SYSENTER_ESP", "not canonical (SDM Vol. 3C 27.3.1.1)");
    }
    if !canonical(g.sysenter_eip) {
        fail!("GUEST_SYSENTER_EIP", "not canonical (SDM Vol. 3C 27.3.1.1)");
    }
    if g.load_pat && !pat_ok(g.pat) {
        fail!("GUEST_IA32_PAT", "with load IA32_PAT, each byte must be 0, 1, 4, 5, 6 or 7 (SDM Vol. 3C 27.3.1.1)");
    }
    if g.load_efer {
        if g.efer & !EFER_ALLOWED != 0 {
            fail!("GUEST_IA32_EFER", "reserved bits are 1 (SDM Vol. 3C 27.3.1.1)");
        }
        if (g.efer & efer::LMA != 0) != g.ia32e {
            fail!("GUEST_IA32_EFER", "LMA (bit 10) differs from the IA-32e mode guest control (SDM Vol. 3C 27.3.1.1)");
        }
        if g.cr0 & cr0::PG != 0 && (g.efer & efer::LMA != 0) != (g.efer & efer::LME != 0) {
            fail!("GUEST_IA32_EFER", "with CR0.PG = 1, LMA (bit 10) must equal LME (bit 8) (SDM Vol. 3C 27.3.1.1)");
        }
    }
    // Segment registers (SDM Vol. 3C 27.3.1.2).
    if let Some(f) = check_segments(g) {
        return Some(f);
    }
    // Descriptor tables (SDM Vol. 3C 27.3.1.3).
    if !canonical(g.gdtr.0) {
        fail!("GUEST_GDTR_BASE", "not canonical (SDM Vol. 3C 27.3.1.3)");
    }
    if !canonical(g.idtr.0) {
        fail!("GUEST_IDTR_BASE", "not canonical (SDM Vol. 3C 27.3.1.3)");
    }
    if g.gdtr.1 >> 16 != 0 {
        fail!("GUEST_GDTR_LIMIT", "bits 31:16 must be 0 (SDM Vol. 3C 27.3.1.3)");
    }
    if g.idtr.1 >> 16 != 0 {
        fail!("GUEST_IDTR_LIMIT", "bits 31:16 must be 0 (SDM Vol. 3C 27.3.1.3)");
    }
    // RIP and RFLAGS (SDM Vol. 3C 27.3.1.4).
    if !(g.ia32e && g.cs.long()) && g.rip >> 32 != 0 {
        fail!("GUEST_RIP", "bits 63:32 must be 0 outside 64-bit mode (SDM Vol. 3C 27.3.1.4)");
    }
    if g.ia32e && g.cs.long() && !canonical(g.rip) {
        fail!("GUEST_RIP", "not canonical in 64-bit mode (SDM Vol. 3C 27.3.1.4)");
    }
    if g.rflags & rflags::FIXED == 0 || g.rflags & rflags::RESERVED != 0 {
        fail!("GUEST_RFLAGS", "bit 1 must be 1; bits 63:22, 15, 5, 3 must be 0 (SDM Vol. 3C 27.3.1.4)");
    }
    if g.rflags & rflags::VM != 0 && (g.ia32e || g.cr0 & cr0::PE == 0) {
        fail!("GUEST_RFLAGS", "VM (bit 17) must be 0 in IA-32e mode or with CR0.PE = 0 (SDM Vol. 3C 27.3.1.4)");
    }
    let inject = IntrInfo(g.entry_intr_info);
    let (kind, vector) = (inject.kind(), g.entry_intr_info & 0xff);
    let ext_intr = inject.valid() && kind == 0;
    let nmi = inject.is_nmi();
    if ext_intr && g.rflags & rflags::IF == 0 {
        fail!("GUEST_RFLAGS", "IF (bit 9) must be 1 when an external interrupt is injected (SDM Vol. 3C 27.3.1.4)");
    }
    // Non-register state (SDM Vol. 3C 27.3.1.5).
    let (intr, sti, mov_ss) = (g.interruptibility, interruptibility::STI, interruptibility::MOV_SS);
    if !misc_activity(g.misc, g.activity) {
        fail!("GUEST_ACTIVITY_STATE", "must be 0 (active), or 1-3 (HLT, shutdown, wait-for-SIPI) where IA32_VMX_MISC bits 8:6 allow (SDM Vol. 3C 27.3.1.5)");
    }
    if g.activity == 1 && g.ss.dpl() != 0 {
        fail!("GUEST_ACTIVITY_STATE", "HLT (1) needs SS.DPL = 0 (SDM Vol. 3C 27.3.1.5)");
    }
    if g.activity != 0 && intr & (sti | mov_ss) != 0 {
        fail!("GUEST_ACTIVITY_STATE", "must be active (0) with blocking by STI or MOV SS (SDM Vol. 3C 27.3.1.5)");
    }
    if inject.valid() {
        let allowed = match g.activity {
            0 => true,
            1 => kind == 0 || nmi || (kind == INTR_TYPE_HW_EXCEPTION && matches!(vector, 1 | 18)) || (kind == 7 && vector == 0),
            2 => nmi || (kind == INTR_TYPE_HW_EXCEPTION && vector == 18),
            _ => false,
        };
        if !allowed {
            fail!("GUEST_ACTIVITY_STATE", "the injected event is one this state blocks: HLT takes external interrupts, NMIs, #DB, #MC and MTF; shutdown NMIs and #MC; wait-for-SIPI none (SDM Vol. 3C 27.3.1.5)");
        }
    }
    if intr & !0x1f != 0 {
        fail!("GUEST_INTERRUPTIBILITY_INFO", "reserved bits 31:5 must be 0 (SDM Vol. 3C 27.3.1.5)");
    }
    if intr & (sti | mov_ss) == sti | mov_ss {
        fail!("GUEST_INTERRUPTIBILITY_INFO", "blocking by STI and by MOV SS cannot both be 1 (SDM Vol. 3C 27.3.1.5)");
    }
    if intr & sti != 0 && g.rflags & rflags::IF == 0 {
        fail!("GUEST_INTERRUPTIBILITY_INFO", "blocking by STI needs RFLAGS.IF = 1 (SDM Vol. 3C 27.3.1.5)");
    }
    if ext_intr && intr & (sti | mov_ss) != 0 {
        fail!("GUEST_INTERRUPTIBILITY_INFO", "blocking by STI and MOV SS must be 0 when an external interrupt is injected (SDM Vol. 3C 27.3.1.5)");
    }
    if nmi && intr & mov_ss != 0 {
        fail!("GUEST_INTERRUPTIBILITY_INFO", "blocking by MOV SS must be 0 when an NMI is injected (SDM Vol. 3C 27.3.1.5)");
    }
    if intr & BLOCK_SMI != 0 {
        fail!("GUEST_INTERRUPTIBILITY_INFO", "blocking by SMI (bit 2) must be 0 outside SMM (SDM Vol. 3C 27.3.1.5)");
    }
    if nmi && g.virtual_nmi && intr & BLOCK_NMI != 0 {
        fail!("GUEST_INTERRUPTIBILITY_INFO", "blocking by NMI (bit 3) must be 0 when an NMI is injected with virtual NMIs (SDM Vol. 3C 27.3.1.5)");
    }
    if intr & ENCLAVE_INTR != 0 && intr & mov_ss != 0 {
        fail!("GUEST_INTERRUPTIBILITY_INFO", "enclave interruption (bit 4) needs blocking by MOV SS = 0 (SDM Vol. 3C 27.3.1.5)");
    }
    let pd = g.pending_dbg;
    if pd & PENDING_RESERVED != 0 {
        fail!("GUEST_PENDING_DBG_EXCEPTIONS", "reserved bits 11:4, 13, 15 and 63:17 must be 0 (SDM Vol. 3C 27.3.1.5)");
    }
    // With STI or MOV SS blocking, or in HLT, BS says whether the guest
    // single-steps: TF = 1 and DEBUGCTL.BTF = 0.
    if intr & (sti | mov_ss) != 0 || g.activity == 1 {
        let stepping = g.rflags & rflags::TF != 0 && g.debugctl & DEBUGCTL_BTF == 0;
        if stepping != (pd & PENDING_BS != 0) {
            fail!("GUEST_PENDING_DBG_EXCEPTIONS", "with STI or MOV SS blocking or in HLT, BS (bit 14) must be 1 exactly when RFLAGS.TF = 1 and IA32_DEBUGCTL.BTF = 0 (SDM Vol. 3C 27.3.1.5)");
        }
    }
    if pd & PENDING_RTM != 0 && (pd & (0xfff | PENDING_BS | (1 << 15)) != 0 || intr & mov_ss != 0) {
        fail!("GUEST_PENDING_DBG_EXCEPTIONS", "RTM (bit 16) needs bits 11:0, 14 and 15 to be 0 and no blocking by MOV SS (SDM Vol. 3C 27.3.1.5)");
    }
    if g.link_pointer != u64::MAX {
        if !page_ok(g.link_pointer, g.maxphyaddr) {
            fail!("VMCS_LINK_POINTER", "not all ones, and not 4-KiB aligned within the physical-address width (SDM Vol. 3C 27.3.1.5)");
        }
        fail!("VMCS_LINK_POINTER", "not all ones: must then name a VMCS with this CPU's revision identifier, and rvmx has none (SDM Vol. 3C 27.3.1.5)");
    }
    // PDPTEs for PAE paging, which EPT takes from the VMCS (SDM Vol. 3C
    // 27.3.1.6): a present one has reserved bits 2:1, 8:5 and those beyond
    // the physical-address width 0 (SDM Vol. 3A 5.4.1).
    if g.ept && g.cr0 & cr0::PG != 0 && g.cr4 & cr4::PAE != 0 && !g.ia32e {
        const PDPTE: [&str; 4] = ["GUEST_PDPTE0", "GUEST_PDPTE1", "GUEST_PDPTE2", "GUEST_PDPTE3"];
        for (name, e) in PDPTE.into_iter().zip(g.pdpte) {
            if e & 1 != 0 && (e & 0x1e6 != 0 || beyond(e, g.maxphyaddr)) {
                fail!(name, "present, with reserved bits (2:1, 8:5, or beyond the physical-address width) set (SDM Vol. 3C 27.3.1.6)");
            }
        }
    }
    // Last, as only some processors make it: STI blocking with an NMI.
    if nmi && intr & sti != 0 {
        fail!("GUEST_INTERRUPTIBILITY_INFO", "blocking by STI with an NMI injected, which some processors refuse (SDM Vol. 3C 27.3.1.5)");
    }
    None
}

/// Field names of a segment register: (base, limit, access rights).
type Names = (&'static str, &'static str, &'static str);
const CS_NAMES: Names = ("GUEST_CS_BASE", "GUEST_CS_LIMIT", "GUEST_CS_ACCESS_RIGHTS");
const SS_NAMES: Names = ("GUEST_SS_BASE", "GUEST_SS_LIMIT", "GUEST_SS_ACCESS_RIGHTS");
const DS_NAMES: Names = ("GUEST_DS_BASE", "GUEST_DS_LIMIT", "GUEST_DS_ACCESS_RIGHTS");
const ES_NAMES: Names = ("GUEST_ES_BASE", "GUEST_ES_LIMIT", "GUEST_ES_ACCESS_RIGHTS");
const FS_NAMES: Names = ("GUEST_FS_BASE", "GUEST_FS_LIMIT", "GUEST_FS_ACCESS_RIGHTS");
const GS_NAMES: Names = ("GUEST_GS_BASE", "GUEST_GS_LIMIT", "GUEST_GS_ACCESS_RIGHTS");

fn check_segments(g: &GuestState) -> Option<Finding> {
    let (cs, ss, tr, ldtr) = (&g.cs, &g.ss, &g.tr, &g.ldtr);
    // Virtual-8086 mode where RFLAGS.VM may be 1 (else the RFLAGS rule
    // names the fault).
    let v86 = g.rflags & rflags::VM != 0 && !g.ia32e && g.cr0 & cr0::PE != 0;
    // Selectors.
    if tr.selector & 4 != 0 {
        fail!("GUEST_TR_SELECTOR", "TI (bit 2) must be 0 (SDM Vol. 3C 27.3.1.2)");
    }
    if !ldtr.unusable() && ldtr.selector & 4 != 0 {
        fail!("GUEST_LDTR_SELECTOR", "TI (bit 2) must be 0 for a usable LDTR (SDM Vol. 3C 27.3.1.2)");
    }
    if !v86 && !g.unrestricted && ss.rpl() != cs.rpl() {
        fail!("GUEST_SS_SELECTOR", "RPL must equal CS's without unrestricted guest (SDM Vol. 3C 27.3.1.2)");
    }
    // Virtual-8086 mode: base = selector * 16, limit FFFFH, access rights
    // F3H for CS, SS, DS, ES, FS and GS.
    let six = [(CS_NAMES, cs), (SS_NAMES, ss), (DS_NAMES, &g.ds), (ES_NAMES, &g.es), (FS_NAMES, &g.fs), (GS_NAMES, &g.gs)];
    if v86 {
        for ((base, limit, rights), s) in six {
            if s.base != u64::from(s.selector) << 4 {
                fail!(base, "must be the selector times 16 in virtual-8086 mode (SDM Vol. 3C 27.3.1.2)");
            }
            if s.limit != 0xffff {
                fail!(limit, "must be FFFFH in virtual-8086 mode (SDM Vol. 3C 27.3.1.2)");
            }
            if s.ar != 0xf3 {
                fail!(rights, "must be F3H in virtual-8086 mode (SDM Vol. 3C 27.3.1.2)");
            }
        }
    }
    // Bases.
    if !canonical(tr.base) {
        fail!("GUEST_TR_BASE", "not canonical (SDM Vol. 3C 27.3.1.2)");
    }
    if !canonical(g.fs.base) {
        fail!("GUEST_FS_BASE", "not canonical (SDM Vol. 3C 27.3.1.2)");
    }
    if !canonical(g.gs.base) {
        fail!("GUEST_GS_BASE", "not canonical (SDM Vol. 3C 27.3.1.2)");
    }
    if !ldtr.unusable() && !canonical(ldtr.base) {
        fail!("GUEST_LDTR_BASE", "not canonical (SDM Vol. 3C 27.3.1.2)");
    }
    if !v86 {
        if cs.base >> 32 != 0 {
            fail!("GUEST_CS_BASE", "bits 63:32 must be 0 (SDM Vol. 3C 27.3.1.2)");
        }
        for ((base, _, _), s) in [(SS_NAMES, ss), (DS_NAMES, &g.ds), (ES_NAMES, &g.es)] {
            if !s.unusable() && s.base >> 32 != 0 {
                fail!(base, "bits 63:32 must be 0 when usable (SDM Vol. 3C 27.3.1.2)");
            }
        }
        if let Some(f) = check_access_rights(g) {
            return Some(f);
        }
    }
    // TR: a usable busy TSS (64-bit: type 11 only).
    let tr_type_ok = if g.ia32e { tr.kind() == 11 } else { tr.kind() == 3 || tr.kind() == 11 };
    if !tr_type_ok || tr.s() || !tr.present() || tr.unusable() || tr.ar & ar::RESERVED != 0 || !limit_ok(tr) {
        fail!("GUEST_TR_ACCESS_RIGHTS", "TR must be a present, usable busy TSS (type 11, or 3 outside IA-32e mode), S = 0, limit matching G (SDM Vol. 3C 27.3.1.2)");
    }
    if !ldtr.unusable()
        && (ldtr.kind() != 2 || ldtr.s() || !ldtr.present() || ldtr.ar & ar::RESERVED != 0 || !limit_ok(ldtr))
    {
        fail!("GUEST_LDTR_ACCESS_RIGHTS", "a usable LDTR must be a present LDT (type 2, S = 0, limit matching G) (SDM Vol. 3C 27.3.1.2)");
    }
    None
}

/// Access rights of CS, SS, DS, ES, FS and GS outside virtual-8086 mode
/// (SDM Vol. 3C 27.3.1.2).
fn check_access_rights(g: &GuestState) -> Option<Finding> {
    let (cs, ss) = (&g.cs, &g.ss);
    // CS: accessed code (or, with unrestricted guest, accessed read/write data).
    let cs_type_ok = matches!(cs.kind(), 9 | 11 | 13 | 15) || (g.unrestricted && cs.kind() == 3);
    if !cs_type_ok {
        fail!("GUEST_CS_ACCESS_RIGHTS", "type must be accessed code: 9, 11, 13, 15 (3 also with unrestricted guest) (SDM Vol. 3C 27.3.1.2)");
    }
    if !cs.s() || !cs.present() || cs.ar & ar::RESERVED != 0 || !limit_ok(cs) {
        fail!("GUEST_CS_ACCESS_RIGHTS", "S and P must be 1, bits 11:8 and 31:17 0, limit matching G (SDM Vol. 3C 27.3.1.2)");
    }
    if cs.kind() == 3 && cs.dpl() != 0 {
        fail!("GUEST_CS_ACCESS_RIGHTS", "DPL must be 0 for type 3 (SDM Vol. 3C 27.3.1.2)");
    }
    if (cs.kind() == 9 || cs.kind() == 11) && cs.dpl() != ss.dpl() {
        fail!("GUEST_CS_ACCESS_RIGHTS", "non-conforming code: DPL must equal SS.DPL (SDM Vol. 3C 27.3.1.2)");
    }
    if (cs.kind() == 13 || cs.kind() == 15) && cs.dpl() > ss.dpl() {
        fail!("GUEST_CS_ACCESS_RIGHTS", "conforming code: DPL must not exceed SS.DPL (SDM Vol. 3C 27.3.1.2)");
    }
    if g.ia32e && cs.long() && cs.db() {
        fail!("GUEST_CS_ACCESS_RIGHTS", "L and D/B cannot both be 1 in IA-32e mode (SDM Vol. 3C 27.3.1.2)");
    }
    // SS: read/write data when usable; DPL from the selector or 0.
    if !ss.unusable()
        && (ss.kind() != 3 && ss.kind() != 7 || !ss.s() || !ss.present() || ss.ar & ar::RESERVED != 0 || !limit_ok(ss))
    {
        fail!("GUEST_SS_ACCESS_RIGHTS", "a usable SS must be present read/write data (type 3 or 7), S = 1, limit matching G (SDM Vol. 3C 27.3.1.2)");
    }
    if !g.unrestricted && ss.dpl() != ss.rpl() {
        fail!("GUEST_SS_ACCESS_RIGHTS", "DPL must equal the selector's RPL without unrestricted guest (SDM Vol. 3C 27.3.1.2)");
    }
    if (cs.kind() == 3 || g.cr0 & cr0::PE == 0) && ss.dpl() != 0 {
        fail!("GUEST_SS_ACCESS_RIGHTS", "DPL must be 0 when CS is type 3 or CR0.PE = 0 (SDM Vol. 3C 27.3.1.2)");
    }
    let data = [(DS_NAMES, &g.ds), (ES_NAMES, &g.es), (FS_NAMES, &g.fs), (GS_NAMES, &g.gs)];
    for ((_, _, name), s) in data {
        if s.unusable() {
            continue;
        }
        let code = s.kind() & 8 != 0;
        if s.kind() & 1 == 0 || (code && s.kind() & 2 == 0) || !s.s() || !s.present() || s.ar & ar::RESERVED != 0 || !limit_ok(s) {
            fail!(name, "a usable data segment must be accessed, readable if code, present, S = 1, limit matching G (SDM Vol. 3C 27.3.1.2)");
        }
        if !g.unrestricted && s.kind() <= 11 && s.dpl() < s.rpl() {
            fail!(name, "data or non-conforming code: DPL must not be below the selector's RPL without unrestricted guest (SDM Vol. 3C 27.3.1.2)");
        }
    }
    None
}

/// What a VM-instruction error number means (SDM Vol. 3C 31.4, Table 31-1).
pub fn vm_instruction_error(n: u32) -> &'static str {
    match n {
        1 => "VMCALL executed in VMX root operation",
        2 => "VMCLEAR with invalid physical address",
        3 => "VMCLEAR with VMXON pointer",
        4 => "VMLAUNCH with non-clear VMCS",
        5 => "VMRESUME with non-launched VMCS",
        6 => "VMRESUME after VMXOFF",
        7 => "VM entry with invalid control field(s)",
        8 => "VM entry with invalid host-state field(s)",
        9 => "VMPTRLD with invalid physical address",
        10 => "VMPTRLD with VMXON pointer",
        11 => "VMPTRLD with incorrect VMCS revision identifier",
        12 => "VMREAD/VMWRITE from/to unsupported VMCS component",
        13 => "VMWRITE to read-only VMCS component",
        15 => "VMXON executed in VMX root operation",
        16 => "VM entry with invalid executive-VMCS pointer",
        17 => "VM entry with non-launched executive VMCS",
        18 => "VM entry with executive-VMCS pointer not VMXON pointer",
        19 => "VMCALL with non-clear VMCS",
        20 => "VMCALL with invalid VM-exit control fields",
        22 => "VMCALL with incorrect MSEG revision identifier",
        23 => "VMXOFF under dual-monitor treatment of SMIs and SMM",
        24 => "VMCALL with invalid SMM-monitor features",
        25 => "VM entry with invalid VM-execution control fields in executive VMCS",
        26 => "VM entry with events blocked by MOV SS",
        28 => "Invalid operand to INVEPT/INVVPID",
        _ => "unknown VM-instruction error",
    }
}
