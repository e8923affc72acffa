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

    /// The 9-bit index within its width and type.
    pub const fn index(self) -> u32 {
        (self.0 >> 1) & 0x1ff
    }

    /// The high half of this 64-bit field, `None` for other widths.
    pub const fn high(self) -> Option<Field> {
        match self.width() {
            Width::W64 => Some(Field(self.0 | 1)),
            _ => None,
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

/// A named field, checked at compile time.
const fn f(enc: u32) -> Field {
    match Field::from_raw(enc) {
        Ok(field) => field,
        Err(_) => panic!("bad VMCS field encoding"),
    }
}

// Encodings from SDM Vol. 3D Appendix B.
/// 16-bit control: VPID.
pub const VPID: Field = f(0x0000);
/// Guest ES selector.
pub const GUEST_ES_SELECTOR: Field = f(0x0800);
/// Guest CS selector.
pub const GUEST_CS_SELECTOR: Field = f(0x0802);
/// Guest SS selector.
pub const GUEST_SS_SELECTOR: Field = f(0x0804);
/// Guest DS selector.
pub const GUEST_DS_SELECTOR: Field = f(0x0806);
/// Guest FS selector.
pub const GUEST_FS_SELECTOR: Field = f(0x0808);
/// Guest GS selector.
pub const GUEST_GS_SELECTOR: Field = f(0x080a);
/// Guest LDTR selector.
pub const GUEST_LDTR_SELECTOR: Field = f(0x080c);
/// Guest TR selector.
pub const GUEST_TR_SELECTOR: Field = f(0x080e);
/// Host ES selector.
pub const HOST_ES_SELECTOR: Field = f(0x0c00);
/// Host CS selector.
pub const HOST_CS_SELECTOR: Field = f(0x0c02);
/// Host SS selector.
pub const HOST_SS_SELECTOR: Field = f(0x0c04);
/// Host DS selector.
pub const HOST_DS_SELECTOR: Field = f(0x0c06);
/// Host FS selector.
pub const HOST_FS_SELECTOR: Field = f(0x0c08);
/// Host GS selector.
pub const HOST_GS_SELECTOR: Field = f(0x0c0a);
/// Host TR selector.
pub const HOST_TR_SELECTOR: Field = f(0x0c0c);
/// I/O bitmap A address.
pub const IO_BITMAP_A: Field = f(0x2000);
/// I/O bitmap B address.
pub const IO_BITMAP_B: Field = f(0x2002);
/// MSR bitmap address.
pub const MSR_BITMAP: Field = f(0x2004);
/// EPT pointer.
pub const EPT_POINTER: Field = f(0x201a);
/// Guest-physical address (exit information).
pub const GUEST_PHYSICAL_ADDRESS: Field = f(0x2400);
/// VMCS link pointer.
pub const VMCS_LINK_POINTER: Field = f(0x2800);
/// Guest IA32_DEBUGCTL.
pub const GUEST_IA32_DEBUGCTL: Field = f(0x2802);
/// Guest IA32_PAT.
pub const GUEST_IA32_PAT: Field = f(0x2804);
/// Guest IA32_EFER.
pub const GUEST_IA32_EFER: Field = f(0x2806);
/// Host IA32_PAT.
pub const HOST_IA32_PAT: Field = f(0x2c00);
/// Host IA32_EFER.
pub const HOST_IA32_EFER: Field = f(0x2c02);
/// Pin-based VM-execution controls.
pub const PIN_BASED_CONTROLS: Field = f(0x4000);
/// Primary processor-based VM-execution controls.
pub const PROC_BASED_CONTROLS: Field = f(0x4002);
/// Exception bitmap.
pub const EXCEPTION_BITMAP: Field = f(0x4004);
/// CR3-target count.
pub const CR3_TARGET_COUNT: Field = f(0x400a);
/// Primary VM-exit controls.
pub const EXIT_CONTROLS: Field = f(0x400c);
/// VM-exit MSR-store count.
pub const EXIT_MSR_STORE_COUNT: Field = f(0x400e);
/// VM-exit MSR-load count.
pub const EXIT_MSR_LOAD_COUNT: Field = f(0x4010);
/// VM-entry controls.
pub const ENTRY_CONTROLS: Field = f(0x4012);
/// VM-entry MSR-load count.
pub const ENTRY_MSR_LOAD_COUNT: Field = f(0x4014);
/// VM-entry interruption-information field.
pub const ENTRY_INTR_INFO: Field = f(0x4016);
/// VM-entry exception error code.
pub const ENTRY_EXCEPTION_ERROR_CODE: Field = f(0x4018);
/// VM-entry instruction length.
pub const ENTRY_INSTRUCTION_LENGTH: Field = f(0x401a);
/// Secondary processor-based VM-execution controls.
pub const PROC_BASED_CONTROLS2: Field = f(0x401e);
/// VM-instruction error.
pub const VM_INSTRUCTION_ERROR: Field = f(0x4400);
/// Exit reason.
pub const EXIT_REASON: Field = f(0x4402);
/// VM-exit interruption information.
pub const EXIT_INTR_INFO: Field = f(0x4404);
/// VM-exit interruption error code.
pub const EXIT_INTR_ERROR_CODE: Field = f(0x4406);
/// IDT-vectoring information.
pub const IDT_VECTORING_INFO: Field = f(0x4408);
/// VM-exit instruction length.
pub const EXIT_INSTRUCTION_LENGTH: Field = f(0x440c);
/// VM-exit instruction information.
pub const EXIT_INSTRUCTION_INFO: Field = f(0x440e);
/// Guest ES limit.
pub const GUEST_ES_LIMIT: Field = f(0x4800);
/// Guest CS limit.
pub const GUEST_CS_LIMIT: Field = f(0x4802);
/// Guest SS limit.
pub const GUEST_SS_LIMIT: Field = f(0x4804);
/// Guest DS limit.
pub const GUEST_DS_LIMIT: Field = f(0x4806);
/// Guest FS limit.
pub const GUEST_FS_LIMIT: Field = f(0x4808);
/// Guest GS limit.
pub const GUEST_GS_LIMIT: Field = f(0x480a);
/// Guest LDTR limit.
pub const GUEST_LDTR_LIMIT: Field = f(0x480c);
/// Guest TR limit.
pub const GUEST_TR_LIMIT: Field = f(0x480e);
/// Guest GDTR limit.
pub const GUEST_GDTR_LIMIT: Field = f(0x4810);
/// Guest IDTR limit.
pub const GUEST_IDTR_LIMIT: Field = f(0x4812);
/// Guest ES access rights.
pub const GUEST_ES_AR: Field = f(0x4814);
/// Guest CS access rights.
pub const GUEST_CS_AR: Field = f(0x4816);
/// Guest SS access rights.
pub const GUEST_SS_AR: Field = f(0x4818);
/// Guest DS access rights.
pub const GUEST_DS_AR: Field = f(0x481a);
/// Guest FS access rights.
pub const GUEST_FS_AR: Field = f(0x481c);
/// Guest GS access rights.
pub const GUEST_GS_AR: Field = f(0x481e);
/// Guest LDTR access rights.
pub const GUEST_LDTR_AR: Field = f(0x4820);
/// Guest TR access rights.
pub const GUEST_TR_AR: Field = f(0x4822);
/// Guest interruptibility state.
pub const GUEST_INTERRUPTIBILITY: Field = f(0x4824);
/// Guest activity state.
pub const GUEST_ACTIVITY_STATE: Field = f(0x4826);
/// Guest IA32_SYSENTER_CS.
pub const GUEST_SYSENTER_CS: Field = f(0x482a);
/// VMX-preemption timer value.
pub const PREEMPTION_TIMER_VALUE: Field = f(0x482e);
/// Host IA32_SYSENTER_CS.
pub const HOST_SYSENTER_CS: Field = f(0x4c00);
/// CR0 guest/host mask.
pub const CR0_GUEST_HOST_MASK: Field = f(0x6000);
/// CR4 guest/host mask.
pub const CR4_GUEST_HOST_MASK: Field = f(0x6002);
/// CR0 read shadow.
pub const CR0_READ_SHADOW: Field = f(0x6004);
/// CR4 read shadow.
pub const CR4_READ_SHADOW: Field = f(0x6006);
/// Exit qualification.
pub const EXIT_QUALIFICATION: Field = f(0x6400);
/// Guest-linear address.
pub const GUEST_LINEAR_ADDRESS: Field = f(0x640a);
/// Guest CR0.
pub const GUEST_CR0: Field = f(0x6800);
/// Guest CR3.
pub const GUEST_CR3: Field = f(0x6802);
/// Guest CR4.
pub const GUEST_CR4: Field = f(0x6804);
/// Guest ES base.
pub const GUEST_ES_BASE: Field = f(0x6806);
/// Guest CS base.
pub const GUEST_CS_BASE: Field = f(0x6808);
/// Guest SS base.
pub const GUEST_SS_BASE: Field = f(0x680a);
/// Guest DS base.
pub const GUEST_DS_BASE: Field = f(0x680c);
/// Guest FS base.
pub const GUEST_FS_BASE: Field = f(0x680e);
/// Guest GS base.
pub const GUEST_GS_BASE: Field = f(0x6810);
/// Guest LDTR base.
pub const GUEST_LDTR_BASE: Field = f(0x6812);
/// Guest TR base.
pub const GUEST_TR_BASE: Field = f(0x6814);
/// Guest GDTR base.
pub const GUEST_GDTR_BASE: Field = f(0x6816);
/// Guest IDTR base.
pub const GUEST_IDTR_BASE: Field = f(0x6818);
/// Guest DR7.
pub const GUEST_DR7: Field = f(0x681a);
/// Guest RSP.
pub const GUEST_RSP: Field = f(0x681c);
/// Guest RIP.
pub const GUEST_RIP: Field = f(0x681e);
/// Guest RFLAGS.
pub const GUEST_RFLAGS: Field = f(0x6820);
/// Guest pending debug exceptions.
pub const GUEST_PENDING_DBG_EXCEPTIONS: Field = f(0x6822);
/// Guest IA32_SYSENTER_ESP.
pub const GUEST_SYSENTER_ESP: Field = f(0x6824);
/// Guest IA32_SYSENTER_EIP.
pub const GUEST_SYSENTER_EIP: Field = f(0x6826);
/// Host CR0.
pub const HOST_CR0: Field = f(0x6c00);
/// Host CR3.
pub const HOST_CR3: Field = f(0x6c02);
/// Host CR4.
pub const HOST_CR4: Field = f(0x6c04);
/// Host FS base.
pub const HOST_FS_BASE: Field = f(0x6c06);
/// Host GS base.
pub const HOST_GS_BASE: Field = f(0x6c08);
/// Host TR base.
pub const HOST_TR_BASE: Field = f(0x6c0a);
/// Host GDTR base.
pub const HOST_GDTR_BASE: Field = f(0x6c0c);
/// Host IDTR base.
pub const HOST_IDTR_BASE: Field = f(0x6c0e);
/// Host IA32_SYSENTER_ESP.
pub const HOST_SYSENTER_ESP: Field = f(0x6c10);
/// Host IA32_SYSENTER_EIP.
pub const HOST_SYSENTER_EIP: Field = f(0x6c12);
/// Host RSP.
pub const HOST_RSP: Field = f(0x6c14);
/// Host RIP.
pub const HOST_RIP: Field = f(0x6c16);
