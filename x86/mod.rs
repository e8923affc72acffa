// SPDX-License-Identifier: GPL-2.0
//! Architectural definitions shared by everything (pure logic: no `kernel`
//! crate, no unsafe): control-register, EFER and RFLAGS bits, segment
//! access rights, MSR numbers and exception vectors. Each is written once,
//! here.

/// CR0 bits (SDM Vol. 3A 2.5).
pub mod cr0 {
    /// Protection enable.
    pub const PE: u64 = 1 << 0;
    /// Extension type (hardwired to 1 on modern CPUs).
    pub const ET: u64 = 1 << 4;
    /// Numeric error: forced to 1 in VMX operation (IA32_VMX_CR0_FIXED0).
    pub const NE: u64 = 1 << 5;
    /// Write protect.
    pub const WP: u64 = 1 << 16;
    /// Alignment mask (alignment checks at CPL 3 with RFLAGS.AC).
    pub const AM: u64 = 1 << 18;
    /// Not write-through.
    pub const NW: u64 = 1 << 29;
    /// Cache disable.
    pub const CD: u64 = 1 << 30;
    /// Paging.
    pub const PG: u64 = 1 << 31;
}

/// CR4 bits (SDM Vol. 3A 2.5).
pub mod cr4 {
    /// Physical address extension.
    pub const PAE: u64 = 1 << 5;
    /// VMX enable: set while in VMX operation (IA32_VMX_CR4_FIXED0).
    pub const VMXE: u64 = 1 << 13;
    /// PCID enable.
    pub const PCIDE: u64 = 1 << 17;
    /// Protection keys for user-mode pages.
    pub const PKE: u64 = 1 << 22;
    /// Control-flow enforcement technology.
    pub const CET: u64 = 1 << 23;
}

/// IA32_EFER bits (SDM Vol. 3A 2.2.1).
pub mod efer {
    /// SYSCALL enable.
    pub const SCE: u64 = 1 << 0;
    /// IA-32e mode enable.
    pub const LME: u64 = 1 << 8;
    /// IA-32e mode active.
    pub const LMA: u64 = 1 << 10;
    /// Execute-disable enable.
    pub const NXE: u64 = 1 << 11;
}

/// RFLAGS bits (SDM Vol. 1 3.4.3).
pub mod rflags {
    /// Bit 1 is always 1.
    pub const FIXED: u64 = 1 << 1;
    /// Trap flag (single-step).
    pub const TF: u64 = 1 << 8;
    /// Interrupt enable.
    pub const IF: u64 = 1 << 9;
    /// Virtual-8086 mode.
    pub const VM: u64 = 1 << 17;
    /// Alignment check (with CR0.AM, at CPL 3).
    pub const AC: u64 = 1 << 18;
    /// Bits that must be 0: 63:22, 15, 5 and 3.
    pub const RESERVED: u64 = !0x3f_ffff | (1 << 15) | (1 << 5) | (1 << 3);
}

/// Segment access rights in the VMCS format (SDM Vol. 3C 25.4.1, Table 25-2).
pub mod ar {
    /// Present, S, execute/read, accessed code.
    pub const CODE: u32 = 0x9b;
    /// Present, S, read/write, accessed data.
    pub const DATA: u32 = 0x93;
    /// Present busy 32/64-bit TSS.
    pub const TSS_BUSY: u32 = 0x8b;
    /// Present LDT.
    pub const LDT: u32 = 0x82;
    /// Bit 16: the segment is unusable.
    pub const UNUSABLE: u32 = 1 << 16;
    /// Bits 31:17 and 11:8 are reserved (must be 0).
    pub const RESERVED: u32 = 0xfffe_0f00;
}

/// MSR numbers (SDM Vol. 4, Table 2-2).
pub mod msr {
    /// IA32_FEATURE_CONTROL.
    pub const FEATURE_CONTROL: u32 = 0x3a;
    /// IA32_ARCH_CAPABILITIES.
    pub const ARCH_CAPABILITIES: u32 = 0x10a;
    /// IA32_FLUSH_CMD.
    pub const FLUSH_CMD: u32 = 0x10b;
    /// IA32_DEBUGCTL.
    pub const DEBUGCTL: u32 = 0x1d9;
    /// IA32_SYSENTER_CS.
    pub const SYSENTER_CS: u32 = 0x174;
    /// IA32_SYSENTER_ESP.
    pub const SYSENTER_ESP: u32 = 0x175;
    /// IA32_SYSENTER_EIP.
    pub const SYSENTER_EIP: u32 = 0x176;
    /// IA32_PAT.
    pub const PAT: u32 = 0x277;
    /// IA32_EFER.
    pub const EFER: u32 = 0xc000_0080;
    /// IA32_STAR.
    pub const STAR: u32 = 0xc000_0081;
    /// IA32_LSTAR.
    pub const LSTAR: u32 = 0xc000_0082;
    /// IA32_CSTAR.
    pub const CSTAR: u32 = 0xc000_0083;
    /// IA32_FMASK.
    pub const SFMASK: u32 = 0xc000_0084;
    /// IA32_FS_BASE.
    pub const FS_BASE: u32 = 0xc000_0100;
    /// IA32_GS_BASE.
    pub const GS_BASE: u32 = 0xc000_0101;
    /// IA32_KERNEL_GS_BASE.
    pub const KERNEL_GS_BASE: u32 = 0xc000_0102;
}

/// IA32_FEATURE_CONTROL bits (SDM Vol. 3C 24.7) and what to do with them.
pub mod feature_control {
    /// Lock: the MSR cannot be written until reset.
    pub const LOCKED: u64 = 1 << 0;
    /// VMXON allowed outside SMX operation.
    pub const VMX_OUTSIDE_SMX: u64 = 1 << 2;

    /// What IA32_FEATURE_CONTROL allows.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Verdict {
        /// Locked with VMX allowed.
        Allowed,
        /// Unlocked: write this value (VMX allowed, locked) first.
        Lock(u64),
        /// Locked with VMX outside SMX disallowed (by the firmware).
        Disabled,
    }

    /// Decides from the MSR's value.
    pub const fn verdict(fc: u64) -> Verdict {
        if fc & LOCKED == 0 {
            Verdict::Lock(fc | LOCKED | VMX_OUTSIDE_SMX)
        } else if fc & VMX_OUTSIDE_SMX == 0 {
            Verdict::Disabled
        } else {
            Verdict::Allowed
        }
    }
}

/// Exception vectors (SDM Vol. 3A 6.3.1).
pub mod vector {
    /// Invalid opcode.
    pub const UD: u8 = 6;
    /// General protection.
    pub const GP: u8 = 13;
    /// Alignment check.
    pub const AC: u8 = 17;
    /// Machine check.
    pub const MC: u8 = 18;
}

/// Whether `a` is canonical with 48 address bits (SDM Vol. 1 3.3.7.1).
pub const fn canonical(a: u64) -> bool {
    ((a as i64) << 16 >> 16) as u64 == a
}
