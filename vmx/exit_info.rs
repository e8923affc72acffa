// SPDX-License-Identifier: GPL-2.0
//! VM-exit information (pure logic): basic exit reasons and the decoding of
//! exit qualifications. SDM Vol. 3C 28.2 and Appendix C.

/// Basic exit reasons (SDM Vol. 3D Appendix C).
pub mod reason {
    /// Exception or NMI.
    pub const EXCEPTION_NMI: u16 = 0;
    /// External interrupt.
    pub const EXTERNAL_INTERRUPT: u16 = 1;
    /// Triple fault.
    pub const TRIPLE_FAULT: u16 = 2;
    /// CPUID.
    pub const CPUID: u16 = 10;
    /// HLT.
    pub const HLT: u16 = 12;
    /// Interrupt window: the guest can take an external interrupt.
    pub const INTERRUPT_WINDOW: u16 = 7;
    /// NMI window: the guest can take an NMI.
    pub const NMI_WINDOW: u16 = 8;
    /// MOV DR.
    pub const MOV_DR: u16 = 29;
    /// Monitor trap flag: one instruction done.
    pub const MTF: u16 = 37;
    /// PAUSE.
    pub const PAUSE: u16 = 40;
    /// XSETBV.
    pub const XSETBV: u16 = 55;
    /// VMCALL.
    pub const VMCALL: u16 = 18;
    /// VMXON (last of the VMX instructions, 19..=27).
    pub const VMXON: u16 = 27;
    /// Control-register access.
    pub const CR_ACCESS: u16 = 28;
    /// I/O instruction.
    pub const IO: u16 = 30;
    /// RDMSR.
    pub const RDMSR: u16 = 31;
    /// WRMSR.
    pub const WRMSR: u16 = 32;
    /// VM-entry failure due to invalid guest state.
    pub const INVALID_GUEST_STATE: u16 = 33;
    /// VM-entry failure due to a machine-check event.
    pub const MACHINE_CHECK_ENTRY: u16 = 41;
    /// WBINVD or WBNOINVD.
    pub const WBINVD: u16 = 54;
    /// EPT violation.
    pub const EPT_VIOLATION: u16 = 48;
    /// INVEPT.
    pub const INVEPT: u16 = 50;
    /// VMX-preemption timer expired.
    pub const PREEMPTION_TIMER: u16 = 52;
    /// INVVPID.
    pub const INVVPID: u16 = 53;
    /// VMFUNC.
    pub const VMFUNC: u16 = 59;
}

/// Guest interruptibility-state bits (SDM Vol. 3C 25.4.2, Table 25-3).
pub mod interruptibility {
    /// Blocking by STI.
    pub const STI: u32 = 1 << 0;
    /// Blocking by MOV SS.
    pub const MOV_SS: u32 = 1 << 1;
    /// Blocking by NMI.
    pub const NMI: u32 = 1 << 3;
}

/// The exit-reason field (SDM Vol. 3C 25.9.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExitReason(pub u32);

impl ExitReason {
    /// Bits 15:0: the basic exit reason.
    pub const fn basic(self) -> u16 {
        self.0 as u16
    }
    /// Bit 31: the exit is a VM-entry failure.
    pub const fn entry_failed(self) -> bool {
        self.0 & (1 << 31) != 0
    }
    /// Whether the exit reports the length of the instruction that caused
    /// it (SDM Vol. 3C 28.2.5): the exits caused by executing an
    /// instruction, which the handler may step over.
    pub const fn has_instruction_length(self) -> bool {
        matches!(self.basic(), 10..=16 | 18..=32 | 36 | 39 | 40 | 46 | 47 | 50 | 51 | 53..=55 | 57..=61 | 63 | 64)
    }
    /// Whether the guest executed a VMX instruction (which rvmx does not
    /// virtualize: the guest gets #UD).
    pub const fn is_vmx_instruction(self) -> bool {
        let b = self.basic();
        (b >= reason::VMCALL && b <= reason::VMXON)
            || b == reason::INVEPT
            || b == reason::INVVPID
            || b == reason::VMFUNC
    }
}

/// An I/O-instruction exit qualification (SDM Vol. 3C 28.2.1, Table 28-5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IoQual {
    /// Access size in bytes: 1, 2 or 4.
    pub size: u8,
    /// IN (true) or OUT.
    pub is_in: bool,
    /// INS/OUTS.
    pub string: bool,
    /// REP prefix.
    pub rep: bool,
    /// Port number.
    pub port: u16,
}

impl IoQual {
    /// Decodes the qualification; `None` for a size encoding the SDM does
    /// not define (bits 2:0 = 0, 1 or 3 only).
    pub const fn decode(q: u64) -> Option<IoQual> {
        let size = match q & 7 {
            0 => 1,
            1 => 2,
            3 => 4,
            _ => return None,
        };
        Some(IoQual {
            size,
            is_in: q & (1 << 3) != 0,
            string: q & (1 << 4) != 0,
            rep: q & (1 << 5) != 0,
            port: (q >> 16) as u16,
        })
    }

    /// The bytes an access of this size takes from a register.
    pub const fn mask(self) -> u64 {
        match self.size {
            1 => 0xff,
            2 => 0xffff,
            _ => 0xffff_ffff,
        }
    }
}

/// Writes `data` into the low `size` bytes of `rax` as IN does: 1 and 2
/// bytes keep the rest of RAX, 4 bytes zero-extend into RAX (SDM Vol. 1
/// 3.4.1.1: 32-bit results clear bits 63:32).
pub const fn in_result(rax: u64, size: u8, data: u64) -> u64 {
    match size {
        1 => (rax & !0xff) | (data & 0xff),
        2 => (rax & !0xffff) | (data & 0xffff),
        _ => data & 0xffff_ffff,
    }
}

/// A control-register-access exit qualification (SDM Vol. 3C Table 28-3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrAccess {
    /// MOV to CRn from general register `gpr`.
    MovTo {
        /// Control register number.
        cr: u8,
        /// GPR index (0 = RAX ... 15 = R15).
        gpr: u8,
    },
    /// MOV from CRn to general register `gpr`.
    MovFrom {
        /// Control register number.
        cr: u8,
        /// GPR index.
        gpr: u8,
    },
    /// CLTS.
    Clts,
    /// LMSW with the 16-bit source `data`.
    Lmsw {
        /// The source operand.
        data: u16,
    },
}

impl CrAccess {
    /// Decodes the qualification.
    pub const fn decode(q: u64) -> CrAccess {
        let cr = (q & 0xf) as u8;
        let gpr = ((q >> 8) & 0xf) as u8;
        match (q >> 4) & 3 {
            0 => CrAccess::MovTo { cr, gpr },
            1 => CrAccess::MovFrom { cr, gpr },
            2 => CrAccess::Clts,
            _ => CrAccess::Lmsw { data: (q >> 16) as u16 },
        }
    }
}

/// An EPT-violation exit qualification (SDM Vol. 3C Table 28-7).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EptQual(pub u64);

impl EptQual {
    /// The access was a data read.
    pub const fn read(self) -> bool {
        self.0 & 1 != 0
    }
    /// The access was a data write.
    pub const fn write(self) -> bool {
        self.0 & 2 != 0
    }
    /// The access was an instruction fetch.
    pub const fn fetch(self) -> bool {
        self.0 & 4 != 0
    }
    /// The translation allowed reads/writes/execution (bits 5:3): zero means
    /// the guest-physical address is not mapped at all.
    pub const fn mapped(self) -> bool {
        self.0 & 0x38 != 0
    }
}

/// Interruption information, as in the VM-exit and VM-entry
/// interruption-information fields (SDM Vol. 3C 25.9.2, 25.8.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IntrInfo(pub u32);

/// Interruption type: hardware exception.
pub const INTR_TYPE_HW_EXCEPTION: u32 = 3;
/// Interruption type: NMI.
pub const INTR_TYPE_NMI: u32 = 2;
/// Interruption type: external interrupt.
pub const INTR_TYPE_EXTERNAL: u32 = 0;
/// Interruption type: software interrupt (INT n).
pub const INTR_TYPE_SOFT_INTR: u32 = 4;
/// Interruption type: privileged software exception (ICEBP, INT1).
pub const INTR_TYPE_PRIV_SOFT_EXCEPTION: u32 = 5;
/// Interruption type: software exception (INT3, INTO).
pub const INTR_TYPE_SOFT_EXCEPTION: u32 = 6;

impl IntrInfo {
    /// Bit 31: the field is valid.
    pub const fn valid(self) -> bool {
        self.0 & (1 << 31) != 0
    }
    /// Bits 10:8: the type.
    pub const fn kind(self) -> u32 {
        (self.0 >> 8) & 7
    }
    /// Bit 11: an error code is delivered.
    pub const fn has_error_code(self) -> bool {
        self.0 & (1 << 11) != 0
    }
    /// Whether this is hardware exception `vector`.
    pub const fn is_hw_exception(self, vector: u8) -> bool {
        self.valid() && self.kind() == INTR_TYPE_HW_EXCEPTION && self.0 as u8 == vector
    }
    /// Whether this is an NMI.
    pub const fn is_nmi(self) -> bool {
        self.valid() && self.kind() == INTR_TYPE_NMI
    }
    /// Bits 7:0: the vector.
    pub const fn vector(self) -> u8 {
        self.0 as u8
    }
    /// Software interrupts and exceptions: delivery needs the instruction
    /// length (SDM Vol. 3C 27.6.1.1).
    pub const fn needs_length(self) -> bool {
        matches!(self.kind(), INTR_TYPE_SOFT_INTR | INTR_TYPE_PRIV_SOFT_EXCEPTION | INTR_TYPE_SOFT_EXCEPTION)
    }
    /// An event of type `kind` and `vector` to inject.
    pub const fn event(kind: u32, vector: u8, has_error_code: bool) -> IntrInfo {
        let ec = if has_error_code { 1 << 11 } else { 0 };
        IntrInfo((1 << 31) | ec | (kind << 8) | vector as u32)
    }
    /// A hardware exception to inject, with or without an error code.
    pub const fn exception(vector: u8, has_error_code: bool) -> IntrInfo {
        let ec = if has_error_code { 1 << 11 } else { 0 };
        IntrInfo((1 << 31) | ec | (INTR_TYPE_HW_EXCEPTION << 8) | vector as u32)
    }
}
