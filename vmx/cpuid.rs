// SPDX-License-Identifier: GPL-2.0
//! What a guest sees from CPUID (pure logic): the host's values, less what
//! rvmx does not virtualize. SDM Vol. 2A, CPUID.

/// Leaf 1 ECX bits hidden from the guest.
pub mod leaf1_ecx {
    pub(super) const MONITOR: u32 = 1 << 3; // MONITOR/MWAIT exit to rvmx
    /// VMX (SDM Vol. 3C 24.6); guests get no nested VMX.
    pub const VMX: u32 = 1 << 5;
    pub(super) const SMX: u32 = 1 << 6;
    pub(super) const PDCM: u32 = 1 << 15; // no perf capabilities MSR
    pub(super) const X2APIC: u32 = 1 << 21; // no virtual APIC yet
    pub(super) const TSC_DEADLINE: u32 = 1 << 24;
    pub(super) const XSAVE: u32 = 1 << 26; // XSETBV is not handled yet
    pub(super) const OSXSAVE: u32 = 1 << 27;
    pub(super) const AVX: u32 = 1 << 28;
    pub(super) const HYPERVISOR: u32 = 1 << 31; // set: "running under a hypervisor"
}

/// Leaf 7 subleaf 0 EBX bits hidden (they need XSAVE-enabled state).
const LEAF7_EBX_HIDDEN: u32 = (1 << 5) // AVX2
    | (1 << 16) | (1 << 17) | (1 << 21) | (1 << 26) | (1 << 27) | (1 << 28) | (1 << 30) | (1 << 31); // AVX-512

/// Hypervisor leaves: 0x4000_0000 gives the highest one and the vendor.
pub const HV_LEAF: u32 = 0x4000_0000;
/// "rvmxrvmxrvmx" as EBX, ECX, EDX.
pub const HV_SIGNATURE: [u32; 3] = [
    u32::from_le_bytes(*b"rvmx"),
    u32::from_le_bytes(*b"rvmx"),
    u32::from_le_bytes(*b"rvmx"),
];

/// The guest's CPUID result for `leaf`/`subleaf`, from the host's `raw`
/// result [eax, ebx, ecx, edx], for vCPU `apic_id`.
pub fn guest_cpuid(leaf: u32, _subleaf: u32, raw: [u32; 4], apic_id: u8) -> [u32; 4] {
    let [mut a, mut b, mut c, mut d] = raw;
    match leaf {
        1 => {
            use leaf1_ecx::*;
            c &= !(MONITOR | VMX | SMX | PDCM | X2APIC | TSC_DEADLINE | XSAVE | OSXSAVE | AVX);
            c |= HYPERVISOR;
            // EBX[31:24]: initial APIC ID.
            b = (b & 0x00ff_ffff) | (u32::from(apic_id) << 24);
        }
        7 => {
            b &= !LEAF7_EBX_HIDDEN;
            c = 0;
            d = 0;
        }
        // Architectural performance monitoring and XSAVE state: none.
        0xa | 0xd => [a, b, c, d] = [0; 4],
        HV_LEAF => {
            a = HV_LEAF;
            [b, c, d] = HV_SIGNATURE;
        }
        _ => {}
    }
    [a, b, c, d]
}
