// SPDX-License-Identifier: GPL-2.0
//! Architectural definitions shared by everything (pure logic: no `kernel`
//! crate, no unsafe): control-register, EFER and RFLAGS bits, segment
//! access rights, MSR numbers and exception vectors. Each is written once,
//! here. `paging` walks the guest's page tables; `decode` and `emulate`:
//! the instructions MMIO exits emulate.

pub mod decode;
pub mod emulate;
pub mod paging;

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
    /// Virtual-8086 mode extensions.
    pub const VME: u64 = 1 << 0;
    /// Protected-mode virtual interrupts.
    pub const PVI: u64 = 1 << 1;
    /// Time stamp disable (RDTSC at CPL 0 only).
    pub const TSD: u64 = 1 << 2;
    /// Debugging extensions.
    pub const DE: u64 = 1 << 3;
    /// Page size extensions (4-MiB pages with 32-bit paging).
    pub const PSE: u64 = 1 << 4;
    /// Physical address extension.
    pub const PAE: u64 = 1 << 5;
    /// Machine-check enable.
    pub const MCE: u64 = 1 << 6;
    /// Page global enable.
    pub const PGE: u64 = 1 << 7;
    /// Performance-monitoring counter enable (RDPMC at any CPL).
    pub const PCE: u64 = 1 << 8;
    /// FXSAVE/FXRSTOR and SSE enabled by the OS.
    pub const OSFXSR: u64 = 1 << 9;
    /// Unmasked SIMD floating-point exceptions handled by the OS.
    pub const OSXMMEXCPT: u64 = 1 << 10;
    /// User-mode instruction prevention.
    pub const UMIP: u64 = 1 << 11;
    /// 57-bit linear addresses (5-level paging).
    pub const LA57: u64 = 1 << 12;
    /// VMX enable: set while in VMX operation (IA32_VMX_CR4_FIXED0).
    pub const VMXE: u64 = 1 << 13;
    /// RDFSBASE/RDGSBASE/WRFSBASE/WRGSBASE enable.
    pub const FSGSBASE: u64 = 1 << 16;
    /// PCID enable.
    pub const PCIDE: u64 = 1 << 17;
    /// Supervisor-mode execution prevention.
    pub const SMEP: u64 = 1 << 20;
    /// Supervisor-mode access prevention.
    pub const SMAP: u64 = 1 << 21;
    /// XSAVE and processor extended states enabled.
    pub const OSXSAVE: u64 = 1 << 18;
    /// Protection keys for user-mode pages.
    pub const PKE: u64 = 1 << 22;
    /// Control-flow enforcement technology.
    pub const CET: u64 = 1 << 23;
}

/// Debug registers DR6 and DR7 (SDM Vol. 3B 18.2).
pub mod dr {
    /// DR6 bits that read as 1 when no debug condition set them ("active
    /// low" RTM bit 16 and bus-lock bit 11 included); the reset value.
    pub const DR6_FIXED_1: u64 = 0xffff_0ff0;
    /// DR6 B0-B3: which breakpoint matched.
    pub const DR6_TRAP_BITS: u64 = 0xf;
    /// DR6 bits that are 1 when inactive: RTM (16) and BLD (11).
    pub const DR6_ACTIVE_LOW: u64 = (1 << 16) | (1 << 11);
    /// DR6 BS: single step.
    pub const DR6_BS: u64 = 1 << 14;
    /// The bits a #DB reports (pending-debug-exceptions format): B0-B3,
    /// BLD (11), BD (13), BS (14), BT (15), RTM (16).
    pub const DB_PAYLOAD: u64 = 0xf | (1 << 11) | (1 << 13) | (1 << 14) | (1 << 15) | (1 << 16);
    /// DR7 reset value (bit 10 reads as 1).
    pub const DR7_FIXED_1: u64 = 0x400;
    /// DR7 GD: general detect (MOV DR raises #DB; cleared when #DB is
    /// delivered, SDM Vol. 3B 18.2.4).
    pub const DR7_GD: u64 = 1 << 13;
}

/// XCR0 state components (SDM Vol. 1 13.3).
pub mod xcr0 {
    /// x87 state: always 1.
    pub const X87: u64 = 1 << 0;
    /// SSE state.
    pub const SSE: u64 = 1 << 1;
    /// AVX state (upper halves of YMM).
    pub const AVX: u64 = 1 << 2;
    /// MPX bounds registers.
    pub const BNDREGS: u64 = 1 << 3;
    /// MPX bounds configuration.
    pub const BNDCSR: u64 = 1 << 4;
    /// AVX-512: opmask, ZMM_Hi256, Hi16_ZMM (all or none).
    pub const AVX512: u64 = 0b111 << 5;
    /// PKRU.
    pub const PKRU: u64 = 1 << 9;
    /// AMX TILECFG.
    pub const TILECFG: u64 = 1 << 17;
    /// AMX TILEDATA.
    pub const TILEDATA: u64 = 1 << 18;
    /// AMX: TILECFG and TILEDATA (both or none).
    pub const AMX: u64 = TILECFG | TILEDATA;
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
    /// Carry.
    pub const CF: u64 = 1 << 0;
    /// Parity (of the low byte of a result).
    pub const PF: u64 = 1 << 2;
    /// Auxiliary carry (out of bit 3).
    pub const AF: u64 = 1 << 4;
    /// Zero.
    pub const ZF: u64 = 1 << 6;
    /// Sign.
    pub const SF: u64 = 1 << 7;
    /// Direction: string instructions step down when set.
    pub const DF: u64 = 1 << 10;
    /// Overflow.
    pub const OF: u64 = 1 << 11;
    /// Bit 1 is always 1.
    pub const FIXED: u64 = 1 << 1;
    /// Trap flag (single step).
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
    /// IA32_TIME_STAMP_COUNTER.
    pub const TSC: u32 = 0x10;
    /// IA32_PLATFORM_ID.
    pub const PLATFORM_ID: u32 = 0x17;
    /// IA32_APIC_BASE.
    pub const APIC_BASE: u32 = 0x1b;
    /// IA32_FEATURE_CONTROL.
    pub const FEATURE_CONTROL: u32 = 0x3a;
    /// IA32_TSC_ADJUST.
    pub const TSC_ADJUST: u32 = 0x3b;
    /// IA32_SPEC_CTRL.
    pub const SPEC_CTRL: u32 = 0x48;
    /// IA32_PRED_CMD (write-only).
    pub const PRED_CMD: u32 = 0x49;
    /// IA32_BIOS_UPDT_TRIG (microcode update trigger, write-only).
    pub const BIOS_UPDT_TRIG: u32 = 0x79;
    /// IA32_BIOS_SIGN_ID (microcode revision in bits 63:32).
    pub const BIOS_SIGN_ID: u32 = 0x8b;
    /// MSR_PLATFORM_INFO (model-specific; SDM Vol. 4 Table 2-3 and on).
    pub const PLATFORM_INFO: u32 = 0xce;
    /// IA32_MTRRCAP.
    pub const MTRRCAP: u32 = 0xfe;
    /// IA32_ARCH_CAPABILITIES.
    pub const ARCH_CAPABILITIES: u32 = 0x10a;
    /// IA32_FLUSH_CMD.
    pub const FLUSH_CMD: u32 = 0x10b;
    /// IA32_SYSENTER_CS.
    pub const SYSENTER_CS: u32 = 0x174;
    /// IA32_SYSENTER_ESP.
    pub const SYSENTER_ESP: u32 = 0x175;
    /// IA32_SYSENTER_EIP.
    pub const SYSENTER_EIP: u32 = 0x176;
    /// IA32_MCG_CAP.
    pub const MCG_CAP: u32 = 0x179;
    /// IA32_MCG_STATUS.
    pub const MCG_STATUS: u32 = 0x17a;
    /// IA32_MCG_CTL.
    pub const MCG_CTL: u32 = 0x17b;
    /// IA32_MISC_ENABLE.
    pub const MISC_ENABLE: u32 = 0x1a0;
    /// IA32_DEBUGCTL.
    pub const DEBUGCTL: u32 = 0x1d9;
    /// IA32_MTRR_PHYSBASE0; PHYSBASEn is 0x200 + 2n, PHYSMASKn 0x201 + 2n.
    pub const MTRR_PHYSBASE0: u32 = 0x200;
    /// IA32_MTRR_FIX64K_00000.
    pub const MTRR_FIX64K_00000: u32 = 0x250;
    /// IA32_MTRR_FIX16K_80000.
    pub const MTRR_FIX16K_80000: u32 = 0x258;
    /// IA32_MTRR_FIX16K_A0000.
    pub const MTRR_FIX16K_A0000: u32 = 0x259;
    /// IA32_MTRR_FIX4K_C0000; the eight 4-KiB ones are 0x268..=0x26f.
    pub const MTRR_FIX4K_C0000: u32 = 0x268;
    /// IA32_MTRR_FIX4K_F8000.
    pub const MTRR_FIX4K_F8000: u32 = 0x26f;
    /// IA32_PAT.
    pub const PAT: u32 = 0x277;
    /// IA32_MTRR_DEF_TYPE.
    pub const MTRR_DEF_TYPE: u32 = 0x2ff;
    /// IA32_PERF_CAPABILITIES.
    pub const PERF_CAPABILITIES: u32 = 0x345;
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
    /// IA32_TSC_AUX.
    pub const TSC_AUX: u32 = 0xc000_0103;
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
    /// Debug.
    pub const DB: u8 = 1;
    /// Non-maskable interrupt.
    pub const NMI: u8 = 2;
    /// Invalid opcode.
    pub const UD: u8 = 6;
    /// Stack fault.
    pub const SS: u8 = 12;
    /// General protection.
    pub const GP: u8 = 13;
    /// Page fault.
    pub const PF: u8 = 14;
    /// Alignment check.
    pub const AC: u8 = 17;
    /// Machine check.
    pub const MC: u8 = 18;
}

/// Whether `a` is canonical with 48 address bits (SDM Vol. 1 3.3.7.1).
pub const fn canonical(a: u64) -> bool {
    ((a as i64) << 16 >> 16) as u64 == a
}
