// SPDX-License-Identifier: GPL-2.0
//! The guest's CPUID table (pure logic; SDM Vol. 2A, CPUID).
//!
//! A vCPU answers CPUID from a table of [`CpuidEntry`]s: userland's (set
//! after [`validate`] against [`supported`]), or [`default_table`]. Both
//! start from the host's values and keep only what rvmx can give: an
//! allowlist per feature register, so a host bit rvmx does not know never
//! reaches a guest. Features that need rvmx's help (RDTSCP, INVPCID, XSAVE,
//! PKU, a local APIC, SPEC_CTRL, ...) appear only when [`Enabled`] says the
//! VMCS and the run loop provide them.
//!
//! The run loop answers a CPUID exit with [`answer`]: the table's entry
//! (Intel's out-of-range rule included, [`lookup`]) with the fields that
//! follow the vCPU's state patched in ([`Dynamic`]): OSXSAVE and OSPKE
//! follow the guest's CR4, the APIC IDs, XSAVE area sizes for the guest's
//! current XCR0 (the XSETBV handler keeps it and checks it against
//! [`guest_xcr0_mask`]).
//!
//! Hidden whatever the host has (no VMCS/run-loop support in rvmx):
//! - leaf 1 ECX: DTES64, MONITOR/MWAIT (MWAIT exits), DS-CPL, VMX, SMX, EST,
//!   TM2, CNXT-ID, SDBG, xTPR, PDCM, DCA; EDX: PSN, DS, ACPI, TM, PBE;
//! - leaf 7.0 EBX: SGX, RDT-M, MPX, RDT-A, PT; ECX: WAITPKG,
//!   CET_SS, TME, MAWAU, KL, BUS_LOCK_DETECT, ENQCMD, SGX_LC, PKS; EDX:
//!   SGX-KEYS, UINTR, SRBDS_CTRL, RTM_ALWAYS_ABORT, TSX_FORCE_ABORT, HYBRID,
//!   PCONFIG, ARCH_LBR, CET_IBT, CORE_CAPABILITIES;
//! - leaf 7.1 EAX: RAO-INT, LASS, ArchPerfmonExt, FRED, LKGS, NMI_SRC,
//!   HRESET, LAM, MSRLIST; EDX: USER_MSR, UIRET_UIF, CET_SSS, AVX10, APX;
//!   leaf 7.2 EDX: UC-lock disable, MONITOR_MITG_NO;
//! - leaf 0xd.1: XSAVES and XFD (IA32_XSS = 0); XCR0 MPX and APX states;
//! - leaves 3 (PSN), 5 (MONITOR), 6 (thermal/power, but ARAT with a local
//!   APIC, as KVM), 9 (DCA), 0xa (PMU), 0xf/0x10 (RDT), 0x12 (SGX), 0x14
//!   (PT), 0x17 (SoC), 0x19 (Key Locker), 0x1a (hybrid), 0x1b (PCONFIG),
//!   0x1c (arch LBR): answered as zeros; 0x20 (HRESET) and above are past
//!   [`MAX_BASIC`].
//!
//! Decisions (KVM as a guide): PCID is passed (rvmx always runs with EPT
//! and VPID; PCIDs need no INVPCID, guests fall back to MOV CR3); 1-GByte
//! pages are passed (guest paging is the hardware's under EPT, whatever
//! size the EPT maps); MD_CLEAR is passed (VERW does not exit); topology
//! leaves 0xb/0x1f describe no topology (userland sets one; KVM does the
//! same), leaf 4 and leaf 1 EBX[23:16] are the host's; leaves 0x15/0x16
//! are the host's (the guest's TSC ticks at the host's rate: offset, never
//! scaled).

use crate::x86::{cr4, xcr0};

/// Most entries a table may hold (KVM allows 256; the default table needs
/// about 60 on current CPUs).
pub const MAX_ENTRIES: usize = 128;

/// [`CpuidEntry::flags`]: the entry answers only for its `subleaf` (ECX);
/// without it, for every subleaf. Same value as KVM_CPUID_FLAG_SIGNIFCANT_INDEX.
pub const SUBLEAF_SIGNIFICANT: u32 = 1;

/// Highest basic leaf rvmx describes (0x1f: V2 extended topology).
pub const MAX_BASIC: u32 = 0x1f;
/// Highest extended leaf rvmx describes (0x8000_0008: address sizes).
pub const MAX_EXT: u32 = 0x8000_0008;

/// Hypervisor leaves: 0x4000_0000 gives the highest one and the vendor.
pub const HV_LEAF: u32 = 0x4000_0000;
/// "rvmxrvmxrvmx" as EBX, ECX, EDX.
pub const HV_SIGNATURE: [u32; 3] = [
    u32::from_le_bytes(*b"rvmx"),
    u32::from_le_bytes(*b"rvmx"),
    u32::from_le_bytes(*b"rvmx"),
];

/// One CPUID answer: [EAX, EBX, ECX, EDX] for `leaf` (EAX) and, with
/// [`SUBLEAF_SIGNIFICANT`] in `flags`, `subleaf` (ECX). `repr(C)` so the
/// ioctl can copy userland's array as is.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuidEntry {
    /// The leaf (input EAX).
    pub leaf: u32,
    /// The subleaf (input ECX); ignored without [`SUBLEAF_SIGNIFICANT`].
    pub subleaf: u32,
    /// [`SUBLEAF_SIGNIFICANT`] or 0.
    pub flags: u32,
    /// EAX, EBX, ECX, EDX.
    pub regs: [u32; 4],
}

/// An output register of CPUID (the index into [`CpuidEntry::regs`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reg {
    /// EAX.
    Eax = 0,
    /// EBX.
    Ebx = 1,
    /// ECX.
    Ecx = 2,
    /// EDX.
    Edx = 3,
}

/// Leaf 1 ECX (SDM Vol. 2A Table 3-10). Hidden bits have no constant: 2
/// DTES64, 3 MONITOR (MONITOR/MWAIT exit), 4 DS-CPL, 6 SMX, 7 EST, 8 TM2,
/// 10 CNXT-ID, 11 SDBG, 14 xTPR, 15 PDCM, 18 DCA; VMX has one (the host's
/// check in vmx/mod.rs).
pub mod leaf1_ecx {
    /// SSE3.
    pub const SSE3: u32 = 1 << 0;
    /// PCLMULQDQ.
    pub const PCLMULQDQ: u32 = 1 << 1;
    /// VMX (SDM Vol. 3C 24.6); guests get no nested VMX.
    pub const VMX: u32 = 1 << 5;
    /// SSSE3.
    pub const SSSE3: u32 = 1 << 9;
    /// FMA (VEX: needs AVX state).
    pub const FMA: u32 = 1 << 12;
    /// CMPXCHG16B.
    pub const CX16: u32 = 1 << 13;
    /// Process-context identifiers.
    pub const PCID: u32 = 1 << 17;
    /// SSE4.1.
    pub const SSE4_1: u32 = 1 << 19;
    /// SSE4.2.
    pub const SSE4_2: u32 = 1 << 20;
    /// x2APIC (with `Enabled::x2apic`).
    pub const X2APIC: u32 = 1 << 21;
    /// MOVBE.
    pub const MOVBE: u32 = 1 << 22;
    /// POPCNT.
    pub const POPCNT: u32 = 1 << 23;
    /// APIC timer TSC-deadline mode (with `Enabled::tsc_deadline`).
    pub const TSC_DEADLINE: u32 = 1 << 24;
    /// AES-NI.
    pub const AES: u32 = 1 << 25;
    /// XSAVE/XRSTOR/XSETBV/XGETBV (with `Enabled::xsave`).
    pub const XSAVE: u32 = 1 << 26;
    /// CR4.OSXSAVE (dynamic: follows the guest's CR4).
    pub const OSXSAVE: u32 = 1 << 27;
    /// AVX (with the AVX XCR0 state).
    pub const AVX: u32 = 1 << 28;
    /// F16C (VEX: needs AVX state).
    pub const F16C: u32 = 1 << 29;
    /// RDRAND.
    pub const RDRAND: u32 = 1 << 30;
    /// Running under a hypervisor (always set).
    pub const HYPERVISOR: u32 = 1 << 31;
}

/// Leaf 1 EDX (SDM Vol. 2A Table 3-11). Hidden: 18 PSN, 21 DS, 22 ACPI,
/// 29 TM, 31 PBE.
pub mod leaf1_edx {
    /// x87 FPU.
    pub const FPU: u32 = 1 << 0;
    /// Virtual-8086 mode extensions.
    pub const VME: u32 = 1 << 1;
    /// Debugging extensions.
    pub const DE: u32 = 1 << 2;
    /// Page size extensions.
    pub const PSE: u32 = 1 << 3;
    /// RDTSC.
    pub const TSC: u32 = 1 << 4;
    /// RDMSR/WRMSR.
    pub const MSR: u32 = 1 << 5;
    /// Physical address extension.
    pub const PAE: u32 = 1 << 6;
    /// Machine-check exception.
    pub const MCE: u32 = 1 << 7;
    /// CMPXCHG8B.
    pub const CX8: u32 = 1 << 8;
    /// On-chip APIC (with `Enabled::apic`; dynamic: IA32_APIC_BASE.EN).
    pub const APIC: u32 = 1 << 9;
    /// SYSENTER/SYSEXIT.
    pub const SEP: u32 = 1 << 11;
    /// MTRRs.
    pub const MTRR: u32 = 1 << 12;
    /// Global pages.
    pub const PGE: u32 = 1 << 13;
    /// Machine-check architecture.
    pub const MCA: u32 = 1 << 14;
    /// CMOV.
    pub const CMOV: u32 = 1 << 15;
    /// Page attribute table.
    pub const PAT: u32 = 1 << 16;
    /// 36-bit page size extension.
    pub const PSE36: u32 = 1 << 17;
    /// CLFLUSH.
    pub const CLFSH: u32 = 1 << 19;
    /// MMX.
    pub const MMX: u32 = 1 << 23;
    /// FXSAVE/FXRSTOR.
    pub const FXSR: u32 = 1 << 24;
    /// SSE.
    pub const SSE: u32 = 1 << 25;
    /// SSE2.
    pub const SSE2: u32 = 1 << 26;
    /// Self snoop.
    pub const SS: u32 = 1 << 27;
    /// EBX[23:16] is valid (topology, the host's).
    pub const HTT: u32 = 1 << 28;
}

/// Leaf 6 EAX (thermal and power management).
pub mod leaf6_eax {
    /// APIC timer always running (with `Enabled::apic`, as KVM).
    pub const ARAT: u32 = 1 << 2;
}

/// Leaf 7 subleaf 0 EBX (SDM Vol. 2A Table 3-8, leaf 07H). Hidden: 2 SGX,
/// 12 RDT-M, 14 MPX (IA32_BNDCFGS is not switched), 15 RDT-A, 25 PT.
pub mod leaf7_ebx {
    /// RD/WR FS/GS BASE.
    pub const FSGSBASE: u32 = 1 << 0;
    /// IA32_TSC_ADJUST (with `Enabled::tsc_adjust`).
    pub const TSC_ADJUST: u32 = 1 << 1;
    /// BMI1.
    pub const BMI1: u32 = 1 << 3;
    /// HLE.
    pub const HLE: u32 = 1 << 4;
    /// AVX2 (with AVX state).
    pub const AVX2: u32 = 1 << 5;
    /// x87 FDP updated only on exceptions.
    pub const FDP_EXCPTN_ONLY: u32 = 1 << 6;
    /// SMEP.
    pub const SMEP: u32 = 1 << 7;
    /// BMI2.
    pub const BMI2: u32 = 1 << 8;
    /// Enhanced REP MOVSB/STOSB.
    pub const ERMS: u32 = 1 << 9;
    /// INVPCID (with `Enabled::invpcid`: else INVPCID #UDs, SDM Vol. 3C 26.3).
    pub const INVPCID: u32 = 1 << 10;
    /// RTM.
    pub const RTM: u32 = 1 << 11;
    /// FCS and FDS deprecated.
    pub const ZERO_FCS_FDS: u32 = 1 << 13;
    /// AVX512F (with the AVX-512 states).
    pub const AVX512F: u32 = 1 << 16;
    /// AVX512DQ.
    pub const AVX512DQ: u32 = 1 << 17;
    /// RDSEED.
    pub const RDSEED: u32 = 1 << 18;
    /// ADX.
    pub const ADX: u32 = 1 << 19;
    /// SMAP.
    pub const SMAP: u32 = 1 << 20;
    /// AVX512_IFMA.
    pub const AVX512_IFMA: u32 = 1 << 21;
    /// CLFLUSHOPT.
    pub const CLFLUSHOPT: u32 = 1 << 23;
    /// CLWB.
    pub const CLWB: u32 = 1 << 24;
    /// AVX512PF.
    pub const AVX512PF: u32 = 1 << 26;
    /// AVX512ER.
    pub const AVX512ER: u32 = 1 << 27;
    /// AVX512CD.
    pub const AVX512CD: u32 = 1 << 28;
    /// SHA extensions.
    pub const SHA: u32 = 1 << 29;
    /// AVX512BW.
    pub const AVX512BW: u32 = 1 << 30;
    /// AVX512VL.
    pub const AVX512VL: u32 = 1 << 31;
}

/// Leaf 7 subleaf 0 ECX. Hidden: 5 WAITPKG (no "enable user wait and
/// pause"), 7 CET_SS, 13 TME, 23 KL, 24 BUS_LOCK_DETECT, 29 ENQCMD
/// (IA32_PASID), 30 SGX_LC, 31 PKS.
pub mod leaf7_ecx {
    /// PREFETCHWT1.
    pub const PREFETCHWT1: u32 = 1 << 0;
    /// AVX512_VBMI.
    pub const AVX512_VBMI: u32 = 1 << 1;
    /// UMIP.
    pub const UMIP: u32 = 1 << 2;
    /// Protection keys (with `Enabled::pku`).
    pub const PKU: u32 = 1 << 3;
    /// CR4.PKE (dynamic: follows the guest's CR4).
    pub const OSPKE: u32 = 1 << 4;
    /// AVX512_VBMI2.
    pub const AVX512_VBMI2: u32 = 1 << 6;
    /// GFNI.
    pub const GFNI: u32 = 1 << 8;
    /// VAES (VEX/EVEX: needs AVX state).
    pub const VAES: u32 = 1 << 9;
    /// VPCLMULQDQ (VEX/EVEX: needs AVX state).
    pub const VPCLMULQDQ: u32 = 1 << 10;
    /// AVX512_VNNI.
    pub const AVX512_VNNI: u32 = 1 << 11;
    /// AVX512_BITALG.
    pub const AVX512_BITALG: u32 = 1 << 12;
    /// AVX512_VPOPCNTDQ.
    pub const AVX512_VPOPCNTDQ: u32 = 1 << 14;
    /// 5-level paging.
    pub const LA57: u32 = 1 << 16;
    /// RDPID (needs "enable RDTSCP" too: `Enabled::rdtscp`).
    pub const RDPID: u32 = 1 << 22;
    /// CLDEMOTE.
    pub const CLDEMOTE: u32 = 1 << 25;
    /// MOVDIRI.
    pub const MOVDIRI: u32 = 1 << 27;
    /// MOVDIR64B.
    pub const MOVDIR64B: u32 = 1 << 28;
}

/// Leaf 7 subleaf 0 EDX. Hidden: 5 UINTR, 15 HYBRID, 18 PCONFIG, 19
/// ARCH_LBR, 20 CET_IBT, 30 CORE_CAPABILITIES.
pub mod leaf7_edx {
    /// AVX512_4VNNIW.
    pub const AVX512_4VNNIW: u32 = 1 << 2;
    /// AVX512_4FMAPS.
    pub const AVX512_4FMAPS: u32 = 1 << 3;
    /// Fast short REP MOV.
    pub const FSRM: u32 = 1 << 4;
    /// AVX512_VP2INTERSECT.
    pub const AVX512_VP2INTERSECT: u32 = 1 << 8;
    /// VERW clears CPU buffers (kept: VERW does not exit).
    pub const MD_CLEAR: u32 = 1 << 10;
    /// SERIALIZE.
    pub const SERIALIZE: u32 = 1 << 14;
    /// TSX suspend load address tracking.
    pub const TSXLDTRK: u32 = 1 << 16;
    /// AMX-BF16 (with the AMX states).
    pub const AMX_BF16: u32 = 1 << 22;
    /// AVX512_FP16.
    pub const AVX512_FP16: u32 = 1 << 23;
    /// AMX-TILE.
    pub const AMX_TILE: u32 = 1 << 24;
    /// AMX-INT8.
    pub const AMX_INT8: u32 = 1 << 25;
    /// IBRS and IBPB: IA32_SPEC_CTRL, IA32_PRED_CMD (`Enabled::spec_ctrl`).
    pub const SPEC_CTRL: u32 = 1 << 26;
    /// STIBP (`Enabled::spec_ctrl`).
    pub const STIBP: u32 = 1 << 27;
    /// IA32_FLUSH_CMD (`Enabled::flush_l1d`).
    pub const FLUSH_L1D: u32 = 1 << 28;
    /// IA32_ARCH_CAPABILITIES (`Enabled::arch_capabilities`).
    pub const ARCH_CAPABILITIES: u32 = 1 << 29;
    /// SSBD (`Enabled::spec_ctrl`).
    pub const SSBD: u32 = 1 << 31;
}

/// Leaf 7 subleaf 1 EAX. Hidden: 17 FRED, 22 HRESET, 26 LAM.
pub mod leaf7_1_eax {
    /// SHA512 (VEX: needs AVX state).
    pub const SHA512: u32 = 1 << 0;
    /// SM3 (VEX).
    pub const SM3: u32 = 1 << 1;
    /// SM4 (VEX).
    pub const SM4: u32 = 1 << 2;
    /// AVX-VNNI.
    pub const AVX_VNNI: u32 = 1 << 4;
    /// AVX512_BF16.
    pub const AVX512_BF16: u32 = 1 << 5;
    /// CMPCCXADD.
    pub const CMPCCXADD: u32 = 1 << 7;
    /// Fast zero-length REP MOVSB.
    pub const FZRM: u32 = 1 << 10;
    /// Fast short REP STOSB.
    pub const FSRS: u32 = 1 << 11;
    /// Fast short REP CMPSB/SCASB.
    pub const FSRC: u32 = 1 << 12;
    /// WRMSRNS (exits like WRMSR).
    pub const WRMSRNS: u32 = 1 << 19;
    /// AMX-FP16.
    pub const AMX_FP16: u32 = 1 << 21;
    /// AVX-IFMA.
    pub const AVX_IFMA: u32 = 1 << 23;
}

/// Leaf 7 subleaf 1 EDX. Hidden: 19 AVX10 (leaf 0x24 is not described),
/// 21 APX_F.
pub mod leaf7_1_edx {
    /// AVX-VNNI-INT8.
    pub const AVX_VNNI_INT8: u32 = 1 << 4;
    /// AVX-NE-CONVERT.
    pub const AVX_NE_CONVERT: u32 = 1 << 5;
    /// AMX-COMPLEX.
    pub const AMX_COMPLEX: u32 = 1 << 8;
    /// AVX-VNNI-INT16.
    pub const AVX_VNNI_INT16: u32 = 1 << 10;
    /// PREFETCHIT0/1.
    pub const PREFETCHI: u32 = 1 << 14;
}

/// Leaf 7 subleaf 2 EDX (IA32_SPEC_CTRL controls but MCDT_NO).
pub mod leaf7_2_edx {
    /// SPEC_CTRL.PSFD.
    pub const PSFD: u32 = 1 << 0;
    /// SPEC_CTRL.IPRED_DIS_U/S.
    pub const IPRED_CTRL: u32 = 1 << 1;
    /// SPEC_CTRL.RRSBA_DIS_U/S.
    pub const RRSBA_CTRL: u32 = 1 << 2;
    /// SPEC_CTRL.DDPD_U.
    pub const DDPD_U: u32 = 1 << 3;
    /// SPEC_CTRL.BHI_DIS_S.
    pub const BHI_CTRL: u32 = 1 << 4;
    /// No MXCSR configuration dependent timing (informational).
    pub const MCDT_NO: u32 = 1 << 5;
}

/// Leaf 0xd subleaf 1 EAX. Hidden: 4 XFD.
pub mod leaf_d1_eax {
    /// XSAVEOPT.
    pub const XSAVEOPT: u32 = 1 << 0;
    /// XSAVEC (compacted format).
    pub const XSAVEC: u32 = 1 << 1;
    /// XGETBV with ECX = 1.
    pub const XGETBV1: u32 = 1 << 2;
    /// XSAVES/XRSTORS and IA32_XSS (hidden: "enable XSAVES/XRSTORS" is off).
    pub const XSAVES: u32 = 1 << 3;
}

/// Leaf 0x8000_0001 ECX.
pub mod ext1_ecx {
    /// LAHF/SAHF in 64-bit mode.
    pub const LAHF_LM: u32 = 1 << 0;
    /// LZCNT (ABM).
    pub const LZCNT: u32 = 1 << 5;
    /// PREFETCHW.
    pub const PREFETCHW: u32 = 1 << 8;
}

/// Leaf 0x8000_0001 EDX.
pub mod ext1_edx {
    /// SYSCALL/SYSRET.
    pub const SYSCALL: u32 = 1 << 11;
    /// Execute disable.
    pub const NX: u32 = 1 << 20;
    /// 1-GByte pages.
    pub const PDPE1GB: u32 = 1 << 26;
    /// RDTSCP and IA32_TSC_AUX (with `Enabled::rdtscp`: else RDTSCP #UDs).
    pub const RDTSCP: u32 = 1 << 27;
    /// Intel 64 (long mode).
    pub const LM: u32 = 1 << 29;
}

/// Leaf 0x8000_0007 EDX.
pub mod ext7_edx {
    /// Invariant TSC.
    pub const INVARIANT_TSC: u32 = 1 << 8;
}

/// Leaf 0x8000_0008 EBX.
pub mod ext8_ebx {
    /// WBNOINVD (exits like WBINVD).
    pub const WBNOINVD: u32 = 1 << 9;
}

/// What rvmx turns on for the guest, filled in by the run loop's owner
/// from the VMX controls in use. A feature that needs one of these is
/// hidden unless it is set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Enabled {
    /// "Enable RDTSCP" is on and IA32_TSC_AUX is the guest's: RDTSCP,
    /// RDPID (SDM Vol. 3C 26.3: both #UD otherwise).
    pub rdtscp: bool,
    /// "Enable INVPCID" is on: INVPCID.
    pub invpcid: bool,
    /// IA32_TSC_ADJUST is emulated: TSC_ADJUST (set even if the host lacks
    /// it, as KVM).
    pub tsc_adjust: bool,
    /// XSETBV is handled and XCR0 switched: the XCR0 bits the guest may
    /// enable (x87 is always in; MPX and APX never; groups all-or-none).
    pub xsave: Option<u64>,
    /// PKRU is switched and the host runs with CR4.PKE: PKU (and the PKRU
    /// XCR0 state).
    pub pku: bool,
    /// A local APIC is emulated: APIC (leaf 1 EDX[9]), ARAT.
    pub apic: bool,
    /// The local APIC has x2APIC mode (needs `apic`).
    pub x2apic: bool,
    /// The APIC timer has TSC-deadline mode (needs `apic`).
    pub tsc_deadline: bool,
    /// IA32_SPEC_CTRL and IA32_PRED_CMD are the guest's: IBRS/IBPB, STIBP,
    /// SSBD, leaf 7.2 controls.
    pub spec_ctrl: bool,
    /// Writes to IA32_FLUSH_CMD are carried out: FLUSH_L1D.
    pub flush_l1d: bool,
    /// IA32_ARCH_CAPABILITIES reads are answered: ARCH_CAPABILITIES (set
    /// even if the host lacks the MSR: rvmx emulates it, as KVM).
    pub arch_capabilities: bool,
}

impl Enabled {
    /// Nothing beyond what needs no help from rvmx.
    pub const NONE: Enabled = Enabled {
        rdtscp: false,
        invpcid: false,
        tsc_adjust: false,
        xsave: None,
        pku: false,
        apic: false,
        x2apic: false,
        tsc_deadline: false,
        spec_ctrl: false,
        flush_l1d: false,
        arch_capabilities: false,
    };
}

/// The vCPU state some CPUID fields follow, read by the run loop at the
/// CPUID exit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Dynamic {
    /// The guest's CR4 (GUEST_CR4 will do: only OSXSAVE, for leaf 1
    /// ECX[27], and PKE, for leaf 7 ECX[4], are read).
    pub cr4: u64,
    /// The guest's XCR0: XSAVE area sizes in leaf 0xd EBX.
    pub xcr0: u64,
    /// The initial (x2)APIC ID: leaf 1 EBX[31:24] (low 8 bits), 0xb/0x1f EDX.
    pub apic_id: u32,
    /// IA32_APIC_BASE.EN: with it 0, leaf 1 EDX.APIC reads 0 (SDM Vol. 3A
    /// 11.4.3). True while rvmx has no IA32_APIC_BASE.
    pub apic_enabled: bool,
}

/// Why [`validate`] refused a table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reject {
    /// More than [`MAX_ENTRIES`].
    TooMany {
        /// Entries given.
        count: usize,
    },
    /// `flags` has bits other than [`SUBLEAF_SIGNIFICANT`].
    Flags {
        /// The entry's leaf.
        leaf: u32,
        /// The entry's subleaf.
        subleaf: u32,
    },
    /// Two entries answer the same leaf and subleaf.
    Duplicate {
        /// The leaf.
        leaf: u32,
        /// The subleaf.
        subleaf: u32,
    },
    /// Feature bits the supported table does not have.
    Feature {
        /// The leaf.
        leaf: u32,
        /// The subleaf.
        subleaf: u32,
        /// The register.
        reg: Reg,
        /// The bits not supported.
        bits: u32,
    },
    /// MAXPHYADDR (0x8000_0008 EAX[7:0]) above the host's.
    MaxPhyAddr {
        /// The table's.
        guest: u8,
        /// The supported one.
        supported: u8,
    },
}

/// A feature flag rvmx asks a table about (the CR4 rules, XSAVE, 1-GByte
/// pages): see [`guest_has`]; any other bit: [`guest_has_bit`].
#[allow(missing_docs)] // each names the CPUID flag of the same name
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Feature {
    Vme, De, Pse, Tsc, Pae, Mce, Pge, Fxsr, Sse, Pcid, Xsave, Fsgsbase, Smep, Smap, Umip, Pku, La57,
    Pdpe1gb,
}

impl Feature {
    /// Where the flag is: leaf, subleaf, register, bit mask.
    pub const fn location(self) -> (u32, u32, Reg, u32) {
        use Feature::*;
        use Reg::*;
        match self {
            Vme => (1, 0, Edx, leaf1_edx::VME),
            De => (1, 0, Edx, leaf1_edx::DE),
            Pse => (1, 0, Edx, leaf1_edx::PSE),
            Tsc => (1, 0, Edx, leaf1_edx::TSC),
            Pae => (1, 0, Edx, leaf1_edx::PAE),
            Mce => (1, 0, Edx, leaf1_edx::MCE),
            Pge => (1, 0, Edx, leaf1_edx::PGE),
            Fxsr => (1, 0, Edx, leaf1_edx::FXSR),
            Sse => (1, 0, Edx, leaf1_edx::SSE),
            Pcid => (1, 0, Ecx, leaf1_ecx::PCID),
            Xsave => (1, 0, Ecx, leaf1_ecx::XSAVE),
            Fsgsbase => (7, 0, Ebx, leaf7_ebx::FSGSBASE),
            Smep => (7, 0, Ebx, leaf7_ebx::SMEP),
            Smap => (7, 0, Ebx, leaf7_ebx::SMAP),
            Umip => (7, 0, Ecx, leaf7_ecx::UMIP),
            Pku => (7, 0, Ecx, leaf7_ecx::PKU),
            La57 => (7, 0, Ecx, leaf7_ecx::LA57),
            Pdpe1gb => (0x8000_0001, 0, Edx, ext1_edx::PDPE1GB),
        }
    }
}

// ---------------------------------------------------------------------------
// Building the supported and default tables.

/// Leaves whose answer depends on ECX (they get [`SUBLEAF_SIGNIFICANT`]).
fn indexed(leaf: u32) -> bool {
    matches!(leaf, 4 | 7 | 0xb | 0xd | 0xf | 0x10 | 0x12 | 0x14 | 0x17 | 0x18 | 0x1d | 0x1e | 0x1f | 0x20 | 0x23 | 0x24)
}

/// Most subleaves enumerated for leaves 4, 0x18 and 0x1d.
const MAX_SUBLEAVES: u32 = 16;

/// XCR0 states rvmx may offer (MPX: no IA32_BNDCFGS switching; APX: not
/// known to rvmx).
const XCR0_OFFERED: u64 = xcr0::X87 | xcr0::SSE | xcr0::AVX | xcr0::AVX512 | xcr0::PKRU | xcr0::AMX;

// Feature bits that need nothing from rvmx but the host having them.
const L1_ECX_BASE: u32 = {
    use leaf1_ecx::*;
    SSE3 | PCLMULQDQ | SSSE3 | CX16 | PCID | SSE4_1 | SSE4_2 | MOVBE | POPCNT | AES | RDRAND
};
const L1_EDX_BASE: u32 = {
    use leaf1_edx::*;
    FPU | VME | DE | PSE | TSC | MSR | PAE | MCE | CX8 | SEP | MTRR | PGE | MCA | CMOV | PAT | PSE36 | CLFSH
        | MMX | FXSR | SSE | SSE2 | SS | HTT
};
const L7_EBX_BASE: u32 = {
    use leaf7_ebx::*;
    FSGSBASE | BMI1 | HLE | FDP_EXCPTN_ONLY | SMEP | BMI2 | ERMS | RTM | ZERO_FCS_FDS | RDSEED | ADX | SMAP
        | CLFLUSHOPT | CLWB | SHA
};
const L7_EBX_AVX512: u32 = {
    use leaf7_ebx::*;
    AVX512F | AVX512DQ | AVX512_IFMA | AVX512PF | AVX512ER | AVX512CD | AVX512BW | AVX512VL
};
const L7_ECX_BASE: u32 = {
    use leaf7_ecx::*;
    PREFETCHWT1 | UMIP | GFNI | LA57 | CLDEMOTE | MOVDIRI | MOVDIR64B
};
const L7_ECX_AVX512: u32 = {
    use leaf7_ecx::*;
    AVX512_VBMI | AVX512_VBMI2 | AVX512_VNNI | AVX512_BITALG | AVX512_VPOPCNTDQ
};
const L7_EDX_BASE: u32 = {
    use leaf7_edx::*;
    FSRM | MD_CLEAR | SERIALIZE | TSXLDTRK
};
const L7_EDX_AVX512: u32 = {
    use leaf7_edx::*;
    AVX512_4VNNIW | AVX512_4FMAPS | AVX512_VP2INTERSECT | AVX512_FP16
};
const L71_EAX_BASE: u32 = {
    use leaf7_1_eax::*;
    CMPCCXADD | FZRM | FSRS | FSRC | WRMSRNS
};
const L71_EAX_AVX: u32 = {
    use leaf7_1_eax::*;
    SHA512 | SM3 | SM4 | AVX_VNNI | AVX_IFMA
};
const L71_EDX_AVX: u32 = {
    use leaf7_1_edx::*;
    AVX_VNNI_INT8 | AVX_NE_CONVERT | AVX_VNNI_INT16
};
const L72_EDX_SPEC: u32 = {
    use leaf7_2_edx::*;
    PSFD | IPRED_CTRL | RRSBA_CTRL | DDPD_U | BHI_CTRL
};

/// XCR0 with incomplete groups dropped (SDM Vol. 1 13.3: XSETBV #GPs on
/// AVX without SSE, a partial AVX-512 or AMX set, AVX-512 without AVX).
fn complete_xcr0(mut m: u64) -> u64 {
    if m & xcr0::SSE == 0 {
        m &= !xcr0::AVX;
    }
    if m & xcr0::AVX512 != xcr0::AVX512 || m & xcr0::AVX == 0 {
        m &= !xcr0::AVX512;
    }
    if m & xcr0::AMX != xcr0::AMX {
        m &= !xcr0::AMX;
    }
    m
}

/// What the host and `Enabled` allow, worked out once per table.
struct Offer {
    max_basic: u32,
    /// Highest extended leaf, if the host has any.
    max_ext: Option<u32>,
    /// Highest leaf 7 subleaf (at most 2: 7.1, 7.2).
    max7: u32,
    /// XCR0 states offered; 0: no XSAVE.
    xcr0: u64,
    avx: bool,
    avx512: bool,
    amx: bool,
}

impl Offer {
    fn new(host: &impl Fn(u32, u32) -> [u32; 4], en: &Enabled) -> Offer {
        let host_max = host(0, 0)[0];
        let ext = host(0x8000_0000, 0)[0];
        let max_ext = (0x8000_0000..=0x8000_ffff).contains(&ext).then(|| ext.min(MAX_EXT));
        let max7 = if host_max >= 7 { host(7, 0)[0].min(2) } else { 0 };
        let mut x = 0;
        if let Some(want) = en.xsave {
            if host_max >= 0xd && host(1, 0)[2] & leaf1_ecx::XSAVE != 0 {
                let d = host(0xd, 0);
                let has = u64::from(d[3]) << 32 | u64::from(d[0]);
                x = has & (want | xcr0::X87) & XCR0_OFFERED;
                if !en.pku {
                    x &= !xcr0::PKRU;
                }
                x = complete_xcr0(x);
            }
        }
        Offer {
            max_basic: host_max.min(MAX_BASIC),
            max_ext,
            max7,
            xcr0: x,
            avx: x & xcr0::AVX != 0,
            avx512: x & xcr0::AVX512 != 0,
            amx: x & xcr0::AMX != 0,
        }
    }
}

/// Size of an XSAVE area for the states in `mask` (SDM Vol. 1 13.4, 13.4.3):
/// 512 legacy + 64 header bytes, then each state at its offset (standard
/// format), or packed in order, 64-byte aligned where ECX[1] says (compacted).
/// `comp(i)` is leaf 0xd subleaf `i`; a missing one is skipped.
fn xsave_size(mask: u64, compacted: bool, comp: impl Fn(u32) -> Option<[u32; 4]>) -> u32 {
    let mut size = 576u32;
    for i in 2..64 {
        if mask & (1 << i) == 0 {
            continue;
        }
        let Some([len, offset, ecx, _]) = comp(i) else { continue };
        let at = match (compacted, ecx & 2 != 0) {
            (false, _) => offset,
            (true, true) => size.saturating_add(63) & !63,
            (true, false) => size,
        };
        size = size.max(at.saturating_add(len));
    }
    size
}

/// The guest's answer for (leaf, sub) from the host's, or None for a leaf
/// or subleaf rvmx does not describe.
fn filter(host: &impl Fn(u32, u32) -> [u32; 4], en: &Enabled, x: &Offer, leaf: u32, sub: u32) -> Option<[u32; 4]> {
    let r = host(leaf, sub);
    let pick = |reg: u32, on: bool, bits: u32| if on { reg & bits } else { 0 };
    Some(match leaf {
        0 => [r[0].min(x.max_basic), r[1], r[2], r[3]],
        1 => {
            use leaf1_ecx::*;
            let ecx = r[2] & L1_ECX_BASE
                | pick(r[2], x.xcr0 != 0, XSAVE)
                | pick(r[2], x.avx, AVX | FMA | F16C)
                | pick(X2APIC, en.apic && en.x2apic, X2APIC)
                | pick(TSC_DEADLINE, en.apic && en.tsc_deadline, TSC_DEADLINE)
                | HYPERVISOR;
            let edx = r[3] & L1_EDX_BASE | pick(leaf1_edx::APIC, en.apic, leaf1_edx::APIC);
            // EBX[31:24], the initial APIC ID, is per vCPU (Dynamic).
            [r[0], r[1] & 0x00ff_ffff, ecx, edx]
        }
        // Cache descriptors and deterministic cache parameters: the host's.
        2 | 4 => r,
        6 if en.apic => [leaf6_eax::ARAT, 0, 0, 0],
        7 if sub == 0 => {
            let ebx = r[1] & L7_EBX_BASE
                | pick(r[1], en.invpcid, leaf7_ebx::INVPCID)
                | pick(leaf7_ebx::TSC_ADJUST, en.tsc_adjust, leaf7_ebx::TSC_ADJUST)
                | pick(r[1], x.avx, leaf7_ebx::AVX2)
                | pick(r[1], x.avx512, L7_EBX_AVX512);
            let ecx = r[2] & L7_ECX_BASE
                | pick(r[2], en.pku, leaf7_ecx::PKU)
                | pick(r[2], en.rdtscp, leaf7_ecx::RDPID)
                | pick(r[2], x.avx, leaf7_ecx::VAES | leaf7_ecx::VPCLMULQDQ)
                | pick(r[2], x.avx512, L7_ECX_AVX512);
            use leaf7_edx::*;
            let edx = r[3] & L7_EDX_BASE
                | pick(r[3], x.avx512, L7_EDX_AVX512)
                | pick(r[3], x.amx, AMX_BF16 | AMX_TILE | AMX_INT8)
                | pick(r[3], en.spec_ctrl, SPEC_CTRL | STIBP | SSBD)
                | pick(r[3], en.flush_l1d, FLUSH_L1D)
                | pick(ARCH_CAPABILITIES, en.arch_capabilities, ARCH_CAPABILITIES);
            [x.max7, ebx, ecx, edx]
        }
        7 if sub == 1 && x.max7 >= 1 => {
            let eax = r[0] & L71_EAX_BASE
                | pick(r[0], x.avx, L71_EAX_AVX)
                | pick(r[0], x.avx512, leaf7_1_eax::AVX512_BF16)
                | pick(r[0], x.amx, leaf7_1_eax::AMX_FP16);
            let edx = r[3] & leaf7_1_edx::PREFETCHI
                | pick(r[3], x.avx, L71_EDX_AVX)
                | pick(r[3], x.amx, leaf7_1_edx::AMX_COMPLEX);
            [eax, 0, 0, edx]
        }
        7 if sub == 2 && x.max7 >= 2 => {
            [0, 0, 0, r[3] & leaf7_2_edx::MCDT_NO | pick(r[3], en.spec_ctrl, L72_EDX_SPEC)]
        }
        // No topology (KVM's supported table too): EBX = 0 says "no
        // level". EDX, the x2APIC ID, is per vCPU (Dynamic).
        0xb | 0x1f if sub == 0 => [0; 4],
        0xd if x.xcr0 != 0 => {
            let comp = |i| Some(host(0xd, i));
            match sub {
                0 => {
                    let size = xsave_size(x.xcr0, false, comp);
                    [x.xcr0 as u32, size, size, (x.xcr0 >> 32) as u32]
                }
                1 => {
                    use leaf_d1_eax::*;
                    let eax = r[0] & (XSAVEOPT | XSAVEC | XGETBV1);
                    let ebx = if eax & XSAVEC != 0 { xsave_size(x.xcr0, true, comp) } else { 0 };
                    [eax, ebx, 0, 0]
                }
                // A user state: size, offset, ECX[1] (64-byte aligned when
                // compacted); ECX[0] (supervisor) and ECX[2] (XFD) are 0.
                2..=63 if x.xcr0 & (1 << sub) != 0 => [r[0], r[1], r[2] & 2, 0],
                _ => return None,
            }
        }
        // TSC/crystal ratio and frequencies: the guest's TSC ticks at the
        // host's rate.
        0x15 | 0x16 => r,
        // Deterministic address translation parameters (TLBs).
        0x18 => r,
        0x1d if x.amx => r,
        0x1e if x.amx && sub == 0 => r,
        HV_LEAF => [HV_LEAF, HV_SIGNATURE[0], HV_SIGNATURE[1], HV_SIGNATURE[2]],
        0x8000_0000 => [x.max_ext.unwrap_or(0), 0, 0, 0],
        0x8000_0001 => {
            use ext1_edx::*;
            let ecx = r[2] & (ext1_ecx::LAHF_LM | ext1_ecx::LZCNT | ext1_ecx::PREFETCHW);
            let edx = r[3] & (SYSCALL | NX | PDPE1GB | LM) | pick(r[3], en.rdtscp, RDTSCP);
            [r[0], 0, ecx, edx]
        }
        // Brand string; L2 cache.
        0x8000_0002..=0x8000_0004 | 0x8000_0006 => r,
        0x8000_0007 => [0, 0, 0, r[3] & ext7_edx::INVARIANT_TSC],
        // Physical and linear address bits; the rest is reserved on Intel.
        0x8000_0008 => [r[0] & 0xffff, r[1] & ext8_ebx::WBNOINVD, 0, 0],
        _ => return None,
    })
}

/// Fills `out` in leaf order, stopping when it is full.
struct Writer<'a> {
    out: &'a mut [CpuidEntry],
    n: usize,
    full: bool,
}

impl Writer<'_> {
    fn push(&mut self, leaf: u32, subleaf: u32, regs: [u32; 4]) {
        let Some(slot) = self.out.get_mut(self.n) else {
            self.full = true;
            return;
        };
        let flags = if indexed(leaf) { SUBLEAF_SIGNIFICANT } else { 0 };
        *slot = CpuidEntry { leaf, subleaf, flags, regs };
        self.n += 1;
    }
}

/// Writes every leaf and subleaf rvmx describes; returns (count, whether
/// `out` was too small).
fn build(host: &impl Fn(u32, u32) -> [u32; 4], en: &Enabled, out: &mut [CpuidEntry]) -> (usize, bool) {
    let x = Offer::new(host, en);
    let mut w = Writer { out, n: 0, full: false };
    let emit = |w: &mut Writer<'_>, leaf, sub| {
        let r = filter(host, en, &x, leaf, sub);
        if let Some(r) = r {
            w.push(leaf, sub, r);
        }
        r
    };
    for leaf in 0..=x.max_basic {
        match leaf {
            // Up to the first null cache type (EAX[4:0] = 0), included.
            4 => {
                for sub in 0..MAX_SUBLEAVES {
                    if emit(&mut w, leaf, sub).is_none_or(|r| r[0] & 0x1f == 0) {
                        break;
                    }
                }
            }
            7 => {
                for sub in 0..=x.max7 {
                    emit(&mut w, leaf, sub);
                }
            }
            0xd => {
                for sub in 0..64 {
                    emit(&mut w, leaf, sub);
                }
            }
            // EAX of subleaf 0: the highest subleaf.
            0x18 | 0x1d => {
                let max = host(leaf, 0)[0].min(MAX_SUBLEAVES - 1);
                for sub in 0..=max {
                    if emit(&mut w, leaf, sub).is_none() {
                        break;
                    }
                }
            }
            _ => {
                emit(&mut w, leaf, 0);
            }
        }
    }
    emit(&mut w, HV_LEAF, 0);
    if let Some(max) = x.max_ext {
        for leaf in 0x8000_0000..=max {
            emit(&mut w, leaf, 0);
        }
    }
    (w.n, w.full)
}

/// Lowers the highest basic and extended leaf (leaf 0 and 0x8000_0000 EAX)
/// to the highest leaf of that range in `t`.
fn cap_max_leaves(t: &mut [CpuidEntry]) {
    let top = |t: &[CpuidEntry], range: core::ops::RangeInclusive<u32>| {
        t.iter().map(|e| e.leaf).filter(|l| range.contains(l)).max()
    };
    let basic = top(t, 0..=0x3fff_ffff);
    let ext = top(t, 0x8000_0000..=0x8000_ffff);
    for e in t.iter_mut() {
        match (e.leaf, basic, ext) {
            (0, Some(m), _) | (0x8000_0000, _, Some(m)) => e.regs[0] = e.regs[0].min(m),
            _ => {}
        }
    }
}

/// Every leaf and subleaf a guest may see on this host with `en` (like
/// KVM_GET_SUPPORTED_CPUID): the host's values (`host(leaf, subleaf)`, run
/// on one CPU) less what rvmx cannot give, in leaf order, into `out`
/// (give it [`MAX_ENTRIES`]); returns the count. The highest basic leaf is
/// the host's, at most [`MAX_BASIC`]; extended, at most [`MAX_EXT`]. If
/// `out` is too small, the table is cut and its highest leaves lowered to
/// match.
pub fn supported(host: impl Fn(u32, u32) -> [u32; 4], en: &Enabled, out: &mut [CpuidEntry]) -> usize {
    let (n, cut) = build(&host, en, out);
    if cut {
        cap_max_leaves(&mut out[..n]);
    }
    n
}

/// The table a vCPU gets when userland sets none: [`supported`], with the
/// highest basic and extended leaves the host's, lowered to the highest
/// leaf the table holds (leaves past it answer as out of range).
pub fn default_table(host: impl Fn(u32, u32) -> [u32; 4], en: &Enabled, out: &mut [CpuidEntry]) -> usize {
    let (n, _) = build(&host, en, out);
    cap_max_leaves(&mut out[..n]);
    n
}

// ---------------------------------------------------------------------------
// Answering from a table.

/// The first entry for (leaf, subleaf): one whose subleaf matches, or that
/// has no [`SUBLEAF_SIGNIFICANT`].
pub fn find(entries: &[CpuidEntry], leaf: u32, subleaf: u32) -> Option<&CpuidEntry> {
    entries.iter().find(|e| e.leaf == leaf && (e.flags & SUBLEAF_SIGNIFICANT == 0 || e.subleaf == subleaf))
}

/// The leaf whose EAX gives the highest leaf of `leaf`'s range: 0 (basic),
/// 0x8000_0000 (extended), 0xc000_0000, and per 256 leaves in the
/// hypervisor range 0x4000_0000-0x4fff_ffff (KVM's classes).
fn range_base(leaf: u32) -> u32 {
    match leaf {
        0x4000_0000..=0x4fff_ffff => leaf & 0xffff_ff00,
        0xc000_0000.. => 0xc000_0000,
        _ => leaf & 0x8000_0000,
    }
}

/// Whether `leaf` is at most the highest leaf of its range in the table.
fn in_range(entries: &[CpuidEntry], leaf: u32) -> bool {
    find(entries, range_base(leaf), 0).is_some_and(|b| leaf <= b.regs[0])
}

/// The leaf that answers (`leaf`, or the highest basic leaf when `leaf` is
/// out of range) and its entry, if any.
fn resolve(entries: &[CpuidEntry], leaf: u32, subleaf: u32) -> (u32, Option<[u32; 4]>) {
    let leaf = if in_range(entries, leaf) {
        leaf
    } else {
        match find(entries, 0, 0) {
            Some(basic) => basic.regs[0],
            None => return (leaf, None),
        }
    };
    (leaf, find(entries, leaf, subleaf).map(|e| e.regs))
}

/// CPUID(leaf, subleaf) from the table, without the per-vCPU fields.
/// Intel's rule (SDM Vol. 2A CPUID): a leaf above the highest basic or
/// extended leaf (EAX of leaf 0 or 0x8000_0000 in the table) answers as
/// the highest basic leaf, with the same subleaf; so does a hypervisor
/// leaf above its range's highest (EAX of 0x4000_0000, per 256 leaves, as
/// KVM). A leaf in range without an entry is zeros, except 0xb/0x1f when
/// the table has them: ECX[7:0] is the subleaf, EDX the x2APIC ID.
pub fn lookup(entries: &[CpuidEntry], leaf: u32, subleaf: u32) -> [u32; 4] {
    let (leaf, regs) = resolve(entries, leaf, subleaf);
    regs.unwrap_or_else(|| missing(entries, leaf, subleaf))
}

/// A subleaf past the last level of 0xb/0x1f (SDM Vol. 2A, leaf 0BH).
fn missing(entries: &[CpuidEntry], leaf: u32, subleaf: u32) -> [u32; 4] {
    match (leaf, find(entries, leaf, 0)) {
        (0xb | 0x1f, Some(e)) => [0, 0, subleaf & 0xff, e.regs[3]],
        _ => [0; 4],
    }
}

/// CPUID(leaf, subleaf) for the guest: [`lookup`] with the fields that
/// follow the vCPU patched in (KVM's kvm_update_cpuid_runtime): leaf 1
/// EBX[31:24] APIC ID, ECX.OSXSAVE = CR4.OSXSAVE, EDX.APIC only while the
/// APIC is enabled; leaf 7.0 ECX.OSPKE = CR4.PKE (SDM Vol. 2A: both reflect
/// CR4); 0xb/0x1f EDX the x2APIC ID; leaf 0xd EBX, the XSAVE area size for
/// the current XCR0 (subleaf 0: standard format; subleaf 1 with XSAVEC:
/// compacted, IA32_XSS being 0).
pub fn answer(entries: &[CpuidEntry], leaf: u32, subleaf: u32, d: &Dynamic) -> [u32; 4] {
    let (leaf, regs) = resolve(entries, leaf, subleaf);
    let Some(mut r) = regs else {
        let mut r = missing(entries, leaf, subleaf);
        if matches!(leaf, 0xb | 0x1f) && find(entries, leaf, 0).is_some() {
            r[3] = d.apic_id;
        }
        return r;
    };
    let set = |reg: u32, bit: u32, on: bool| if on { reg | bit } else { reg & !bit };
    match (leaf, subleaf) {
        (1, _) => {
            r[1] = r[1] & 0x00ff_ffff | (d.apic_id & 0xff) << 24;
            let osxsave = r[2] & leaf1_ecx::XSAVE != 0 && d.cr4 & cr4::OSXSAVE != 0;
            r[2] = set(r[2], leaf1_ecx::OSXSAVE, osxsave);
            if !d.apic_enabled {
                r[3] &= !leaf1_edx::APIC;
            }
        }
        (7, 0) => {
            let ospke = r[2] & leaf7_ecx::PKU != 0 && d.cr4 & cr4::PKE != 0;
            r[2] = set(r[2], leaf7_ecx::OSPKE, ospke);
        }
        (0xb | 0x1f, _) => r[3] = d.apic_id,
        (0xd, 0) => r[1] = xsave_size(d.xcr0, false, |i| find(entries, 0xd, i).map(|e| e.regs)),
        (0xd, 1) if r[0] & (leaf_d1_eax::XSAVEC | leaf_d1_eax::XSAVES) != 0 => {
            r[1] = xsave_size(d.xcr0, true, |i| find(entries, 0xd, i).map(|e| e.regs));
        }
        _ => {}
    }
    r
}

// ---------------------------------------------------------------------------
// Validation and what the rest of rvmx asks of a table.

/// Feature-flag registers [`validate`] checks, with their dynamic bits
/// (not checked: `answer` sets them).
const CHECKED: [(u32, u32, Reg, u32); 18] = [
    (1, 0, Reg::Ecx, leaf1_ecx::OSXSAVE),
    (1, 0, Reg::Edx, 0),
    (6, 0, Reg::Eax, 0),
    (7, 0, Reg::Ebx, 0),
    (7, 0, Reg::Ecx, leaf7_ecx::OSPKE),
    (7, 0, Reg::Edx, 0),
    (7, 1, Reg::Eax, 0),
    (7, 1, Reg::Edx, 0),
    (7, 2, Reg::Edx, 0),
    (0xd, 0, Reg::Eax, 0),
    (0xd, 0, Reg::Edx, 0),
    (0xd, 1, Reg::Eax, 0),
    (0xd, 1, Reg::Ecx, 0),
    (0xd, 1, Reg::Edx, 0),
    (0x8000_0001, 0, Reg::Ecx, 0),
    (0x8000_0001, 0, Reg::Edx, 0),
    (0x8000_0007, 0, Reg::Edx, 0),
    (0x8000_0008, 0, Reg::Ebx, 0),
];

/// Checks userland's table against `supported` (built for the same host
/// and [`Enabled`]): at most [`MAX_ENTRIES`], no unknown flags, no two
/// entries for one (leaf, subleaf), no feature bit `supported` lacks in
/// leaf 1 ECX/EDX, 6 EAX, 7.0 EBX/ECX/EDX, 7.1 EAX/EDX, 7.2 EDX, 0xd.0
/// EAX/EDX (XCR0), 0xd.1 EAX/ECX/EDX, 0x8000_0001 ECX/EDX, 0x8000_0007 EDX,
/// 0x8000_0008 EBX, and MAXPHYADDR at most the supported one. Checked as
/// the guest would read them: a leaf out of the table's range is never
/// read, so it is not checked. Clearing bits is always allowed, HYPERVISOR
/// included; OSXSAVE and OSPKE are ignored (`answer` sets them). Other
/// leaves (vendor, family, caches, topology, brand string) are free.
pub fn validate(entries: &[CpuidEntry], supported: &[CpuidEntry]) -> Result<(), Reject> {
    if entries.len() > MAX_ENTRIES {
        return Err(Reject::TooMany { count: entries.len() });
    }
    for (i, e) in entries.iter().enumerate() {
        let (leaf, subleaf) = (e.leaf, e.subleaf);
        if e.flags & !SUBLEAF_SIGNIFICANT != 0 {
            return Err(Reject::Flags { leaf, subleaf });
        }
        // Same leaf, and either answers every subleaf or both the same one.
        let clash = |o: &CpuidEntry| {
            o.leaf == leaf
                && (e.flags & o.flags & SUBLEAF_SIGNIFICANT == 0 || o.subleaf == subleaf)
        };
        if entries[i + 1..].iter().any(clash) {
            return Err(Reject::Duplicate { leaf, subleaf });
        }
    }
    for (leaf, subleaf, reg, dynamic) in CHECKED {
        if !in_range(entries, leaf) {
            continue;
        }
        let Some(e) = find(entries, leaf, subleaf) else { continue };
        let allowed = find(supported, leaf, subleaf).map_or(0, |s| s.regs[reg as usize]);
        let bits = e.regs[reg as usize] & !dynamic & !allowed;
        if bits != 0 {
            return Err(Reject::Feature { leaf, subleaf, reg, bits });
        }
    }
    let (guest, host) = (guest_maxphyaddr(entries), guest_maxphyaddr(supported));
    if guest > host {
        return Err(Reject::MaxPhyAddr { guest, supported: host });
    }
    Ok(())
}

/// Whether the table gives the guest `f`: [`guest_has_bit`] at its location.
pub fn guest_has(entries: &[CpuidEntry], f: Feature) -> bool {
    let (leaf, subleaf, reg, bit) = f.location();
    guest_has_bit(entries, leaf, subleaf, reg, bit)
}

/// Whether the guest reads `bit` set in `reg` of (leaf, subleaf): the leaf
/// in the table's range, the bit set (dynamic bits as stored).
pub fn guest_has_bit(entries: &[CpuidEntry], leaf: u32, subleaf: u32, reg: Reg, bit: u32) -> bool {
    in_range(entries, leaf) && find(entries, leaf, subleaf).is_some_and(|e| e.regs[reg as usize] & bit != 0)
}

/// The XCR0 bits the guest may set with XSETBV: leaf 0xd.0 EDX:EAX of the
/// table and of `supported`, with x87; 0 without XSAVE (XSETBV #UDs).
pub fn guest_xcr0_mask(entries: &[CpuidEntry], supported: &[CpuidEntry]) -> u64 {
    let states = |t: &[CpuidEntry]| {
        if !in_range(t, 0xd) {
            return 0;
        }
        find(t, 0xd, 0).map_or(0, |e| u64::from(e.regs[3]) << 32 | u64::from(e.regs[0]))
    };
    if !guest_has(entries, Feature::Xsave) {
        return 0;
    }
    states(entries) & states(supported) | xcr0::X87
}

/// The guest's MAXPHYADDR: 0x8000_0008 EAX[7:0], or 36 when the table has
/// no such leaf (SDM Vol. 3A 4.1.4; KVM's cpuid_query_maxphyaddr).
pub fn guest_maxphyaddr(entries: &[CpuidEntry]) -> u8 {
    if !in_range(entries, 0x8000_0008) {
        return 36;
    }
    find(entries, 0x8000_0008, 0).map_or(36, |e| e.regs[0] as u8)
}

/// CR4 bits the guest may not set with this table (MOV to CR4 #GPs on a
/// bit whose feature is absent, SDM Vol. 3A 2.5; KVM's
/// __cr4_reserved_bits): those of absent features, and every bit rvmx
/// does not give (VMXE, SMXE, KL, CET, PKS, UINTR, LASS, LAM, FRED and the
/// reserved ones). For the CR4 exit handler, if it owns more than VMXE.
pub fn cr4_reserved(entries: &[CpuidEntry]) -> u64 {
    use Feature::*;
    let tied = [
        (cr4::VME | cr4::PVI, Vme),
        (cr4::TSD, Tsc),
        (cr4::DE, De),
        (cr4::PSE, Pse),
        (cr4::PAE, Pae),
        (cr4::MCE, Mce),
        (cr4::PGE, Pge),
        (cr4::OSFXSR, Fxsr),
        (cr4::OSXMMEXCPT, Sse),
        (cr4::UMIP, Umip),
        (cr4::LA57, La57),
        (cr4::FSGSBASE, Fsgsbase),
        (cr4::PCIDE, Pcid),
        (cr4::OSXSAVE, Xsave),
        (cr4::SMEP, Smep),
        (cr4::SMAP, Smap),
        (cr4::PKE, Pku),
    ];
    let known = tied.iter().fold(cr4::PCE, |m, (bits, _)| m | bits);
    tied.iter().filter(|(_, f)| !guest_has(entries, *f)).fold(!known, |m, (bits, _)| m | bits)
}
