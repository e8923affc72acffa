// SPDX-License-Identifier: GPL-2.0
//! Why a VM entry failed (pure logic): the guest-state checks of SDM
//! Vol. 3C 27.3.1, applied to a copy of the guest-state fields, so that
//! userland learns which field broke which rule, not just "exit reason 33";
//! and the VM-instruction error numbers (SDM Vol. 3C 31.4).

use crate::vmcs::field::{Seg as SegReg, *};
use crate::vmx::caps::{entry, proc2, RawCaps};
use crate::vmx::exit_info::interruptibility;
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

/// The guest state and the few controls and capabilities the checks need.
#[derive(Clone, Copy, Debug, Default)]
pub struct GuestState {
    /// Guest CR0, CR4, IA32_EFER, RFLAGS, RIP.
    pub cr0: u64,
    /// Guest CR4.
    pub cr4: u64,
    /// Guest IA32_EFER.
    pub efer: u64,
    /// Guest RFLAGS.
    pub rflags: u64,
    /// Guest RIP.
    pub rip: u64,
    /// IA32_VMX_CR0_FIXED0/1 and CR4_FIXED0/1.
    pub cr0_fixed: (u64, u64),
    /// CR4 fixed bits.
    pub cr4_fixed: (u64, u64),
    /// "Unrestricted guest" is on.
    pub unrestricted: bool,
    /// "IA-32e mode guest" entry control.
    pub ia32e: bool,
    /// "Load IA32_EFER" entry control.
    pub load_efer: bool,
    /// CS, SS, DS, ES, FS, GS, TR, LDTR.
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
    /// GDTR and IDTR (base, limit).
    pub gdtr: (u64, u32),
    /// IDTR.
    pub idtr: (u64, u32),
    /// Activity state and interruptibility state.
    pub activity: u32,
    /// Interruptibility state.
    pub interruptibility: u32,
    /// VMCS link pointer.
    pub link_pointer: u64,
}

/// The first rule the guest state breaks: the field and the rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Finding {
    /// The VMCS field (as the SDM names it).
    pub field: &'static str,
    /// The rule, with its SDM section.
    pub rule: &'static str,
}

const EFER_ALLOWED: u64 = efer::SCE | efer::LME | efer::LMA | efer::NXE;

/// Reads the guest state and controls that [`check`] examines from the
/// current VMCS.
pub fn snapshot<V: VmcsAccess>(v: &V, caps: &RawCaps) -> GuestState {
    let seg = |s: SegReg| {
        let f = s.fields();
        Seg { selector: v.read(f.selector), base: v.read(f.base), limit: v.read(f.limit), ar: v.read(f.ar) }
    };
    let entry_ctl = v.read(ENTRY_CONTROLS);
    GuestState {
        cr0: v.read(GUEST_CR0),
        cr4: v.read(GUEST_CR4),
        efer: v.read(GUEST_IA32_EFER),
        rflags: v.read(GUEST_RFLAGS),
        rip: v.read(GUEST_RIP),
        cr0_fixed: (caps.cr0_fixed0, caps.cr0_fixed1),
        cr4_fixed: (caps.cr4_fixed0, caps.cr4_fixed1),
        unrestricted: v.read(PROC_BASED_CONTROLS2) & proc2::UNRESTRICTED_GUEST != 0,
        ia32e: entry_ctl & entry::IA32E_GUEST != 0,
        load_efer: entry_ctl & entry::LOAD_EFER != 0,
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
        link_pointer: v.read(VMCS_LINK_POINTER),
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

/// Checks `g`; `None` if no rule checked here is broken.
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
    if g.cr4 & g.cr4_fixed.0 != g.cr4_fixed.0 || g.cr4 & !g.cr4_fixed.1 != 0 {
        fail!("GUEST_CR4", "breaks IA32_VMX_CR4_FIXED0/FIXED1 (SDM Vol. 3C 27.3.1.1)");
    }
    if g.ia32e && (g.cr0 & cr0::PG == 0 || g.cr4 & cr4::PAE == 0) {
        fail!("VM_ENTRY_CONTROLS", "IA-32e mode guest needs CR0.PG = 1 and CR4.PAE = 1 (SDM Vol. 3C 27.3.1.1)");
    }
    if !g.ia32e && g.cr4 & cr4::PCIDE != 0 {
        fail!("GUEST_CR4", "PCIDE (bit 17) is 1 outside IA-32e mode (SDM Vol. 3C 27.3.1.1)");
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
    // Segment registers (SDM Vol. 3C 27.3.1.2); virtual-8086 mode aside.
    if let Some(f) = check_segments(g) {
        return Some(f);
    }
    // Descriptor tables (SDM Vol. 3C 27.3.1.3).
    if !canonical(g.gdtr.0) || g.gdtr.1 >> 16 != 0 {
        fail!("GUEST_GDTR", "base not canonical or limit above 0xFFFF (SDM Vol. 3C 27.3.1.3)");
    }
    if !canonical(g.idtr.0) || g.idtr.1 >> 16 != 0 {
        fail!("GUEST_IDTR", "base not canonical or limit above 0xFFFF (SDM Vol. 3C 27.3.1.3)");
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
    // Non-register state (SDM Vol. 3C 27.3.1.5).
    if g.activity > 3 {
        fail!("GUEST_ACTIVITY_STATE", "not 0 (active), 1 (HLT), 2 (shutdown) or 3 (wait-for-SIPI) (SDM Vol. 3C 27.3.1.5)");
    }
    let both = interruptibility::STI | interruptibility::MOV_SS;
    if g.interruptibility & !0x1f != 0 || g.interruptibility & both == both {
        fail!("GUEST_INTERRUPTIBILITY_INFO", "reserved bits set, or blocking by both STI and MOV SS (SDM Vol. 3C 27.3.1.5)");
    }
    if g.link_pointer != u64::MAX {
        fail!("VMCS_LINK_POINTER", "must be all ones without VMCS shadowing (SDM Vol. 3C 27.3.1.5)");
    }
    None
}

fn check_segments(g: &GuestState) -> Option<Finding> {
    let (cs, ss, tr, ldtr) = (&g.cs, &g.ss, &g.tr, &g.ldtr);
    // TR: a busy TSS, usable (64-bit: type 11 only).
    if tr.selector & 4 != 0 {
        fail!("GUEST_TR_SELECTOR", "TI (bit 2) must be 0 (SDM Vol. 3C 27.3.1.2)");
    }
    let tr_type_ok = if g.ia32e { tr.kind() == 11 } else { tr.kind() == 3 || tr.kind() == 11 };
    if !tr_type_ok || tr.s() || !tr.present() || tr.unusable() || tr.ar & ar::RESERVED != 0 || !limit_ok(tr) {
        fail!("GUEST_TR_ACCESS_RIGHTS", "TR must be a present, usable busy TSS (type 11, or 3 outside IA-32e mode), S = 0, limit matching G (SDM Vol. 3C 27.3.1.2)");
    }
    if !canonical(tr.base) {
        fail!("GUEST_TR_BASE", "not canonical (SDM Vol. 3C 27.3.1.2)");
    }
    if !ldtr.unusable() {
        if ldtr.selector & 4 != 0 || ldtr.kind() != 2 || ldtr.s() || !ldtr.present() || ldtr.ar & ar::RESERVED != 0 || !limit_ok(ldtr) {
            fail!("GUEST_LDTR_ACCESS_RIGHTS", "a usable LDTR must be a present LDT (type 2, S = 0, TI = 0, limit matching G) (SDM Vol. 3C 27.3.1.2)");
        }
        if !canonical(ldtr.base) {
            fail!("GUEST_LDTR_BASE", "not canonical (SDM Vol. 3C 27.3.1.2)");
        }
    }
    // CS: accessed code (or, with unrestricted guest, accessed read/write data).
    let cs_types: &[u32] = if g.unrestricted { &[3, 9, 11, 13, 15] } else { &[9, 11, 13, 15] };
    if !cs_types.contains(&cs.kind()) {
        fail!("GUEST_CS_ACCESS_RIGHTS", "type must be accessed code: 9, 11, 13, 15 (3 also with unrestricted guest) (SDM Vol. 3C 27.3.1.2)");
    }
    if !cs.s() || !cs.present() || cs.ar & ar::RESERVED != 0 || !limit_ok(cs) {
        fail!("GUEST_CS_ACCESS_RIGHTS", "S and P must be 1, bits 11:8 and 31:17 0, limit matching G (SDM Vol. 3C 27.3.1.2)");
    }
    if cs.kind() == 3 && cs.dpl() != 0 {
        fail!("GUEST_CS_ACCESS_RIGHTS", "DPL must be 0 for type 3 (SDM Vol. 3C 27.3.1.2)");
    }
    if (cs.kind() == 9 || cs.kind() == 11) && !ss.unusable() && cs.dpl() != ss.dpl() {
        fail!("GUEST_CS_ACCESS_RIGHTS", "non-conforming code: DPL must equal SS.DPL (SDM Vol. 3C 27.3.1.2)");
    }
    if g.ia32e && cs.long() && cs.db() {
        fail!("GUEST_CS_ACCESS_RIGHTS", "L and D/B cannot both be 1 in IA-32e mode (SDM Vol. 3C 27.3.1.2)");
    }
    if cs.base >> 32 != 0 {
        fail!("GUEST_CS_BASE", "bits 63:32 must be 0 (SDM Vol. 3C 27.3.1.2)");
    }
    if !ss.unusable() {
        if ss.kind() != 3 && ss.kind() != 7 || !ss.s() || !ss.present() || ss.ar & ar::RESERVED != 0 || !limit_ok(ss) {
            fail!("GUEST_SS_ACCESS_RIGHTS", "a usable SS must be present read/write data (type 3 or 7), S = 1, limit matching G (SDM Vol. 3C 27.3.1.2)");
        }
        if ss.base >> 32 != 0 {
            fail!("GUEST_SS_BASE", "bits 63:32 must be 0 (SDM Vol. 3C 27.3.1.2)");
        }
    }
    if g.unrestricted && g.cr0 & cr0::PE == 0 && ss.dpl() != 0 {
        fail!("GUEST_SS_ACCESS_RIGHTS", "DPL must be 0 while CR0.PE = 0 (SDM Vol. 3C 27.3.1.2)");
    }
    let data = [("GUEST_DS_ACCESS_RIGHTS", &g.ds), ("GUEST_ES_ACCESS_RIGHTS", &g.es), ("GUEST_FS_ACCESS_RIGHTS", &g.fs), ("GUEST_GS_ACCESS_RIGHTS", &g.gs)];
    for (name, s) in data {
        if s.unusable() {
            continue;
        }
        let code = s.kind() & 8 != 0;
        if s.kind() & 1 == 0 || (code && s.kind() & 2 == 0) || !s.s() || !s.present() || s.ar & ar::RESERVED != 0 || !limit_ok(s) {
            fail!(name, "a usable data segment must be accessed, readable if code, present, S = 1, limit matching G (SDM Vol. 3C 27.3.1.2)");
        }
    }
    if !canonical(g.fs.base) || !canonical(g.gs.base) {
        fail!("GUEST_FS_BASE / GUEST_GS_BASE", "not canonical (SDM Vol. 3C 27.3.1.2)");
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
