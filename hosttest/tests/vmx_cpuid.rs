//! The guest's CPUID table (`vmx::cpuid`): what the supported and default
//! tables hide and keep, the `Enabled` switches, Intel's out-of-range rule,
//! subleaf significance, validation of userland's table and the fields
//! `answer` patches per vCPU. Against a fake Skylake-SP host (and a
//! Sapphire-Rapids-like one for AMX).

use rvmx_pure::vmx::cpuid::*;
use rvmx_pure::vmx::exit::cr::xcr0_valid;
use rvmx_pure::x86::{cr4, xcr0};

/// Bits rvmx hides, which vmx/cpuid.rs names only in its doc comments
/// (SDM Vol. 2A, CPUID).
mod hidden {
    pub mod leaf1_ecx {
        pub const DTES64: u32 = 1 << 2;
        pub const MONITOR: u32 = 1 << 3;
        pub const DS_CPL: u32 = 1 << 4;
        pub const SMX: u32 = 1 << 6;
        pub const EST: u32 = 1 << 7;
        pub const TM2: u32 = 1 << 8;
        pub const CNXT_ID: u32 = 1 << 10;
        pub const SDBG: u32 = 1 << 11;
        pub const XTPR: u32 = 1 << 14;
        pub const PDCM: u32 = 1 << 15;
        pub const DCA: u32 = 1 << 18;
    }
    pub mod leaf1_edx {
        pub const PSN: u32 = 1 << 18;
        pub const DS: u32 = 1 << 21;
        pub const ACPI: u32 = 1 << 22;
        pub const TM: u32 = 1 << 29;
        pub const PBE: u32 = 1 << 31;
    }
    pub mod leaf7_ebx {
        pub const SGX: u32 = 1 << 2;
        pub const RDT_M: u32 = 1 << 12;
        pub const MPX: u32 = 1 << 14;
        pub const RDT_A: u32 = 1 << 15;
        pub const PT: u32 = 1 << 25;
    }
    pub mod leaf7_ecx {
        pub const WAITPKG: u32 = 1 << 5;
        pub const CET_SS: u32 = 1 << 7;
        pub const TME: u32 = 1 << 13;
        pub const KL: u32 = 1 << 23;
        pub const BUS_LOCK_DETECT: u32 = 1 << 24;
        pub const ENQCMD: u32 = 1 << 29;
        pub const SGX_LC: u32 = 1 << 30;
        pub const PKS: u32 = 1 << 31;
    }
    pub mod leaf7_edx {
        pub const UINTR: u32 = 1 << 5;
        pub const HYBRID: u32 = 1 << 15;
        pub const PCONFIG: u32 = 1 << 18;
        pub const ARCH_LBR: u32 = 1 << 19;
        pub const CET_IBT: u32 = 1 << 20;
        pub const CORE_CAPABILITIES: u32 = 1 << 30;
    }
    pub mod leaf7_1_eax {
        pub const FRED: u32 = 1 << 17;
        pub const HRESET: u32 = 1 << 22;
        pub const LAM: u32 = 1 << 26;
    }
    pub mod leaf7_1_edx {
        pub const AVX10: u32 = 1 << 19;
        pub const APX_F: u32 = 1 << 21;
    }
    pub mod leaf_d1_eax {
        pub const XFD: u32 = 1 << 4;
    }
}

const GENU: u32 = 0x756e_6547;
const INEI: u32 = 0x4965_6e69;
const NTEL: u32 = 0x6c65_746e;

/// A Xeon Gold 6130 (family 6, model 0x55), APIC ID 0x1a, XCR0 0x2ff.
fn skx(leaf: u32, sub: u32) -> [u32; 4] {
    match (leaf, sub) {
        (0, _) => [0x16, GENU, NTEL, INEI],
        (1, _) => [0x0005_0654, 0x1a20_0800, 0x7ffe_fbff, 0xbfeb_fbff],
        (2, _) => [0x00fe_ff01, 0xf0, 0, 0],
        (4, 0) => [0x7c00_4121, 0x01c0_003f, 0x3f, 0],
        (4, 1) => [0x7c00_4122, 0x01c0_003f, 0x3f, 0],
        (4, 2) => [0x7c00_4143, 0x03c0_003f, 0x3ff, 0],
        (4, 3) => [0x7c0f_c163, 0x0280_003f, 0xdfff, 4],
        (4, _) => [0; 4],
        (5, _) => [0x40, 0x40, 3, 0x2020],
        (6, _) => [0x77, 2, 9, 0],
        (7, 0) => [0, 0xd39f_fffb, 0x18, 0xbc00_0400],
        (7, _) => [0; 4],
        (0xa, _) => [0x0730_0404, 0, 0, 0x603],
        (0xb, 0) => [1, 2, 0x100, 0x1a],
        (0xb, 1) => [5, 0x20, 0x201, 0x1a],
        (0xb, s) => [0, 0, s & 0xff, 0x1a],
        (0xd, 0) => [0x2ff, 0xa88, 0xa88, 0],
        (0xd, 1) => [0xf, 0xa08, 0x100, 0],
        (0xd, 2) => [0x100, 0x240, 0, 0],
        (0xd, 3) => [0x40, 0x3c0, 0, 0],
        (0xd, 4) => [0x40, 0x400, 0, 0],
        (0xd, 5) => [0x40, 0x440, 0, 0],
        (0xd, 6) => [0x200, 0x480, 0, 0],
        (0xd, 7) => [0x400, 0x680, 0, 0],
        (0xd, 8) => [0x80, 0, 1, 0],
        (0xd, 9) => [8, 0xa80, 0, 0],
        (0xd, _) => [0; 4],
        (0x14, 0) => [1, 0xf, 7, 0],
        (0x14, 1) => [0x0204_0002, 0x003f_3fff, 0, 0],
        (0x15, _) => [2, 0xa8, 0, 0],
        (0x16, _) => [0x834, 0xed8, 0x64, 0],
        (0x8000_0000, _) => [0x8000_0008, 0, 0, 0],
        (0x8000_0001, _) => [0, 0, 0x121, 0x2c10_0800],
        (0x8000_0002, _) => [0x6c65_746e, 0x2952_2820, 0x6f65_5820, 0x2952_286e],
        (0x8000_0003, _) => [0x6c6f_4720, 0x3620_6464, 0x2030_3331, 0x2055_5043],
        (0x8000_0004, _) => [0x3220_4020, 0x3030_2e31, 0x007a_4847, 0],
        (0x8000_0006, _) => [0, 0, 0x0400_8040, 0],
        (0x8000_0007, _) => [0, 0, 0, 0x100],
        (0x8000_0008, _) => [0x302e, 0, 0, 0],
        (1..=0x16, _) => [0; 4],
        // Out of range: the highest basic leaf (what a real CPU does).
        _ => skx(0x16, sub),
    }
}

/// Sapphire-Rapids-like: SKX plus leaves up to 0x1f, leaf 7.1/7.2, AMX
/// (XCR0 bits 17/18, leaves 0x1d/0x1e), and XFD in 0xd.1.
fn spr(leaf: u32, sub: u32) -> [u32; 4] {
    match (leaf, sub) {
        (0, _) => [0x20, GENU, NTEL, INEI],
        (7, 0) => {
            let r = skx(7, 0);
            [2, r[1], r[2] | 1 << 22, r[3] | 0x0340_0000]
        }
        (7, 1) => [0x0020_1c30, 0, 0, 0],
        (7, 2) => [0, 0, 0, 0x3f],
        (0xd, 0) => [0x0006_02ff, 0x2b00, 0x2b00, 0],
        (0xd, 1) => [0x1f, 0x2b00, 0x1900, 0],
        (0xd, 17) => [0x40, 0xac0, 2, 0],
        (0xd, 18) => [0x2000, 0xb00, 6, 0],
        (0x18, 0) => [1, 0, 0, 0],
        (0x18, 1) => [0, 0x0008_0007, 1, 0x4121],
        (0x1d, 0) => [1, 0, 0, 0],
        (0x1d, 1) => [0x0400_2000, 0x0008_0040, 0x10, 0],
        (0x1e, 0) => [0, 0x4000, 0, 0],
        (0x1f, 0) => [1, 2, 0x100, 0x1a],
        (0x1f, 1) => [7, 0x60, 0x201, 0x1a],
        (0x1f, s) => [0, 0, s & 0xff, 0x1a],
        (0x17..=0x20, _) => [0; 4],
        (0..=0x16, _) | (0x8000_0000..=0x8000_0008, _) => skx(leaf, sub),
        _ => spr(0x20, sub),
    }
}

/// A host that sets every bit in the feature leaves (to see the allowlists
/// at work), SKX elsewhere.
fn all_ones(leaf: u32, sub: u32) -> [u32; 4] {
    match (leaf, sub) {
        (1, _) => [0x0005_0654, u32::MAX, u32::MAX, u32::MAX],
        (7, 0) => [2, u32::MAX, u32::MAX, u32::MAX],
        (7, 1 | 2) => [u32::MAX; 4],
        (0x8000_0001 | 0x8000_0007 | 0x8000_0008, _) => [u32::MAX; 4],
        (0xd, 1) => [u32::MAX, 0, u32::MAX, u32::MAX],
        _ => skx(leaf, sub),
    }
}

const ALL: Enabled = Enabled {
    rdtscp: true,
    invpcid: true,
    tsc_adjust: true,
    xsave: Some(u64::MAX),
    pku: true,
    apic: true,
    x2apic: true,
    tsc_deadline: true,
    spec_ctrl: true,
    flush_l1d: true,
    arch_capabilities: true,
};

fn default_of(host: fn(u32, u32) -> [u32; 4], en: &Enabled) -> Vec<CpuidEntry> {
    let mut out = [CpuidEntry::default(); MAX_ENTRIES];
    let n = default_table(host, en, &mut out);
    out[..n].to_vec()
}

fn supported_of(host: fn(u32, u32) -> [u32; 4], en: &Enabled) -> Vec<CpuidEntry> {
    let mut out = [CpuidEntry::default(); MAX_ENTRIES];
    let n = supported(host, en, &mut out);
    out[..n].to_vec()
}

fn entry(leaf: u32, subleaf: u32, flags: u32, regs: [u32; 4]) -> CpuidEntry {
    CpuidEntry { leaf, subleaf, flags, regs }
}

fn set(t: &mut [CpuidEntry], leaf: u32, sub: u32, reg: Reg, f: impl Fn(u32) -> u32) {
    let e = t.iter_mut().find(|e| e.leaf == leaf && e.subleaf == sub).expect("entry");
    e.regs[reg as usize] = f(e.regs[reg as usize]);
}

const DYN: Dynamic = Dynamic { cr4: 0, xcr0: 1, apic_id: 0, apic_enabled: true };

// --- What the tables hide and keep -----------------------------------------

// The host-only features, and every other leaf 1 bit rvmx cannot
// give, are hidden even from a host that has every bit; HYPERVISOR is set.
#[test]
fn leaf1_hides_host_only_features() {
    let t = default_of(all_ones, &ALL);
    let [_, _, ecx, edx] = lookup(&t, 1, 0);
    use hidden::leaf1_ecx::*;
    use leaf1_ecx::*;
    for (name, bit) in [
        ("DTES64", DTES64),
        ("MONITOR", MONITOR),
        ("DS-CPL", DS_CPL),
        ("VMX", VMX),
        ("SMX", SMX),
        ("EST", EST),
        ("TM2", TM2),
        ("CNXT-ID", CNXT_ID),
        ("SDBG", SDBG),
        ("xTPR", XTPR),
        ("PDCM", PDCM),
        ("reserved 16", 1 << 16),
        ("DCA", DCA),
        ("OSXSAVE (dynamic)", OSXSAVE),
    ] {
        assert_eq!(ecx & bit, 0, "leaf 1 ECX {name}");
    }
    use hidden::leaf1_edx::*;
    use leaf1_edx::*;
    for (name, bit) in [("PSN", PSN), ("DS", DS), ("ACPI", ACPI), ("TM", TM), ("PBE", PBE), ("rsvd 10", 1 << 10)] {
        assert_eq!(edx & bit, 0, "leaf 1 EDX {name}");
    }
    assert_ne!(ecx & HYPERVISOR, 0);
    // What ALL turns on is there.
    for bit in [XSAVE, AVX, FMA, F16C, X2APIC, TSC_DEADLINE, PCID, SSE4_2] {
        assert_ne!(ecx & bit, 0, "{bit:#x}");
    }
    assert_ne!(edx & APIC, 0);
}

// The default on Skylake with nothing enabled: no APIC (the bug),
// no XSAVE/AVX family, no x2APIC or TSC deadline; the rest is the host's.
#[test]
fn skylake_default_leaf1() {
    let t = default_of(skx, &Enabled::NONE);
    let [eax, ebx, ecx, edx] = lookup(&t, 1, 0);
    assert_eq!(eax, 0x0005_0654);
    assert_eq!(ebx, 0x0020_0800, "APIC ID is per vCPU; the rest the host's");
    use leaf1_ecx::*;
    assert_eq!(ecx & (XSAVE | OSXSAVE | AVX | FMA | F16C | X2APIC | TSC_DEADLINE), 0);
    assert_eq!(ecx & (SSE3 | PCLMULQDQ | SSSE3 | CX16 | PCID | SSE4_1 | SSE4_2 | MOVBE | POPCNT | AES | RDRAND),
        0x7ffe_fbff & (SSE3 | PCLMULQDQ | SSSE3 | CX16 | PCID | SSE4_1 | SSE4_2 | MOVBE | POPCNT | AES | RDRAND));
    assert_eq!(edx & leaf1_edx::APIC, 0, "APIC without a local APIC");
    use hidden::leaf1_edx::{ACPI, DS, PBE, TM};
    assert_eq!(edx, 0xbfeb_fbff & !(leaf1_edx::APIC | DS | ACPI | TM | PBE));
}

// RDTSCP (0x8000_0001 EDX[27]) and RDPID (7.0 ECX[22]) #UD without
// "enable RDTSCP": shown only with `rdtscp`.
#[test]
fn rdtscp_and_rdpid_need_enable_rdtscp() {
    let off = default_of(all_ones, &Enabled::NONE);
    assert_eq!(lookup(&off, 0x8000_0001, 0)[3] & ext1_edx::RDTSCP, 0);
    assert_eq!(lookup(&off, 7, 0)[2] & leaf7_ecx::RDPID, 0);
    let on = default_of(all_ones, &Enabled { rdtscp: true, ..Enabled::NONE });
    assert_ne!(lookup(&on, 0x8000_0001, 0)[3] & ext1_edx::RDTSCP, 0);
    assert_ne!(lookup(&on, 7, 0)[2] & leaf7_ecx::RDPID, 0);
    let rdtscp = |t: &[CpuidEntry]| guest_has_bit(t, 0x8000_0001, 0, Reg::Edx, ext1_edx::RDTSCP);
    assert!(rdtscp(&on) && !rdtscp(&off));
}

// INVPCID (7.0 EBX[10]) #UDs without "enable INVPCID".
#[test]
fn invpcid_needs_enable_invpcid() {
    assert_eq!(lookup(&default_of(skx, &Enabled::NONE), 7, 0)[1] & leaf7_ebx::INVPCID, 0);
    let on = default_of(skx, &Enabled { invpcid: true, ..Enabled::NONE });
    assert_ne!(lookup(&on, 7, 0)[1] & leaf7_ebx::INVPCID, 0);
}

// IA32_TSC_ADJUST: shown when rvmx emulates it, whatever the host has.
#[test]
fn tsc_adjust_follows_enabled() {
    assert_eq!(lookup(&default_of(all_ones, &Enabled::NONE), 7, 0)[1] & leaf7_ebx::TSC_ADJUST, 0);
    fn no_tsc_adjust(l: u32, s: u32) -> [u32; 4] {
        let r = skx(l, s);
        if l == 7 { [r[0], r[1] & !leaf7_ebx::TSC_ADJUST, r[2], r[3]] } else { r }
    }
    let t = default_of(no_tsc_adjust, &Enabled { tsc_adjust: true, ..Enabled::NONE });
    assert_ne!(lookup(&t, 7, 0)[1] & leaf7_ebx::TSC_ADJUST, 0);
}

// APIC, x2APIC, TSC deadline and ARAT need the emulated local APIC; with
// it they do not need the host (rvmx emulates them, as KVM).
#[test]
fn apic_bits_follow_enabled() {
    let en = Enabled { x2apic: true, tsc_deadline: true, ..Enabled::NONE };
    let t = default_of(skx, &en);
    let [_, _, ecx, edx] = lookup(&t, 1, 0);
    assert_eq!(ecx & (leaf1_ecx::X2APIC | leaf1_ecx::TSC_DEADLINE), 0, "x2APIC without an APIC");
    assert_eq!(edx & leaf1_edx::APIC, 0);
    assert_eq!(lookup(&t, 6, 0), [0; 4]);

    let t = default_of(skx, &Enabled { apic: true, ..Enabled::NONE });
    let [_, _, ecx, edx] = lookup(&t, 1, 0);
    assert_ne!(edx & leaf1_edx::APIC, 0);
    assert_eq!(ecx & (leaf1_ecx::X2APIC | leaf1_ecx::TSC_DEADLINE), 0);
    assert_eq!(lookup(&t, 6, 0), [leaf6_eax::ARAT, 0, 0, 0], "leaf 6: ARAT only");

    fn no_apic_host(l: u32, s: u32) -> [u32; 4] {
        let r = skx(l, s);
        match l {
            1 => [r[0], r[1], r[2] & !(leaf1_ecx::X2APIC | leaf1_ecx::TSC_DEADLINE), r[3] & !leaf1_edx::APIC],
            7 => [r[0], r[1], r[2], r[3] & !leaf7_edx::ARCH_CAPABILITIES],
            _ => r,
        }
    }
    let en = Enabled { apic: true, x2apic: true, tsc_deadline: true, arch_capabilities: true, ..Enabled::NONE };
    let t = default_of(no_apic_host, &en);
    let [_, _, ecx, edx] = lookup(&t, 1, 0);
    assert_eq!(ecx & (leaf1_ecx::X2APIC | leaf1_ecx::TSC_DEADLINE), leaf1_ecx::X2APIC | leaf1_ecx::TSC_DEADLINE);
    assert_ne!(edx & leaf1_edx::APIC, 0);
    assert_ne!(lookup(&t, 7, 0)[3] & leaf7_edx::ARCH_CAPABILITIES, 0);
}

// Without `xsave`: no XSAVE, no AVX family (its state cannot be enabled),
// no leaf 0xd at all.
#[test]
fn no_xsave_hides_xsave_avx_and_leaf_d() {
    let t = default_of(skx, &Enabled::NONE);
    assert_eq!(lookup(&t, 1, 0)[2] & (leaf1_ecx::XSAVE | leaf1_ecx::AVX), 0);
    assert_eq!(lookup(&t, 7, 0)[1] & (leaf7_ebx::AVX2 | leaf7_ebx::AVX512F | leaf7_ebx::AVX512VL), 0);
    for sub in [0, 1, 2, 5, 9] {
        assert_eq!(lookup(&t, 0xd, sub), [0; 4], "0xd.{sub}");
    }
    assert!(t.iter().all(|e| e.leaf != 0xd));
    assert_eq!(guest_xcr0_mask(&t, &supported_of(skx, &Enabled::NONE)), 0);
}

// XSAVE with x87/SSE/AVX: AVX and AVX2 shown, AVX-512 not; leaf 0xd lists
// those states only, sizes recomputed (576 + 256), no XSAVES or XSS.
#[test]
fn xsave_limited_to_enabled_states() {
    let en = Enabled { xsave: Some(xcr0::X87 | xcr0::SSE | xcr0::AVX), ..Enabled::NONE };
    let t = default_of(skx, &en);
    assert_ne!(lookup(&t, 1, 0)[2] & (leaf1_ecx::XSAVE | leaf1_ecx::AVX | leaf1_ecx::FMA), 0);
    let ebx7 = lookup(&t, 7, 0)[1];
    assert_ne!(ebx7 & leaf7_ebx::AVX2, 0);
    assert_eq!(ebx7 & (leaf7_ebx::AVX512F | leaf7_ebx::AVX512CD | leaf7_ebx::AVX512BW), 0);
    assert_eq!(lookup(&t, 0xd, 0), [7, 832, 832, 0]);
    assert_eq!(lookup(&t, 0xd, 1), [7, 832, 0, 0], "XSAVEOPT, XSAVEC, XGETBV1; no XSAVES/XSS");
    assert_eq!(lookup(&t, 0xd, 2), [0x100, 0x240, 0, 0]);
    for sub in [3, 4, 5, 6, 7, 8, 9] {
        assert_eq!(lookup(&t, 0xd, sub), [0; 4], "0xd.{sub}");
    }
}

// Everything SKX has: MPX states never (IA32_BNDCFGS is not switched), the
// PT (supervisor) state never; AVX-512 and PKRU with their switches. The
// sizes are SKX's for XCR0 0x2e7 (standard 0xa88, compacted 2440).
#[test]
fn xsave_avx512_pkru_without_mpx() {
    let t = default_of(skx, &ALL);
    assert_eq!(lookup(&t, 0xd, 0), [0x2e7, 0xa88, 0xa88, 0]);
    assert_eq!(lookup(&t, 0xd, 1), [7, 2440, 0, 0]);
    assert_eq!(lookup(&t, 0xd, 3), [0; 4], "MPX BNDREGS");
    assert_eq!(lookup(&t, 0xd, 8), [0; 4], "PT");
    assert_eq!(lookup(&t, 0xd, 9), [8, 0xa80, 0, 0]);
    let ebx7 = lookup(&t, 7, 0)[1];
    assert_eq!(ebx7 & hidden::leaf7_ebx::MPX, 0);
    assert_eq!(ebx7 & (leaf7_ebx::AVX512F | leaf7_ebx::AVX512VL), leaf7_ebx::AVX512F | leaf7_ebx::AVX512VL);
    assert_ne!(lookup(&t, 7, 0)[2] & leaf7_ecx::PKU, 0);

    // PKRU and PKU need `pku`.
    let t = default_of(skx, &Enabled { pku: false, ..ALL });
    assert_eq!(lookup(&t, 0xd, 0)[0], 0xe7);
    assert_eq!(lookup(&t, 7, 0)[2] & leaf7_ecx::PKU, 0);
    assert_eq!(lookup(&t, 0xd, 9), [0; 4]);
}

// A group asked for in part is dropped: AVX-512 needs its three states,
// AVX needs SSE; x87 is always in.
#[test]
fn incomplete_xcr0_groups_dropped() {
    let t = default_of(skx, &Enabled { xsave: Some(xcr0::SSE | xcr0::AVX | (1 << 5)), ..Enabled::NONE });
    assert_eq!(lookup(&t, 0xd, 0)[0], 7);
    assert_eq!(lookup(&t, 7, 0)[1] & leaf7_ebx::AVX512F, 0);
    let t = default_of(skx, &Enabled { xsave: Some(xcr0::X87 | xcr0::AVX), ..Enabled::NONE });
    assert_eq!(lookup(&t, 0xd, 0)[0], 1);
    assert_eq!(lookup(&t, 1, 0)[2] & leaf1_ecx::AVX, 0);
    assert_ne!(lookup(&t, 1, 0)[2] & leaf1_ecx::XSAVE, 0);
}

// AMX: both states, its feature bits and leaves 0x1d/0x1e; without XFD
// (ECX[2] of 0xd.18 cleared, 0xd.1 EAX[4] hidden). Half of it: none.
#[test]
fn amx_needs_both_states() {
    let t = default_of(spr, &ALL);
    assert_eq!(lookup(&t, 0xd, 0)[0], 0x0006_02e7);
    assert_eq!(lookup(&t, 0xd, 18), [0x2000, 0xb00, 2, 0]);
    assert_eq!(lookup(&t, 0xd, 1)[0] & (hidden::leaf_d1_eax::XFD | leaf_d1_eax::XSAVES), 0);
    let amx = leaf7_edx::AMX_TILE | leaf7_edx::AMX_INT8 | leaf7_edx::AMX_BF16;
    assert_eq!(lookup(&t, 7, 0)[3] & amx, amx);
    assert_eq!(lookup(&t, 0x1d, 1), spr(0x1d, 1));
    assert_eq!(lookup(&t, 0x1e, 0), spr(0x1e, 0));

    let t = default_of(spr, &Enabled { xsave: Some(!xcr0::TILEDATA), ..ALL });
    assert_eq!(lookup(&t, 0xd, 0)[0], 0x2e7);
    assert_eq!(lookup(&t, 7, 0)[3] & amx, 0);
    assert_eq!(lookup(&t, 0x1d, 1), [0; 4]);
}

// Leaf 7: every bit rvmx cannot give is hidden from a host that has them
// all, in each subleaf; at most subleaf 2.
#[test]
fn leaf7_hides_what_rvmx_cannot_give() {
    let t = default_of(all_ones, &ALL);
    let [eax, ebx, ecx, edx] = lookup(&t, 7, 0);
    assert_eq!(eax, 2, "highest subleaf capped at 2");
    use hidden::leaf7_ebx::*;
    assert_eq!(ebx & (SGX | RDT_M | MPX | RDT_A | PT | 1 << 22), 0, "{ebx:#x}");
    use leaf7_ecx::*;
    use hidden::leaf7_ecx::*;
    let hidden = WAITPKG | CET_SS | TME | 0x3e_0000 | KL | BUS_LOCK_DETECT | ENQCMD | SGX_LC | PKS | OSPKE | 1 << 15;
    assert_eq!(ecx & hidden, 0, "{ecx:#x}");
    use leaf7_edx::*;
    use hidden::leaf7_edx::*;
    let hidden = 0b11 | UINTR | 0xc0 | 1 << 9 | 1 << 11 | 1 << 12 | 1 << 13 | HYBRID | 1 << 17 | PCONFIG | ARCH_LBR
        | CET_IBT | 1 << 21 | CORE_CAPABILITIES;
    assert_eq!(edx & hidden, 0, "{edx:#x}");
    assert_ne!(edx & (MD_CLEAR | SERIALIZE | FSRM), 0);

    let [eax, ebx, ecx, edx] = lookup(&t, 7, 1);
    use leaf7_1_eax::*;
    use hidden::leaf7_1_eax::*;
    let hidden = 1 << 3 | 1 << 6 | 1 << 8 | FRED | 1 << 18 | 1 << 20 | HRESET | LAM | 1 << 27;
    assert_eq!(eax & hidden, 0, "{eax:#x}");
    assert_ne!(eax & (AVX_VNNI | CMPCCXADD | WRMSRNS), 0);
    assert_eq!((ebx, ecx), (0, 0));
    use hidden::leaf7_1_edx::*;
    assert_eq!(edx & (1 << 15 | 1 << 17 | 1 << 18 | AVX10 | APX_F), 0, "{edx:#x}");
    assert_eq!(lookup(&t, 7, 2), [0, 0, 0, 0x3f], "SPEC_CTRL controls and MCDT_NO, not bits 6/7");
    assert_eq!(lookup(&t, 7, 3), [0; 4]);
}

// Speculation controls: IBRS/IBPB, STIBP, SSBD (and 7.2) need `spec_ctrl`,
// FLUSH_L1D `flush_l1d`, ARCH_CAPABILITIES its own; MD_CLEAR always.
#[test]
fn speculation_bits_follow_enabled() {
    use leaf7_edx::*;
    let edx = |en: Enabled| lookup(&default_of(skx, &en), 7, 0)[3];
    assert_eq!(edx(Enabled::NONE), MD_CLEAR);
    assert_eq!(edx(Enabled { spec_ctrl: true, ..Enabled::NONE }), MD_CLEAR | SPEC_CTRL | STIBP | SSBD);
    assert_eq!(edx(Enabled { flush_l1d: true, ..Enabled::NONE }), MD_CLEAR | FLUSH_L1D);
    assert_eq!(edx(Enabled { arch_capabilities: true, ..Enabled::NONE }), MD_CLEAR | ARCH_CAPABILITIES);
    let t = default_of(spr, &Enabled::NONE);
    assert_eq!(lookup(&t, 7, 2), [0, 0, 0, leaf7_2_edx::MCDT_NO]);
}

// Leaves rvmx does not describe are zeros inside the range: PSN, MONITOR,
// thermal (no APIC), PMU, PT and its subleaves.
#[test]
fn host_only_leaves_are_zeros() {
    let t = default_of(skx, &Enabled::NONE);
    for (leaf, sub) in [(3, 0), (5, 0), (6, 0), (9, 0), (0xa, 0), (0xf, 0), (0x10, 1), (0x12, 0), (0x14, 0), (0x14, 1)] {
        assert_eq!(lookup(&t, leaf, sub), [0; 4], "{leaf:#x}.{sub}");
    }
    // Kept: cache descriptors, TSC and frequency leaves.
    for leaf in [2, 0x15, 0x16] {
        assert_eq!(lookup(&t, leaf, 0), skx(leaf, 0), "{leaf:#x}");
    }
}

// 0x8000_0001 keeps LAHF, LZCNT, PREFETCHW, SYSCALL, NX, 1-GByte pages and
// LM, nothing else; address sizes, invariant TSC and the brand string are
// the host's; the highest extended leaf is capped at 0x8000_0008.
#[test]
fn extended_leaves() {
    let t = default_of(skx, &Enabled::NONE);
    assert_eq!(lookup(&t, 0x8000_0001, 0), [0, 0, 0x121, 0x2c10_0800 & !ext1_edx::RDTSCP]);
    let t1 = default_of(all_ones, &ALL);
    use ext1_edx::*;
    assert_eq!(lookup(&t1, 0x8000_0001, 0)[2], ext1_ecx::LAHF_LM | ext1_ecx::LZCNT | ext1_ecx::PREFETCHW);
    assert_eq!(lookup(&t1, 0x8000_0001, 0)[3], SYSCALL | NX | PDPE1GB | RDTSCP | LM);
    assert_eq!(lookup(&t1, 0x8000_0007, 0), [0, 0, 0, ext7_edx::INVARIANT_TSC]);
    assert_eq!(lookup(&t1, 0x8000_0008, 0), [0xffff, ext8_ebx::WBNOINVD, 0, 0]);
    assert_eq!(lookup(&t, 0x8000_0008, 0), [0x302e, 0, 0, 0]);
    for leaf in 0x8000_0002..=0x8000_0004 {
        assert_eq!(lookup(&t, leaf, 0), skx(leaf, 0));
    }
    assert_eq!(lookup(&t, 0x8000_0000, 0), [0x8000_0008, 0, 0, 0]);
    let wide = |l: u32, s: u32| if l == 0x8000_0000 { [0x8000_0021, 0, 0, 0] } else { skx(l, s) };
    let mut out = [CpuidEntry::default(); MAX_ENTRIES];
    let n = supported(wide, &Enabled::NONE, &mut out);
    assert_eq!(lookup(&out[..n], 0x8000_0000, 0)[0], 0x8000_0008);
}

// Leaf 0x4000_0000: the highest hypervisor leaf (itself) and the vendor.
#[test]
fn hypervisor_leaf() {
    let t = default_of(skx, &Enabled::NONE);
    let r = lookup(&t, HV_LEAF, 0);
    assert_eq!(r[0], HV_LEAF);
    let sig: Vec<u8> = r[1..].iter().flat_map(|r| r.to_le_bytes()).collect();
    assert_eq!(&sig, b"rvmxrvmxrvmx");
}

// Subleaves: leaf 4 up to and with the null cache type, leaf 7 up to its
// EAX (at most 2), topology leaves one "no level" subleaf; the indexed
// leaves flagged SUBLEAF_SIGNIFICANT, others not; one entry per
// (leaf, subleaf), in order.
#[test]
fn subleaf_enumeration_and_flags() {
    let t = default_of(skx, &ALL);
    let subs = |leaf| t.iter().filter(|e| e.leaf == leaf).map(|e| e.subleaf).collect::<Vec<_>>();
    assert_eq!(subs(4), [0, 1, 2, 3, 4]);
    assert_eq!(lookup(&t, 4, 4), [0; 4]);
    assert_eq!(subs(7), [0]);
    assert_eq!(subs(0xb), [0]);
    assert_eq!(lookup(&t, 0xb, 0), [0; 4], "no topology");
    assert_eq!(subs(0xd), [0, 1, 2, 5, 6, 7, 9]);
    for e in &t {
        let want = matches!(e.leaf, 4 | 7 | 0xb | 0xd);
        assert_eq!(e.flags == SUBLEAF_SIGNIFICANT, want, "{:#x}", e.leaf);
    }
    assert!(t.windows(2).all(|w| (w[0].leaf, w[0].subleaf) < (w[1].leaf, w[1].subleaf)), "order, no duplicates");
    let t = default_of(spr, &ALL);
    let subs = |leaf| t.iter().filter(|e| e.leaf == leaf).map(|e| e.subleaf).collect::<Vec<_>>();
    assert_eq!(subs(7), [0, 1, 2]);
    assert_eq!(subs(0x18), [0, 1]);
    assert_eq!(subs(0x1d), [0, 1]);
    assert_eq!(subs(0x1f), [0]);
    assert!(t.len() <= 64, "{} entries", t.len());
}

// Highest leaves: supported says the host's (at most 0x1f); the default
// lowers it to the highest leaf it holds.
#[test]
fn default_caps_highest_leaves() {
    assert_eq!(lookup(&supported_of(skx, &Enabled::NONE), 0, 0)[0], 0x16);
    assert_eq!(lookup(&default_of(skx, &Enabled::NONE), 0, 0)[0], 0x16);
    assert_eq!(lookup(&supported_of(spr, &Enabled::NONE), 0, 0)[0], 0x1f);
    fn to_1c(l: u32, s: u32) -> [u32; 4] {
        if l == 0 { [0x1c, GENU, NTEL, INEI] } else { spr(l, s) }
    }
    assert_eq!(lookup(&supported_of(to_1c, &Enabled::NONE), 0, 0)[0], 0x1c);
    assert_eq!(lookup(&default_of(to_1c, &Enabled::NONE), 0, 0)[0], 0x18);
    assert_eq!(lookup(&default_of(to_1c, &ALL), 0, 0)[0], 0x18);
}

// An `out` too small: filled in order, the highest leaves lowered so the
// table stays consistent.
#[test]
fn short_out_is_cut_consistently() {
    let mut out = [CpuidEntry::default(); 6];
    let n = supported(skx, &Enabled::NONE, &mut out);
    assert_eq!(n, 6);
    let t = &out[..n];
    assert_eq!(t.last().unwrap().leaf, 4);
    assert_eq!(lookup(t, 0, 0)[0], 4);
    assert_eq!(lookup(t, 7, 0), lookup(t, 4, 0), "leaf 7 is out of range now");
    assert_eq!(supported(skx, &Enabled::NONE, &mut []), 0);
}

// --- Intel's out-of-range rule and lookups ----------------------------------

// A basic leaf above the highest answers as the highest basic leaf, with
// the caller's subleaf (SDM Vol. 2A CPUID).
#[test]
fn out_of_range_basic_leaf() {
    let t = default_of(skx, &Enabled::NONE);
    assert_eq!(lookup(&t, 0x17, 0), skx(0x16, 0));
    assert_eq!(lookup(&t, 0x3fff_ffff, 0), skx(0x16, 0));
    let t = [entry(0, 0, 0, [4, 0, 0, 0]), entry(4, 2, SUBLEAF_SIGNIFICANT, [7, 8, 9, 10])];
    assert_eq!(lookup(&t, 9, 2), [7, 8, 9, 10]);
    assert_eq!(lookup(&t, 9, 1), [0; 4]);
}

// Extended leaves above the table's 0x8000_0000 EAX, or with no extended
// leaf at all, and the 0xc000_0000 range, answer as the highest basic leaf.
#[test]
fn out_of_range_extended_leaf() {
    let t = default_of(skx, &Enabled::NONE);
    assert_eq!(lookup(&t, 0x8000_0009, 0), skx(0x16, 0));
    assert_eq!(lookup(&t, 0xc000_0000, 0), skx(0x16, 0));
    let t = [entry(0, 0, 0, [1, 0, 0, 0]), entry(1, 0, 0, [5, 6, 7, 8])];
    assert_eq!(lookup(&t, 0x8000_0000, 0), [5, 6, 7, 8]);
    assert_eq!(lookup(&t, 0x8000_0008, 0), [5, 6, 7, 8]);
}

// Hypervisor range (KVM): per 256 leaves, EAX of the first is the highest;
// above it, or with no first leaf, the highest basic leaf answers.
#[test]
fn hypervisor_range_as_kvm() {
    let t = default_of(skx, &Enabled::NONE);
    assert_eq!(lookup(&t, 0x4000_0001, 0), skx(0x16, 0));
    assert_eq!(lookup(&t, 0x4000_0100, 0), skx(0x16, 0));
    let t = [entry(0, 0, 0, [1, 0, 0, 0]), entry(1, 0, 0, [5, 6, 7, 8]), entry(HV_LEAF, 0, 0, [HV_LEAF + 0x10, 0, 0, 0])];
    assert_eq!(lookup(&t, HV_LEAF + 5, 0), [0; 4], "in range, no entry");
    assert_eq!(lookup(&t, HV_LEAF + 0x11, 0), [5, 6, 7, 8]);
}

// In range without an entry: zeros; an empty table answers zeros.
#[test]
fn missing_leaf_in_range_is_zeros() {
    let t = [entry(0, 0, 0, [7, 1, 2, 3]), entry(1, 0, 0, [5, 6, 7, 8])];
    assert_eq!(lookup(&t, 5, 0), [0; 4]);
    assert_eq!(lookup(&t, 7, 0), [0; 4], "the highest leaf itself may be missing");
    assert_eq!(lookup(&[], 1, 0), [0; 4]);
    assert_eq!(lookup(&[], 0x8000_0001, 0), [0; 4]);
}

// The subleaf matters only with SUBLEAF_SIGNIFICANT; 0xb/0x1f past their
// last level give the subleaf in ECX[7:0] and the x2APIC ID in EDX.
#[test]
fn subleaf_significance() {
    let t = default_of(skx, &Enabled::NONE);
    assert_eq!(lookup(&t, 1, 7), lookup(&t, 1, 0));
    assert_eq!(lookup(&t, 4, 9), [0; 4]);
    assert_eq!(lookup(&t, 0xb, 0x103), [0, 0, 3, 0]);
    let t = [
        entry(0, 0, 0, [0xb, 0, 0, 0]),
        entry(2, 5, 0, [1, 1, 1, 1]),
        entry(0xb, 0, SUBLEAF_SIGNIFICANT, [1, 2, 0x100, 9]),
    ];
    assert_eq!(lookup(&t, 2, 0), [1, 1, 1, 1], "subleaf of a non-significant entry ignored");
    assert_eq!(lookup(&t, 0xb, 4), [0, 0, 4, 9]);
    assert_eq!(find(&t, 2, 3).map(|e| e.subleaf), Some(5));
}

// --- Per-vCPU fields ----------------------------------------------------------

// OSXSAVE follows CR4.OSXSAVE (only with XSAVE), OSPKE CR4.PKE (only with
// PKU); APIC IDs in leaf 1 EBX[31:24] and 0xb/0x1f EDX; APIC clears with
// IA32_APIC_BASE.EN.
#[test]
fn answer_patches_vcpu_fields() {
    let t = default_of(spr, &ALL);
    let d = Dynamic { cr4: cr4::OSXSAVE | cr4::PKE, apic_id: 0x312, ..DYN };
    let r = answer(&t, 1, 0, &d);
    assert_ne!(r[2] & leaf1_ecx::OSXSAVE, 0);
    assert_eq!(r[1] >> 24, 0x12);
    assert_eq!(r[1] & 0xff_ffff, spr(1, 0)[1] & 0xff_ffff);
    assert_ne!(r[3] & leaf1_edx::APIC, 0);
    assert_ne!(answer(&t, 7, 0, &d)[2] & leaf7_ecx::OSPKE, 0);
    assert_eq!(answer(&t, 0xb, 0, &d)[3], 0x312);
    assert_eq!(answer(&t, 0x1f, 5, &d), [0, 0, 5, 0x312]);

    let r = answer(&t, 1, 0, &Dynamic { apic_enabled: false, ..DYN });
    assert_eq!(r[2] & leaf1_ecx::OSXSAVE, 0);
    assert_eq!(r[3] & leaf1_edx::APIC, 0);
    assert_eq!(answer(&t, 7, 0, &DYN)[2] & leaf7_ecx::OSPKE, 0);

    // Without XSAVE or PKU in the table, CR4 does not turn them on.
    let t = default_of(spr, &Enabled::NONE);
    assert_eq!(answer(&t, 1, 0, &d)[2] & leaf1_ecx::OSXSAVE, 0);
    assert_eq!(answer(&t, 7, 0, &d)[2] & leaf7_ecx::OSPKE, 0);
    // Static fields stay.
    assert_eq!(answer(&t, 0x8000_0001, 0, &d), lookup(&t, 0x8000_0001, 0));
}

// Leaf 0xd EBX is the size for the current XCR0: standard in subleaf 0,
// compacted in subleaf 1 (XSAVEC); ECX (all states) does not change.
#[test]
fn answer_xsave_sizes_follow_xcr0() {
    let t = default_of(skx, &ALL);
    let size = |xcr0, sub| answer(&t, 0xd, sub, &Dynamic { xcr0, ..DYN });
    assert_eq!(size(3, 0)[1], 576);
    assert_eq!(size(7, 0)[1], 832);
    assert_eq!(size(0xe7, 0)[1], 0xa80);
    assert_eq!(size(0x2e7, 0)[1], 0xa88);
    assert_eq!(size(0x2e7, 0)[2], 0xa88);
    assert_eq!(size(7, 1)[1], 832);
    assert_eq!(size(0x207, 1)[1], 840);
    assert_eq!(size(0x2e7, 1)[1], 2440);
    // AMX TILEDATA is 64-byte aligned when compacted (ECX[1]).
    let t = default_of(spr, &ALL);
    let sz = answer(&t, 0xd, 1, &Dynamic { xcr0: 0x0006_0207, ..DYN })[1];
    assert_eq!(sz, 896 + 64 + 0x2000, "832 + 8 PKRU, aligned to 896, + 64 TILECFG, + 8192 TILEDATA");
}

// Redirected out-of-range leaves get their per-vCPU fields too.
#[test]
fn answer_redirect_patches_target_leaf() {
    let t = [entry(0, 0, 0, [1, 0, 0, 0]), entry(1, 0, 0, [0x50654, 0xff00_0800, 0, 0])];
    let r = answer(&t, 0x8000_0001, 0, &Dynamic { apic_id: 4, ..DYN });
    assert_eq!(r[1], 0x0400_0800);
}

// --- Validation of userland's table ---------------------------------------------

// The default table, a subset of it, a cleared HYPERVISOR bit, OSXSAVE
// (dynamic) and an empty table are fine.
#[test]
fn validate_accepts_subsets() {
    for (host, en) in [(skx as fn(u32, u32) -> [u32; 4], Enabled::NONE), (skx, ALL), (spr, ALL), (all_ones, ALL)] {
        let s = supported_of(host, &en);
        let mut t = default_of(host, &en);
        assert_eq!(validate(&t, &s), Ok(()));
        set(&mut t, 1, 0, Reg::Ecx, |c| c & !leaf1_ecx::HYPERVISOR & !leaf1_ecx::SSE4_2 | leaf1_ecx::OSXSAVE);
        set(&mut t, 7, 0, Reg::Ecx, |c| c | leaf7_ecx::OSPKE);
        assert_eq!(validate(&t, &s), Ok(()));
        assert_eq!(validate(&t[..3], &s), Ok(()));
    }
    assert_eq!(validate(&[], &[]), Ok(()));
}

// A feature bit the supported table lacks is refused, named.
#[test]
fn validate_rejects_unsupported_features() {
    let s = supported_of(skx, &Enabled::NONE);
    let t = default_of(skx, &Enabled::NONE);
    let try_with = |leaf, sub, reg, bits: u32| {
        let mut t = t.clone();
        set(&mut t, leaf, sub, reg, |v| v | bits);
        validate(&t, &s)
    };
    let reject = |leaf, subleaf, reg, bits| -> Result<(), Reject> { Err(Reject::Feature { leaf, subleaf, reg, bits }) };
    assert_eq!(try_with(1, 0, Reg::Ecx, leaf1_ecx::VMX), reject(1, 0, Reg::Ecx, leaf1_ecx::VMX));
    assert_eq!(try_with(1, 0, Reg::Edx, leaf1_edx::APIC), reject(1, 0, Reg::Edx, leaf1_edx::APIC));
    assert_eq!(try_with(7, 0, Reg::Ebx, leaf7_ebx::INVPCID), reject(7, 0, Reg::Ebx, leaf7_ebx::INVPCID));
    assert_eq!(try_with(0x8000_0001, 0, Reg::Edx, 1 << 27), reject(0x8000_0001, 0, Reg::Edx, 1 << 27));
    // With XSAVE on: an MPX state in XCR0, XSAVES.
    let s = supported_of(skx, &ALL);
    let mut t = default_of(skx, &ALL);
    set(&mut t, 0xd, 0, Reg::Eax, |v| v | 0x18);
    assert_eq!(validate(&t, &s), reject(0xd, 0, Reg::Eax, 0x18));
    let mut t = default_of(skx, &ALL);
    set(&mut t, 0xd, 1, Reg::Eax, |v| v | leaf_d1_eax::XSAVES);
    assert_eq!(validate(&t, &s), reject(0xd, 1, Reg::Eax, leaf_d1_eax::XSAVES));
}

// Structure: too many entries, unknown flags, two entries for one
// (leaf, subleaf) (an entry without SUBLEAF_SIGNIFICANT answers them all).
#[test]
fn validate_rejects_bad_structure() {
    let e = |leaf, sub, flags| entry(leaf, sub, flags, [0; 4]);
    let many = vec![e(0x8000_0002, 0, 0); MAX_ENTRIES + 1];
    assert_eq!(validate(&many, &[]), Err(Reject::TooMany { count: MAX_ENTRIES + 1 }));
    assert_eq!(validate(&[e(4, 0, 2)], &[]), Err(Reject::Flags { leaf: 4, subleaf: 0 }));
    let dup = Err(Reject::Duplicate { leaf: 4, subleaf: 1 });
    assert_eq!(validate(&[e(4, 1, 1), e(4, 1, 1)], &[]), dup);
    assert_eq!(validate(&[e(4, 1, 1), e(4, 2, 0)], &[]), dup);
    assert_eq!(validate(&[e(4, 1, 0), e(4, 2, 1)], &[]), Err(Reject::Duplicate { leaf: 4, subleaf: 1 }));
    assert_eq!(validate(&[e(4, 1, 0), e(4, 1, 0)], &[]), dup);
    assert_eq!(validate(&[e(4, 1, 1), e(4, 2, 1), e(5, 1, 0)], &[]), Ok(()));
}

// Checked as the guest reads it: leaf 7 without SUBLEAF_SIGNIFICANT also
// answers 7.1 (its EAX read as 7.1 EAX features); a leaf past the table's
// highest is never read, so not checked.
#[test]
fn validate_checks_what_the_guest_reads() {
    let s = supported_of(skx, &Enabled::NONE);
    let mut t = default_of(skx, &Enabled::NONE);
    let e7 = t.iter_mut().find(|e| e.leaf == 7).unwrap();
    e7.flags = 0;
    e7.regs[0] = 1;
    assert_eq!(validate(&t, &s), Err(Reject::Feature { leaf: 7, subleaf: 1, reg: Reg::Eax, bits: 1 }));
    let t = [entry(0, 0, 0, [1, 0, 0, 0]), entry(7, 0, SUBLEAF_SIGNIFICANT, [0, u32::MAX, u32::MAX, u32::MAX])];
    assert_eq!(validate(&t, &s), Ok(()));
}

// MAXPHYADDR may shrink, not grow.
#[test]
fn validate_rejects_larger_maxphyaddr() {
    let s = supported_of(skx, &Enabled::NONE);
    let mut t = default_of(skx, &Enabled::NONE);
    set(&mut t, 0x8000_0008, 0, Reg::Eax, |v| v & !0xff | 39);
    assert_eq!(validate(&t, &s), Ok(()));
    set(&mut t, 0x8000_0008, 0, Reg::Eax, |v| v & !0xff | 52);
    assert_eq!(validate(&t, &s), Err(Reject::MaxPhyAddr { guest: 52, supported: 46 }));
}

// --- Helpers for the rest of rvmx ---------------------------------------------------

#[test]
fn guest_has_xcr0_mask_maxphyaddr() {
    use Reg::*;
    let has = |t: &[CpuidEntry], (leaf, sub, reg, bit): (u32, u32, Reg, u32)| guest_has_bit(t, leaf, sub, reg, bit);
    let none = default_of(skx, &Enabled::NONE);
    for f in [Feature::Pae, Feature::Pcid, Feature::Pdpe1gb, Feature::Smep, Feature::Fxsr] {
        assert!(guest_has(&none, f), "{f:?}");
    }
    let e1 = |bit| (0x8000_0001, 0, Edx, bit);
    let l1 = |reg, bit| (1, 0, reg, bit);
    for f in [
        e1(ext1_edx::NX),
        e1(ext1_edx::LM),
        e1(ext1_edx::SYSCALL),
        l1(Edx, leaf1_edx::SSE2),
        l1(Ecx, leaf1_ecx::HYPERVISOR),
    ] {
        assert!(has(&none, f), "{f:x?}");
    }
    for f in [Feature::Xsave, Feature::Pku, Feature::La57] {
        assert!(!guest_has(&none, f), "{f:?}");
    }
    for f in [
        e1(ext1_edx::RDTSCP),
        l1(Edx, leaf1_edx::APIC),
        (7, 0, Ebx, leaf7_ebx::INVPCID),
        (6, 0, Eax, leaf6_eax::ARAT),
    ] {
        assert!(!has(&none, f), "{f:x?}");
    }
    let s = supported_of(skx, &ALL);
    let all = default_of(skx, &ALL);
    assert!(guest_has(&all, Feature::Xsave) && guest_has(&all, Feature::Pku));
    assert!(has(&all, (7, 0, Ebx, leaf7_ebx::AVX512F)));
    assert!(!has(&all, (0xd, 1, Eax, leaf_d1_eax::XSAVES)));
    assert_eq!(guest_xcr0_mask(&all, &s), 0x2e7);
    let mut t = all.clone();
    set(&mut t, 0xd, 0, Reg::Eax, |_| 6);
    assert_eq!(guest_xcr0_mask(&t, &s), 7, "x87 always");
    assert_eq!(guest_maxphyaddr(&all), 46);
    assert_eq!(guest_maxphyaddr(&all[..3]), 36, "no 0x8000_0008: 36");
    // A leaf out of range is not had.
    let t = [entry(0, 0, 0, [0, 0, 0, 0]), entry(1, 0, 0, [0, 0, 0, u32::MAX])];
    assert!(!has(&t, l1(Edx, leaf1_edx::FPU)));
    assert!(!guest_has(&t, Feature::Pae));
}

// XSETBV's rules (SDM Vol. 2B XSETBV), AMX's pair included (exit::cr).
#[test]
fn xcr0_valid_rules() {
    let allowed = 0x0006_02ff;
    for ok in [1, 3, 7, 0xe7, 0x2e7, 0x1f, 0x0006_0003] {
        assert!(xcr0_valid(ok, allowed), "{ok:#x}");
    }
    for bad in [0, 2, 5, 0x27, 0x63, 0xe3, 0xb, 0x13, 0x0002_0003, 0x0004_0003, 1 << 19 | 1] {
        assert!(!xcr0_valid(bad, allowed), "{bad:#x}");
    }
    assert!(!xcr0_valid(7, 3), "outside the allowed mask");
}

// CR4 bits of absent features (and those rvmx never gives) are reserved.
#[test]
fn cr4_reserved_follows_table() {
    let none = cr4_reserved(&default_of(skx, &Enabled::NONE));
    for bit in [cr4::OSXSAVE, cr4::PKE, cr4::VMXE, 1 << 14, cr4::UMIP, cr4::LA57, 1 << 23, 1 << 63] {
        assert_ne!(none & bit, 0, "{bit:#x}");
    }
    for bit in [cr4::PAE, cr4::PGE, cr4::OSFXSR, cr4::PCIDE, cr4::SMEP, cr4::SMAP, cr4::FSGSBASE, cr4::PCE] {
        assert_eq!(none & bit, 0, "{bit:#x}");
    }
    let all = cr4_reserved(&default_of(skx, &ALL));
    assert_eq!(all & (cr4::OSXSAVE | cr4::PKE), 0);
}
