// SPDX-License-Identifier: GPL-2.0
//! VMCS field encodings (pure logic: no `kernel` crate, no unsafe).
//!
//! A field is named by a 32-bit encoding (SDM Vol. 3C 25.11.2, "VMREAD,
//! VMWRITE, and Encodings of VMCS Fields"; list in Appendix B):
//! - bit 0: access type, 0 = full, 1 = high (upper 32 bits of a 64-bit field);
//! - bits 9:1: index;
//! - bits 11:10: type, 0 = control, 1 = VM-exit information, 2 = guest state,
//!   3 = host state;
//! - bit 12: reserved (0);
//! - bits 14:13: width, 0 = 16-bit, 1 = 64-bit, 2 = 32-bit, 3 = natural width;
//! - bits 31:15: reserved (0).

/// Width of a VMCS field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Width {
    /// 16-bit.
    W16,
    /// 64-bit (also readable in halves through the "high" encoding).
    W64,
    /// 32-bit.
    W32,
    /// Natural width: 64 bits on a 64-bit host.
    Natural,
}

/// Area of the VMCS a field belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// VM-execution, VM-exit and VM-entry control fields.
    Control,
    /// VM-exit information (read-only data).
    ExitInfo,
    /// Guest-state area.
    Guest,
    /// Host-state area.
    Host,
}

/// Full field or the high half of a 64-bit field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// The whole field.
    Full,
    /// Bits 63:32 of a 64-bit field.
    High,
}

/// Why a 32-bit value is not a VMCS field encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BadEncoding {
    /// Bit 12 or bits 31:15 are set.
    ReservedBits,
    /// High access (bit 0 = 1) on a field that is not 64-bit.
    HighOnNon64,
}

/// A valid VMCS field encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field(u32);

const RESERVED: u32 = (1 << 12) | !0x7fff;

impl Field {
    /// Builds an encoding from its parts; panics at compile time when used in
    /// a `const` with a bad index (the index has 9 bits).
    pub const fn new(width: Width, kind: Kind, index: u32) -> Field {
        assert!(index < 512);
        let w = match width {
            Width::W16 => 0,
            Width::W64 => 1,
            Width::W32 => 2,
            Width::Natural => 3,
        };
        let k = match kind {
            Kind::Control => 0,
            Kind::ExitInfo => 1,
            Kind::Guest => 2,
            Kind::Host => 3,
        };
        Field((w << 13) | (k << 10) | (index << 1))
    }

    /// Checks a raw encoding (as userland or a guest might present it).
    pub const fn from_raw(enc: u32) -> Result<Field, BadEncoding> {
        if enc & RESERVED != 0 {
            return Err(BadEncoding::ReservedBits);
        }
        if enc & 1 != 0 && (enc >> 13) & 3 != 1 {
            return Err(BadEncoding::HighOnNon64);
        }
        Ok(Field(enc))
    }

    /// The encoding that VMREAD/VMWRITE take.
    pub const fn raw(self) -> u32 {
        self.0
    }

    /// The field's width.
    pub const fn width(self) -> Width {
        match (self.0 >> 13) & 3 {
            0 => Width::W16,
            1 => Width::W64,
            2 => Width::W32,
            _ => Width::Natural,
        }
    }

    /// The VMCS area of the field.
    pub const fn kind(self) -> Kind {
        match (self.0 >> 10) & 3 {
            0 => Kind::Control,
            1 => Kind::ExitInfo,
            2 => Kind::Guest,
            _ => Kind::Host,
        }
    }

    /// Full or high access.
    pub const fn access(self) -> Access {
        if self.0 & 1 == 0 {
            Access::Full
        } else {
            Access::High
        }
    }

    /// Bits that VMREAD returns: all 64 for natural width and full 64-bit
    /// access, 32 for 32-bit fields and high halves, 16 for 16-bit fields.
    pub const fn bits(self) -> u32 {
        match (self.width(), self.access()) {
            (Width::W16, _) => 16,
            (Width::W32, _) | (Width::W64, Access::High) => 32,
            _ => 64,
        }
    }

    /// VM-exit information fields are read-only to VMWRITE unless the CPU
    /// reports IA32_VMX_MISC bit 29 (SDM Vol. 3C 25.11.2; Appendix A.6).
    pub const fn is_read_only(self) -> bool {
        matches!(self.kind(), Kind::ExitInfo)
    }
}

/// A field's value: `u16`, `u32` or `u64` (natural width is 64 bits on a
/// 64-bit host), as VMREAD returns it zero-extended.
pub trait Value: Copy {
    /// Bits the field has.
    const BITS: u32;
    /// From VMREAD's 64-bit result.
    fn from_raw(v: u64) -> Self;
    /// To VMWRITE's 64-bit operand.
    fn raw(self) -> u64;
}

impl Value for u16 {
    const BITS: u32 = 16;
    fn from_raw(v: u64) -> Self {
        v as u16
    }
    fn raw(self) -> u64 {
        self.into()
    }
}

impl Value for u32 {
    const BITS: u32 = 32;
    fn from_raw(v: u64) -> Self {
        v as u32
    }
    fn raw(self) -> u64 {
        self.into()
    }
}

impl Value for u64 {
    const BITS: u32 = 64;
    fn from_raw(v: u64) -> Self {
        v
    }
    fn raw(self) -> u64 {
        self
    }
}

/// A field that VMREAD and VMWRITE take, holding a `T`.
pub struct Rw<T>(Field, core::marker::PhantomData<T>);
/// A read-only field (VM-exit information): there is no way to write it.
pub struct Ro<T>(Field, core::marker::PhantomData<T>);

impl<T> Clone for Rw<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Rw<T> {}
impl<T> Clone for Ro<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Ro<T> {}

impl<T> Rw<T> {
    /// The encoding.
    pub const fn field(self) -> Field {
        self.0
    }
}

impl<T> Ro<T> {
    /// The encoding.
    pub const fn field(self) -> Field {
        self.0
    }
}

/// A field VMREAD can read, and the type it holds.
pub trait Readable: Copy {
    /// The field's value type.
    type Value: Value;
    /// The encoding.
    fn encoding(self) -> Field;
}

impl<T: Value> Readable for Rw<T> {
    type Value = T;
    fn encoding(self) -> Field {
        self.0
    }
}

impl<T: Value> Readable for Ro<T> {
    type Value = T;
    fn encoding(self) -> Field {
        self.0
    }
}

/// Access to a current VMCS: the module's loaded-VMCS token and the host
/// tests' fake implement it, so the exit handlers are pure.
pub trait VmcsAccess {
    /// VMREAD of a field.
    fn read_raw(&self, f: Field) -> u64;
    /// VMWRITE of a field.
    fn write_raw(&self, f: Field, v: u64);
    /// Reads a field as the type it holds.
    fn read<F: Readable>(&self, f: F) -> F::Value {
        F::Value::from_raw(self.read_raw(f.encoding()))
    }
    /// Writes a writable field.
    fn write<T: Value>(&self, f: Rw<T>, v: T) {
        self.write_raw(f.0, v.raw())
    }
}

/// A named field, checked at compile time: a valid encoding whose width
/// holds `T` and which VMWRITE may write.
const fn rw<T: Value>(enc: u32) -> Rw<T> {
    let field = f(enc);
    assert!(field.bits() == T::BITS && !field.is_read_only());
    Rw(field, core::marker::PhantomData)
}

/// A named read-only (VM-exit information) field holding `T`.
const fn ro<T: Value>(enc: u32) -> Ro<T> {
    let field = f(enc);
    assert!(field.bits() == T::BITS && field.is_read_only());
    Ro(field, core::marker::PhantomData)
}

const fn f(enc: u32) -> Field {
    match Field::from_raw(enc) {
        Ok(field) => field,
        Err(_) => panic!("bad VMCS field encoding"),
    }
}

/// The guest segment registers, in the order of their VMCS field indices
/// (SDM Vol. 3D Appendix B: ES, CS, SS, DS, FS, GS, LDTR, TR).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seg {
    /// ES.
    Es,
    /// CS.
    Cs,
    /// SS.
    Ss,
    /// DS.
    Ds,
    /// FS.
    Fs,
    /// GS.
    Gs,
    /// LDTR.
    Ldtr,
    /// TR.
    Tr,
}

/// The four VMCS fields of one guest segment register.
#[derive(Clone, Copy)]
pub struct SegFields {
    /// Selector.
    pub selector: Rw<u16>,
    /// Base address.
    pub base: Rw<u64>,
    /// Limit in bytes.
    pub limit: Rw<u32>,
    /// Access rights (SDM Vol. 3C 25.4.1).
    pub ar: Rw<u32>,
}

impl Seg {
    /// Every segment register, in VMCS order.
    pub const ALL: [Seg; 8] = [Seg::Es, Seg::Cs, Seg::Ss, Seg::Ds, Seg::Fs, Seg::Gs, Seg::Ldtr, Seg::Tr];

    /// Its fields: the segment's number is the field index in each of the
    /// four groups (guest 16-bit selectors, natural-width bases, 32-bit
    /// limits from index 0, 32-bit access rights from index 10).
    pub const fn fields(self) -> SegFields {
        let i = self as u32;
        use core::marker::PhantomData as P;
        SegFields {
            selector: Rw(Field::new(Width::W16, Kind::Guest, i), P),
            base: Rw(Field::new(Width::Natural, Kind::Guest, 3 + i), P),
            limit: Rw(Field::new(Width::W32, Kind::Guest, i), P),
            ar: Rw(Field::new(Width::W32, Kind::Guest, 10 + i), P),
        }
    }
}

// Encodings from SDM Vol. 3D Appendix B.
/// 16-bit control: VPID.
pub const VPID: Rw<u16> = rw(0x0000);
/// Posted-interrupt notification vector.
pub const POSTED_INTR_NV: Rw<u16> = rw(0x0002);
/// Host ES selector.
pub const HOST_ES_SELECTOR: Rw<u16> = rw(0x0c00);
/// Host CS selector.
pub const HOST_CS_SELECTOR: Rw<u16> = rw(0x0c02);
/// Host SS selector.
pub const HOST_SS_SELECTOR: Rw<u16> = rw(0x0c04);
/// Host DS selector.
pub const HOST_DS_SELECTOR: Rw<u16> = rw(0x0c06);
/// Host FS selector.
pub const HOST_FS_SELECTOR: Rw<u16> = rw(0x0c08);
/// Host GS selector.
pub const HOST_GS_SELECTOR: Rw<u16> = rw(0x0c0a);
/// Host TR selector.
pub const HOST_TR_SELECTOR: Rw<u16> = rw(0x0c0c);
/// I/O bitmap A address.
pub const IO_BITMAP_A: Rw<u64> = rw(0x2000);
/// I/O bitmap B address.
pub const IO_BITMAP_B: Rw<u64> = rw(0x2002);
/// MSR-bitmap address.
pub const MSR_BITMAP: Rw<u64> = rw(0x2004);
/// VM-exit MSR-store address.
pub const EXIT_MSR_STORE_ADDR: Rw<u64> = rw(0x2006);
/// VM-exit MSR-load address.
pub const EXIT_MSR_LOAD_ADDR: Rw<u64> = rw(0x2008);
/// VM-entry MSR-load address.
pub const ENTRY_MSR_LOAD_ADDR: Rw<u64> = rw(0x200a);
/// Page-modification log address.
pub const PML_ADDRESS: Rw<u64> = rw(0x200e);
/// Virtual-APIC address.
pub const VIRTUAL_APIC_PAGE_ADDR: Rw<u64> = rw(0x2012);
/// APIC-access address.
pub const APIC_ACCESS_ADDR: Rw<u64> = rw(0x2014);
/// Posted-interrupt descriptor address.
pub const POSTED_INTR_DESC_ADDR: Rw<u64> = rw(0x2016);
/// TSC offset (SDM Vol. 3C 25.6.5).
pub const TSC_OFFSET: Rw<u64> = rw(0x2010);
/// EPT pointer.
pub const EPT_POINTER: Rw<u64> = rw(0x201a);
/// VMREAD-bitmap address.
pub const VMREAD_BITMAP: Rw<u64> = rw(0x2026);
/// VMWRITE-bitmap address.
pub const VMWRITE_BITMAP: Rw<u64> = rw(0x2028);
/// Virtualization-exception information address.
pub const VE_INFO_ADDR: Rw<u64> = rw(0x202a);
/// Guest-physical address (exit information).
pub const GUEST_PHYSICAL_ADDRESS: Ro<u64> = ro(0x2400);
/// VMCS link pointer.
pub const VMCS_LINK_POINTER: Rw<u64> = rw(0x2800);
/// Guest IA32_DEBUGCTL.
pub const GUEST_IA32_DEBUGCTL: Rw<u64> = rw(0x2802);
/// Guest IA32_PAT.
pub const GUEST_IA32_PAT: Rw<u64> = rw(0x2804);
/// Guest IA32_EFER.
pub const GUEST_IA32_EFER: Rw<u64> = rw(0x2806);
/// Guest PDPTE0 (PAE paging with EPT).
pub const GUEST_PDPTE0: Rw<u64> = rw(0x280a);
/// Guest PDPTE1.
pub const GUEST_PDPTE1: Rw<u64> = rw(0x280c);
/// Guest PDPTE2.
pub const GUEST_PDPTE2: Rw<u64> = rw(0x280e);
/// Guest PDPTE3.
pub const GUEST_PDPTE3: Rw<u64> = rw(0x2810);
/// Host IA32_PAT.
pub const HOST_IA32_PAT: Rw<u64> = rw(0x2c00);
/// Host IA32_EFER.
pub const HOST_IA32_EFER: Rw<u64> = rw(0x2c02);
/// Pin-based VM-execution controls.
pub const PIN_BASED_CONTROLS: Rw<u32> = rw(0x4000);
/// Primary processor-based VM-execution controls.
pub const PROC_BASED_CONTROLS: Rw<u32> = rw(0x4002);
/// Exception bitmap.
pub const EXCEPTION_BITMAP: Rw<u32> = rw(0x4004);
/// CR3-target count.
pub const CR3_TARGET_COUNT: Rw<u32> = rw(0x400a);
/// Primary VM-exit controls.
pub const EXIT_CONTROLS: Rw<u32> = rw(0x400c);
/// VM-exit MSR-store count.
pub const EXIT_MSR_STORE_COUNT: Rw<u32> = rw(0x400e);
/// VM-exit MSR-load count.
pub const EXIT_MSR_LOAD_COUNT: Rw<u32> = rw(0x4010);
/// VM-entry controls.
pub const ENTRY_CONTROLS: Rw<u32> = rw(0x4012);
/// VM-entry MSR-load count.
pub const ENTRY_MSR_LOAD_COUNT: Rw<u32> = rw(0x4014);
/// VM-entry interruption-information field.
pub const ENTRY_INTR_INFO: Rw<u32> = rw(0x4016);
/// VM-entry exception error code.
pub const ENTRY_EXCEPTION_ERROR_CODE: Rw<u32> = rw(0x4018);
/// VM-entry instruction length (software interrupts and exceptions).
pub const ENTRY_INSTRUCTION_LENGTH: Rw<u32> = rw(0x401a);
/// TPR threshold.
pub const TPR_THRESHOLD: Rw<u32> = rw(0x401c);
/// Secondary processor-based VM-execution controls.
pub const PROC_BASED_CONTROLS2: Rw<u32> = rw(0x401e);
/// VM-instruction error.
pub const VM_INSTRUCTION_ERROR: Ro<u32> = ro(0x4400);
/// Exit reason.
pub const EXIT_REASON: Ro<u32> = ro(0x4402);
/// VM-exit interruption information.
pub const EXIT_INTR_INFO: Ro<u32> = ro(0x4404);
/// VM-exit instruction length.
pub const EXIT_INSTRUCTION_LENGTH: Ro<u32> = ro(0x440c);
/// VM-exit instruction information.
pub const EXIT_INSTRUCTION_INFO: Ro<u32> = ro(0x440e);
/// IDT-vectoring information: the event being delivered when the exit hit.
pub const IDT_VECTORING_INFO: Ro<u32> = ro(0x4408);
/// IDT-vectoring error code.
pub const IDT_VECTORING_ERROR_CODE: Ro<u32> = ro(0x440a);
/// Guest GDTR limit.
pub const GUEST_GDTR_LIMIT: Rw<u32> = rw(0x4810);
/// Guest IDTR limit.
pub const GUEST_IDTR_LIMIT: Rw<u32> = rw(0x4812);
/// Guest interruptibility state.
pub const GUEST_INTERRUPTIBILITY: Rw<u32> = rw(0x4824);
/// Guest activity state.
pub const GUEST_ACTIVITY_STATE: Rw<u32> = rw(0x4826);
/// Guest IA32_SYSENTER_CS.
pub const GUEST_SYSENTER_CS: Rw<u32> = rw(0x482a);
/// VMX-preemption timer value.
pub const PREEMPTION_TIMER_VALUE: Rw<u32> = rw(0x482e);
/// Host IA32_SYSENTER_CS.
pub const HOST_SYSENTER_CS: Rw<u32> = rw(0x4c00);
/// CR0 guest/host mask.
pub const CR0_GUEST_HOST_MASK: Rw<u64> = rw(0x6000);
/// CR4 guest/host mask.
pub const CR4_GUEST_HOST_MASK: Rw<u64> = rw(0x6002);
/// CR0 read shadow.
pub const CR0_READ_SHADOW: Rw<u64> = rw(0x6004);
/// CR4 read shadow.
pub const CR4_READ_SHADOW: Rw<u64> = rw(0x6006);
/// Exit qualification.
pub const EXIT_QUALIFICATION: Ro<u64> = ro(0x6400);
/// Guest-linear address.
pub const GUEST_LINEAR_ADDRESS: Ro<u64> = ro(0x640a);
/// Guest CR0.
pub const GUEST_CR0: Rw<u64> = rw(0x6800);
/// Guest CR3.
pub const GUEST_CR3: Rw<u64> = rw(0x6802);
/// Guest CR4.
pub const GUEST_CR4: Rw<u64> = rw(0x6804);
/// Guest GDTR base.
pub const GUEST_GDTR_BASE: Rw<u64> = rw(0x6816);
/// Guest IDTR base.
pub const GUEST_IDTR_BASE: Rw<u64> = rw(0x6818);
/// Guest DR7.
pub const GUEST_DR7: Rw<u64> = rw(0x681a);
/// Guest RSP.
pub const GUEST_RSP: Rw<u64> = rw(0x681c);
/// Guest RIP.
pub const GUEST_RIP: Rw<u64> = rw(0x681e);
/// Guest RFLAGS.
pub const GUEST_RFLAGS: Rw<u64> = rw(0x6820);
/// Guest pending debug exceptions.
pub const GUEST_PENDING_DBG_EXCEPTIONS: Rw<u64> = rw(0x6822);
/// Guest IA32_SYSENTER_ESP.
pub const GUEST_SYSENTER_ESP: Rw<u64> = rw(0x6824);
/// Guest IA32_SYSENTER_EIP.
pub const GUEST_SYSENTER_EIP: Rw<u64> = rw(0x6826);
/// Host CR0.
pub const HOST_CR0: Rw<u64> = rw(0x6c00);
/// Host CR3.
pub const HOST_CR3: Rw<u64> = rw(0x6c02);
/// Host CR4.
pub const HOST_CR4: Rw<u64> = rw(0x6c04);
/// Host FS base.
pub const HOST_FS_BASE: Rw<u64> = rw(0x6c06);
/// Host GS base.
pub const HOST_GS_BASE: Rw<u64> = rw(0x6c08);
/// Host TR base.
pub const HOST_TR_BASE: Rw<u64> = rw(0x6c0a);
/// Host GDTR base.
pub const HOST_GDTR_BASE: Rw<u64> = rw(0x6c0c);
/// Host IDTR base.
pub const HOST_IDTR_BASE: Rw<u64> = rw(0x6c0e);
/// Host IA32_SYSENTER_ESP.
pub const HOST_SYSENTER_ESP: Rw<u64> = rw(0x6c10);
/// Host IA32_SYSENTER_EIP.
pub const HOST_SYSENTER_EIP: Rw<u64> = rw(0x6c12);
/// Host RSP.
pub const HOST_RSP: Rw<u64> = rw(0x6c14);
/// Host RIP.
pub const HOST_RIP: Rw<u64> = rw(0x6c16);
