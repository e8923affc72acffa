use rvmx_pure::vmx::cpuid::*;

#[test]
fn leaf1_hides_vmx_and_sets_hypervisor() {
    let host = [0x906ea, 0x0100_0800, 0xfffa_3223 | (1 << 5), 0x178b_fbff];
    let g = guest_cpuid(1, 0, host, 3);
    assert_eq!(g[2] & (1 << 5), 0, "VMX visible");
    assert_ne!(g[2] & (1 << 31), 0, "no hypervisor bit");
    assert_eq!(g[2] & (1 << 26), 0, "XSAVE visible");
    assert_eq!(g[1] >> 24, 3, "APIC id");
    assert_eq!(g[1] & 0xff_ffff, 0x0800);
    assert_eq!((g[0], g[3]), (host[0], host[3]));
}

#[test]
fn other_leaves() {
    assert_eq!(guest_cpuid(0xd, 0, [1, 2, 3, 4], 0), [0; 4]);
    assert_eq!(guest_cpuid(0, 0, [0xd, 1, 2, 3], 0), [0xd, 1, 2, 3]);
    let hv = guest_cpuid(HV_LEAF, 0, [0; 4], 0);
    let sig: Vec<u8> = hv[1..].iter().flat_map(|r| r.to_le_bytes()).collect();
    assert_eq!(&sig, b"rvmxrvmxrvmx");
    assert_eq!(guest_cpuid(7, 0, [0, u32::MAX, 5, 6], 0)[1] & (1 << 5), 0);
}
