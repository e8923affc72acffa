// SPDX-License-Identifier: GPL-2.0
//! Guest MSRs (pure logic): what the guest's CPUID lets it use
//! ([`GuestCaps`]), the per-vCPU values rvmx keeps outside the VMCS
//! ([`Msrs`]), the MSR bitmap ([`build_bitmap`]) and the MSRs userland
//! asked to handle itself ([`MsrFilter`]). The RDMSR/WRMSR handlers and the
//! host's RVMX_GET_MSRS/RVMX_SET_MSRS access are in `exit/msr.rs`.

use crate::x86::msr;

/// What the guest's CPUID enumerates, as far as MSRs care; filled from
/// the vCPU's CPUID table ([`GuestCaps::from_cpuid`]) plus the
/// IA32_ARCH_CAPABILITIES value the host allows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GuestCaps {
    /// SYSCALL/SYSRET: CPUID.80000001H:EDX[11] (EFER.SCE).
    pub syscall: bool,
    /// Execute disable: CPUID.80000001H:EDX[20] (EFER.NXE).
    pub nx: bool,
    /// Intel 64: CPUID.80000001H:EDX[29] (EFER.LME/LMA).
    pub lm: bool,
    /// RDTSCP: CPUID.80000001H:EDX[27] (IA32_TSC_AUX).
    pub rdtscp: bool,
    /// RDPID: CPUID.(7,0):ECX[22] (IA32_TSC_AUX).
    pub rdpid: bool,
    /// IA32_TSC_ADJUST: CPUID.(7,0):EBX[1].
    pub tsc_adjust: bool,
    /// IBRS and IBPB: CPUID.(7,0):EDX[26] (IA32_SPEC_CTRL, IA32_PRED_CMD).
    pub ibrs_ibpb: bool,
    /// STIBP: CPUID.(7,0):EDX[27].
    pub stibp: bool,
    /// L1D_FLUSH: CPUID.(7,0):EDX[28] (IA32_FLUSH_CMD).
    pub l1d_flush: bool,
    /// SSBD: CPUID.(7,0):EDX[31].
    pub ssbd: bool,
    /// PDCM: CPUID.1:ECX[15] (IA32_PERF_CAPABILITIES).
    pub pdcm: bool,
    /// MAXPHYADDR: CPUID.80000008H:EAX[7:0] (reserved bits of the MTRRs
    /// and IA32_APIC_BASE).
    pub phys_bits: u8,
    /// IA32_ARCH_CAPABILITIES as the guest reads it: `Some` when its
    /// CPUID.(7,0):EDX[29] is set (the host's value, filtered by the run
    /// loop's owner), `None` (#GP) otherwise.
    pub arch_capabilities: Option<u64>,
}

impl GuestCaps {
    /// From the guest's CPUID, `cpuid(leaf, subleaf)` -> [EAX, EBX, ECX,
    /// EDX]; leaves above the maximum ones count as zero. MAXPHYADDR is 36
    /// without leaf 80000008H (SDM Vol. 3A 4.1.4); `arch_capabilities` is
    /// left `None` for the caller to fill.
    pub fn from_cpuid(cpuid: impl Fn(u32, u32) -> [u32; 4]) -> GuestCaps {
        let max = cpuid(0, 0)[0];
        let max_ext = cpuid(0x8000_0000, 0)[0];
        let l1 = cpuid(1, 0);
        let l7 = if max >= 7 { cpuid(7, 0) } else { [0; 4] };
        let e1 = if max_ext >= 0x8000_0001 { cpuid(0x8000_0001, 0) } else { [0; 4] };
        let pa = if max_ext >= 0x8000_0008 { cpuid(0x8000_0008, 0)[0] as u8 } else { 0 };
        let bit = |r: u32, n: u32| r & (1 << n) != 0;
        GuestCaps {
            syscall: bit(e1[3], 11),
            nx: bit(e1[3], 20),
            lm: bit(e1[3], 29),
            rdtscp: bit(e1[3], 27),
            rdpid: bit(l7[2], 22),
            tsc_adjust: bit(l7[1], 1),
            ibrs_ibpb: bit(l7[3], 26),
            stibp: bit(l7[3], 27),
            l1d_flush: bit(l7[3], 28),
            ssbd: bit(l7[3], 31),
            pdcm: bit(l1[2], 15),
            // A nonsense width would make every address reserved.
            phys_bits: if (32..=52).contains(&pa) { pa } else { 36 },
            arch_capabilities: None,
        }
    }

    /// Bits at and above MAXPHYADDR (reserved in physical addresses).
    pub const fn above_phys(&self) -> u64 {
        let n = if self.phys_bits >= 32 && self.phys_bits <= 52 { self.phys_bits } else { 36 };
        !((1u64 << n) - 1)
    }

    /// Whether IA32_SPEC_CTRL exists: any of its bits is enumerated (SDM
    /// Vol. 4 Table 2-2).
    pub const fn has_spec_ctrl(&self) -> bool {
        self.ibrs_ibpb || self.stibp || self.ssbd
    }

    /// The IA32_SPEC_CTRL bits the guest may set.
    pub const fn spec_ctrl_bits(&self) -> u64 {
        let mut b = 0;
        if self.ibrs_ibpb {
            b |= spec_ctrl::IBRS;
        }
        if self.stibp {
            b |= spec_ctrl::STIBP;
        }
        if self.ssbd {
            b |= spec_ctrl::SSBD;
        }
        b
    }
}

/// IA32_SPEC_CTRL bits (SDM Vol. 4 Table 2-2).
pub mod spec_ctrl {
    /// Indirect branch restricted speculation.
    pub const IBRS: u64 = 1 << 0;
    /// Single thread indirect branch predictors.
    pub const STIBP: u64 = 1 << 1;
    /// Speculative store bypass disable.
    pub const SSBD: u64 = 1 << 2;
}

/// IA32_APIC_BASE bits (SDM Vol. 3A 11.4.4).
pub mod apic_base {
    /// The default base address, 0xFEE00000.
    pub const DEFAULT: u64 = 0xfee0_0000;
    /// BSP flag.
    pub const BSP: u64 = 1 << 8;
    /// x2APIC mode (no x2APIC for guests yet: reserved).
    pub const EXTD: u64 = 1 << 10;
    /// APIC global enable.
    pub const ENABLE: u64 = 1 << 11;
    /// Bits that must be 0 below the base: 7:0, 9 and (no x2APIC) 10.
    pub const RESERVED_LOW: u64 = 0xff | (1 << 9) | EXTD;
}

/// IA32_MISC_ENABLE bits (SDM Vol. 4 Table 2-2).
pub mod misc_enable {
    /// Fast-strings enable (REP MOVS/STOS); 1 after reset.
    pub const FAST_STRING: u64 = 1 << 0;
    /// Automatic thermal control circuit enable.
    pub const AUTO_TCC: u64 = 1 << 3;
    /// Performance monitoring available (read-only; 0: none virtualized).
    pub const PERF_MON: u64 = 1 << 7;
    /// Branch trace storage unavailable (read-only).
    pub const BTS_UNAVAIL: u64 = 1 << 11;
    /// Processor event based sampling unavailable (read-only).
    pub const PEBS_UNAVAIL: u64 = 1 << 12;
    /// Enhanced Intel SpeedStep enable.
    pub const EIST: u64 = 1 << 16;
    /// ENABLE MONITOR FSM.
    pub const MONITOR: u64 = 1 << 18;
    /// Limit CPUID maxval.
    pub const LIMIT_CPUID: u64 = 1 << 22;
    /// xTPR message disable.
    pub const XTPR_DISABLE: u64 = 1 << 23;
    /// XD bit disable.
    pub const XD_DISABLE: u64 = 1 << 34;
    /// Bits software may write (stored; rvmx gives them no effect).
    pub const WRITABLE: u64 =
        FAST_STRING | AUTO_TCC | EIST | MONITOR | LIMIT_CPUID | XTPR_DISABLE | XD_DISABLE;
    /// Read-only bits: a guest write keeps them as they are.
    pub const READ_ONLY: u64 = PERF_MON | BTS_UNAVAIL | PEBS_UNAVAIL;
    /// After reset: fast strings on (the SDM's default), no BTS, no PEBS
    /// (as KVM).
    pub const RESET: u64 = FAST_STRING | BTS_UNAVAIL | PEBS_UNAVAIL;
}

/// Things the run loop must act on, set in [`Msrs::dirty`] by the
/// handlers and taken with [`Msrs::take_dirty`].
pub mod dirty {
    /// IA32_EFER changed (EFER.SCE decides whether the SYSCALL MSRs are
    /// switched).
    pub const EFER: u32 = 1 << 0;
    /// STAR/LSTAR/CSTAR/FMASK changed (`CpuState::syscall`): reload them
    /// if the guest's are loaded.
    pub const SYSCALL: u32 = 1 << 1;
    /// IA32_KERNEL_GS_BASE changed (`CpuState::kernel_gs_base`).
    pub const KERNEL_GS_BASE: u32 = 1 << 2;
    /// IA32_TSC_AUX changed ([`Msrs::tsc_aux`](super::Msrs::tsc_aux)).
    pub const TSC_AUX: u32 = 1 << 3;
    /// IA32_SPEC_CTRL changed ([`Msrs::spec_ctrl`](super::Msrs::spec_ctrl)).
    pub const SPEC_CTRL: u32 = 1 << 4;
    /// The guest wrote IBPB to IA32_PRED_CMD: issue an IBPB before the
    /// next entry.
    pub const IBPB: u32 = 1 << 5;
    /// The guest wrote L1D_FLUSH to IA32_FLUSH_CMD: flush L1D before the
    /// next entry.
    pub const L1D_FLUSH: u32 = 1 << 6;
}

/// Variable-range MTRR pairs rvmx offers (IA32_MTRRCAP.VCNT).
pub const VAR_MTRRS: usize = 8;
/// Fixed-range MTRRs: one 64K, two 16K, eight 4K (SDM Vol. 3A 12.11.2.2).
pub const FIXED_MTRRS: usize = 11;
/// IA32_MTRRCAP as the guest reads it (SDM Vol. 3A 12.11.1): VCNT 8,
/// fixed ranges (bit 8), write-combining (bit 10); no SMRR (as KVM).
pub const MTRRCAP: u64 = VAR_MTRRS as u64 | (1 << 8) | (1 << 10);
/// IA32_BIOS_SIGN_ID after reset: microcode revision 1 in bits 63:32
/// (KVM's value).
pub const MICROCODE_RESET: u64 = 1 << 32;

/// Whether `t` is a memory type an MTRR may hold: UC 0, WC 1, WT 4, WP 5,
/// WB 6 (SDM Vol. 3A 12.11.1, Table 12-8).
pub const fn mtrr_type_valid(t: u64) -> bool {
    matches!(t, 0 | 1 | 4 | 5 | 6)
}

/// Whether every byte of `pat` is a valid PAT type: UC 0, WC 1, WT 4, WP
/// 5, WB 6, UC- 7 (SDM Vol. 3A 12.12.2; others #GP).
pub const fn pat_valid(pat: u64) -> bool {
    let mut i = 0;
    while i < 8 {
        if !matches!((pat >> (8 * i)) & 0xff, 0 | 1 | 4 | 5 | 6 | 7) {
            return false;
        }
        i += 1;
    }
    true
}

/// One MTRR (SDM Vol. 3A 12.11.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mtrr {
    /// IA32_MTRR_DEF_TYPE.
    DefType,
    /// Fixed-range MTRR number 0..11 (64K, 16K 80000, 16K A0000, 4K C0000..F8000).
    Fixed(usize),
    /// IA32_MTRR_PHYSBASEn.
    Base(usize),
    /// IA32_MTRR_PHYSMASKn.
    Mask(usize),
}

impl Mtrr {
    /// The MTRR that MSR `index` is, if rvmx has it (variable ones up to
    /// VCNT only).
    pub const fn from_index(index: u32) -> Option<Mtrr> {
        Some(match index {
            msr::MTRR_DEF_TYPE => Mtrr::DefType,
            msr::MTRR_FIX64K_00000 => Mtrr::Fixed(0),
            msr::MTRR_FIX16K_80000 => Mtrr::Fixed(1),
            msr::MTRR_FIX16K_A0000 => Mtrr::Fixed(2),
            msr::MTRR_FIX4K_C0000..=msr::MTRR_FIX4K_F8000 => Mtrr::Fixed(3 + (index - msr::MTRR_FIX4K_C0000) as usize),
            _ if index >= msr::MTRR_PHYSBASE0 && index < msr::MTRR_PHYSBASE0 + 2 * VAR_MTRRS as u32 => {
                let n = ((index - msr::MTRR_PHYSBASE0) / 2) as usize;
                if index & 1 == 0 {
                    Mtrr::Base(n)
                } else {
                    Mtrr::Mask(n)
                }
            }
            _ => return None,
        })
    }

    /// Whether `v` may be written: no reserved bit set (bits at and above
    /// MAXPHYADDR included, given as `above_phys`), valid memory types
    /// (else #GP, SDM Vol. 3A 12.11.2).
    pub const fn valid(self, v: u64, above_phys: u64) -> bool {
        match self {
            // Type 7:0, FE bit 10, E bit 11.
            Mtrr::DefType => v & !0xcff == 0 && mtrr_type_valid(v & 0xff),
            // Eight types, one per byte.
            Mtrr::Fixed(_) => {
                let mut i = 0;
                while i < 8 {
                    if !mtrr_type_valid((v >> (8 * i)) & 0xff) {
                        return false;
                    }
                    i += 1;
                }
                true
            }
            // Type 7:0, 11:8 reserved, base from bit 12 to MAXPHYADDR-1.
            Mtrr::Base(_) => v & (0xf00 | above_phys) == 0 && mtrr_type_valid(v & 0xff),
            // 10:0 reserved, V bit 11, mask from bit 12 to MAXPHYADDR-1.
            Mtrr::Mask(_) => v & (0x7ff | above_phys) == 0,
        }
    }
}

/// A vCPU's MSRs that live neither in the VMCS nor elsewhere in
/// `CpuState` (EFER, PAT, DEBUGCTL, SYSENTER_* and FS/GS base are VMCS
/// fields; the SYSCALL MSRs and KERNEL_GS_BASE are in `CpuState`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Msrs {
    /// IA32_APIC_BASE.
    pub apic_base: u64,
    /// IA32_MISC_ENABLE.
    pub misc_enable: u64,
    /// IA32_MTRR_DEF_TYPE.
    pub mtrr_def_type: u64,
    /// The fixed-range MTRRs, in [`Mtrr::Fixed`] order.
    pub mtrr_fixed: [u64; FIXED_MTRRS],
    /// IA32_MTRR_PHYSBASEn and IA32_MTRR_PHYSMASKn.
    pub mtrr_var: [[u64; 2]; VAR_MTRRS],
    /// IA32_TSC_ADJUST (two's complement; SDM Vol. 3B 19.17.3).
    pub tsc_adjust: u64,
    /// IA32_TSC_AUX (bits 31:0; what RDTSCP and RDPID return).
    pub tsc_aux: u64,
    /// IA32_SPEC_CTRL.
    pub spec_ctrl: u64,
    /// IA32_MCG_STATUS.
    pub mcg_status: u64,
    /// IA32_BIOS_SIGN_ID (the microcode revision the guest reads).
    pub microcode: u64,
    /// MSR_PLATFORM_INFO (0 unless userland sets it).
    pub platform_info: u64,
    /// What the run loop must act on ([`dirty`]).
    pub dirty: u32,
}

impl Msrs {
    /// The values after RESET for vCPU `vcpu_id` (SDM Vol. 3A 10.1.1,
    /// Table 10-1): APIC at 0xFEE00000, enabled, BSP on vCPU 0; MTRRs off.
    pub const fn reset(vcpu_id: u32) -> Msrs {
        let bsp = if vcpu_id == 0 { apic_base::BSP } else { 0 };
        Msrs {
            apic_base: apic_base::DEFAULT | apic_base::ENABLE | bsp,
            misc_enable: misc_enable::RESET,
            mtrr_def_type: 0,
            mtrr_fixed: [0; FIXED_MTRRS],
            mtrr_var: [[0; 2]; VAR_MTRRS],
            tsc_adjust: 0,
            tsc_aux: 0,
            spec_ctrl: 0,
            mcg_status: 0,
            microcode: MICROCODE_RESET,
            platform_info: 0,
            dirty: 0,
        }
    }

    /// Returns the [`dirty`] bits and clears them.
    pub fn take_dirty(&mut self) -> u32 {
        core::mem::take(&mut self.dirty)
    }

    /// An MTRR's value.
    pub const fn mtrr(&self, m: Mtrr) -> u64 {
        match m {
            Mtrr::DefType => self.mtrr_def_type,
            Mtrr::Fixed(i) => self.mtrr_fixed[i],
            Mtrr::Base(n) => self.mtrr_var[n][0],
            Mtrr::Mask(n) => self.mtrr_var[n][1],
        }
    }

    /// An MTRR, to write (after [`Mtrr::valid`]).
    pub fn mtrr_mut(&mut self, m: Mtrr) -> &mut u64 {
        match m {
            Mtrr::DefType => &mut self.mtrr_def_type,
            Mtrr::Fixed(i) => &mut self.mtrr_fixed[i],
            Mtrr::Base(n) => &mut self.mtrr_var[n][0],
            Mtrr::Mask(n) => &mut self.mtrr_var[n][1],
        }
    }
}

impl Default for Msrs {
    /// vCPU 0's reset values (others: [`Msrs::reset`] with their id).
    fn default() -> Self {
        Msrs::reset(0)
    }
}

/// The MSRs userland saves and restores with RVMX_GET_MSRS and
/// RVMX_SET_MSRS (every one with state; the host may access them all,
/// whatever the guest's CPUID says).
pub const SAVE_LIST: &[u32] = &[
    msr::EFER,
    msr::PAT,
    msr::DEBUGCTL,
    msr::SYSENTER_CS,
    msr::SYSENTER_ESP,
    msr::SYSENTER_EIP,
    msr::FS_BASE,
    msr::GS_BASE,
    msr::KERNEL_GS_BASE,
    msr::STAR,
    msr::LSTAR,
    msr::CSTAR,
    msr::SFMASK,
    msr::TSC,
    msr::TSC_ADJUST,
    msr::TSC_AUX,
    msr::APIC_BASE,
    msr::MISC_ENABLE,
    msr::SPEC_CTRL,
    msr::MCG_STATUS,
    msr::BIOS_SIGN_ID,
    msr::PLATFORM_INFO,
    msr::MTRR_DEF_TYPE,
    msr::MTRR_FIX64K_00000,
    msr::MTRR_FIX16K_80000,
    msr::MTRR_FIX16K_A0000,
    0x268,
    0x269,
    0x26a,
    0x26b,
    0x26c,
    0x26d,
    0x26e,
    0x26f,
    0x200,
    0x201,
    0x202,
    0x203,
    0x204,
    0x205,
    0x206,
    0x207,
    0x208,
    0x209,
    0x20a,
    0x20b,
    0x20c,
    0x20d,
    0x20e,
    0x20f,
];

/// [`MsrRange::flags`]: which accesses exit to userland.
pub mod filter {
    /// RDMSR.
    pub const READ: u32 = 1 << 0;
    /// WRMSR.
    pub const WRITE: u32 = 1 << 1;
}

/// MSRs `base .. base + count` whose accesses named in `flags`
/// ([`filter`]) exit to userland.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MsrRange {
    /// First MSR.
    pub base: u32,
    /// Number of MSRs.
    pub count: u32,
    /// [`filter::READ`] and/or [`filter::WRITE`].
    pub flags: u32,
}

impl MsrRange {
    /// Whether the range has MSR `index`.
    pub const fn contains(&self, index: u32) -> bool {
        index >= self.base && index - self.base < self.count
    }
}

/// The per-VM list of MSR ranges userland handles itself (KVM's user-space
/// MSR filter): a guest RDMSR or WRMSR of one exits to userland, before
/// and instead of rvmx's own emulation, for every MSR (rvmx keeps none to
/// itself: userland that takes over EFER must set it with RVMX_SET_MSRS).
/// The host's own accesses (RVMX_GET_MSRS/RVMX_SET_MSRS) are not filtered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MsrFilter {
    ranges: [MsrRange; MsrFilter::MAX_RANGES],
    len: usize,
}

impl MsrFilter {
    /// At most this many ranges.
    pub const MAX_RANGES: usize = 16;
    /// No MSR exits to userland.
    pub const EMPTY: MsrFilter =
        MsrFilter { ranges: [MsrRange { base: 0, count: 0, flags: 0 }; Self::MAX_RANGES], len: 0 };

    /// A filter of `ranges` (they may overlap); `Err` for more than
    /// [`MAX_RANGES`](Self::MAX_RANGES), an empty range, one that runs
    /// past MSR 0xFFFFFFFF, or flags that are none or unknown.
    pub fn new(ranges: &[MsrRange]) -> Result<MsrFilter, ()> {
        if ranges.len() > Self::MAX_RANGES {
            return Err(());
        }
        let mut f = Self::EMPTY;
        for r in ranges {
            let end = u64::from(r.base) + u64::from(r.count);
            let flags_ok = r.flags != 0 && r.flags & !(filter::READ | filter::WRITE) == 0;
            if r.count == 0 || end > 1 << 32 || !flags_ok {
                return Err(());
            }
            f.ranges[f.len] = *r;
            f.len += 1;
        }
        Ok(f)
    }

    /// The ranges.
    pub fn ranges(&self) -> &[MsrRange] {
        &self.ranges[..self.len]
    }

    /// Whether a guest RDMSR (`write` false) or WRMSR of MSR `index` goes
    /// to userland.
    pub fn exits(&self, index: u32, write: bool) -> bool {
        let want = if write { filter::WRITE } else { filter::READ };
        self.ranges().iter().any(|r| r.flags & want != 0 && r.contains(index))
    }
}

/// The MSR bitmaps: one 4-KiB page (SDM Vol. 3C 25.6.9).
pub const BITMAP_SIZE: usize = 4096;

/// Where MSR `index` is in the bitmaps: (byte, bit mask). The page holds
/// four 1-KiB bitmaps: reads of 0..=0x1FFF, reads of
/// 0xC0000000..=0xC0001FFF, then writes of the same two ranges; bit n of
/// each is MSR (range base + n). `None` for MSRs outside both ranges,
/// whose accesses always exit (SDM Vol. 3C 26.1.3).
pub const fn bitmap_bit(index: u32, write: bool) -> Option<(usize, u8)> {
    let (quarter, n) = match index {
        0..=0x1fff => (0, index),
        0xc000_0000..=0xc000_1fff => (1, index - 0xc000_0000),
        _ => return None,
    };
    let base = if write { 2048 } else { 0 } + quarter * 1024;
    Some((base + (n / 8) as usize, 1 << (n % 8)))
}

/// The MSRs the guest reads and writes without an exit: (MSR, read,
/// write). Each is the guest's own on the CPU while the guest runs, and
/// the host's again before the host needs it, whatever the guest wrote;
/// and the CPU checks the guest's writes itself (#GP for a non-canonical
/// base). KVM passes the same ones (plus SPEC_CTRL once the guest wrote
/// it, and PRED_CMD/FLUSH_CMD writes); rvmx intercepts those three: the
/// run loop does not read SPEC_CTRL back after exits, and their writes are
/// rare.
pub const PASS_THROUGH: [(u32, bool, bool); 6] = [
    // The guest FS and GS bases are loaded from the VMCS on entry and
    // saved into it on exit, the host's loaded from HOST_FS_BASE and
    // HOST_GS_BASE (SDM Vol. 3C 27.3.2.2, 28.3.2, 28.5.2).
    (msr::FS_BASE, true, true),
    (msr::GS_BASE, true, true),
    // VM entry and exit do not switch it, but the run loop keeps the
    // guest's loaded while the task is on the CPU and reads it back before
    // putting the host's in (the preempt hook and the end of RUN): the
    // guest's SWAPGS changes it without an exit anyway.
    (msr::KERNEL_GS_BASE, true, true),
    // Loaded from the guest-state area on entry, saved on exit, the host's
    // loaded from the host-state area (SDM Vol. 3C 27.3.2.1, 28.3.1, 28.5.1).
    (msr::SYSENTER_CS, true, true),
    (msr::SYSENTER_ESP, true, true),
    (msr::SYSENTER_EIP, true, true),
];

/// Fills `bitmap`: every access exits but those in [`PASS_THROUGH`] and,
/// with "use TSC offsetting" on (`tsc_offsetting`), reads of IA32_TSC,
/// which the CPU returns with TSC_OFFSET added (SDM Vol. 3C 26.3; KVM
/// passes them too; writes must exit: they move the offset). An access
/// `filter` sends to userland always exits.
pub fn build_bitmap(bitmap: &mut [u8; BITMAP_SIZE], filter: &MsrFilter, tsc_offsetting: bool) {
    bitmap.fill(0xff);
    let mut pass = |index: u32, write: bool| {
        if let Some((byte, mask)) = bitmap_bit(index, write) {
            if !filter.exits(index, write) {
                bitmap[byte] &= !mask;
            }
        }
    };
    for &(index, read, write) in PASS_THROUGH.iter() {
        if read {
            pass(index, false);
        }
        if write {
            pass(index, true);
        }
    }
    if tsc_offsetting {
        pass(msr::TSC, false);
    }
}
