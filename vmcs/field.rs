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
