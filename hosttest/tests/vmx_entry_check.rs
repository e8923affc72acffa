use rvmx_pure::vmx::entry_check::*;

fn seg(selector: u16, limit: u32, ar: u32) -> Seg {
    Seg { selector, base: 0, limit, ar }
}

/// The state rvmx gives a new vCPU (real mode, unrestricted guest), with
/// the CR0.NE / CR4.VMXE that rvmx forces.
fn real_mode() -> GuestState {
    GuestState {
        cr0: 0x6000_0030,
        cr4: 0x2000,
        rflags: 2,
        rip: 0xfff0,
        cr0_fixed: (0x8000_0021, 0xffff_ffff),
        cr4_fixed: (0x2000, 0x0037_27ff),
        unrestricted: true,
        load_efer: true,
        cs: Seg { base: 0xffff_0000, ..seg(0xf000, 0xffff, 0x9b) },
        ss: seg(0, 0xffff, 0x93),
        ds: seg(0, 0xffff, 0x93),
        es: seg(0, 0xffff, 0x93),
        fs: seg(0, 0xffff, 0x93),
        gs: seg(0, 0xffff, 0x93),
        tr: seg(0, 0xffff, 0x8b),
        ldtr: seg(0, 0xffff, 0x82),
        gdtr: (0, 0xffff),
        idtr: (0, 0xffff),
        link_pointer: u64::MAX,
        ..Default::default()
    }
}

/// The long-mode state the selftests use.
fn long_mode() -> GuestState {
    GuestState {
        cr0: 0x8000_0031,
        cr4: 0x2020,
        efer: 0x500,
        ia32e: true,
        rip: 0xffff_8000_0000_1000,
        cs: seg(8, 0xffff_ffff, 0xa09b),
        ss: seg(0x10, 0xffff_ffff, 0xc093),
        ds: seg(0x10, 0xffff_ffff, 0xc093),
        es: seg(0x10, 0xffff_ffff, 0xc093),
        fs: seg(0x10, 0xffff_ffff, 0xc093),
        gs: seg(0x10, 0xffff_ffff, 0xc093),
        ldtr: seg(0, 0, 1 << 16),
        ..real_mode()
    }
}

fn field(g: &GuestState) -> Option<&'static str> {
    check(g).map(|f| f.field)
}

#[test]
fn good_states_pass() {
    assert_eq!(check(&real_mode()), None);
    assert_eq!(check(&long_mode()), None);
}

#[test]
fn control_registers() {
    let mut g = real_mode();
    g.cr0 = 0x8000_0030; // PG without PE: the selftest's bad state
    let f = check(&g).unwrap();
    assert_eq!(f.field, "GUEST_CR0");
    assert!(f.rule.contains("PG (bit 31) is 1 but PE (bit 0) is 0"), "{}", f.rule);
    g.cr0 = 0x6000_0010; // NE clear
    assert!(check(&g).unwrap().rule.contains("FIXED0"));
    let mut g = real_mode();
    g.unrestricted = false; // then PE and PG are fixed too
    assert_eq!(field(&g), Some("GUEST_CR0"));
    let mut g = real_mode();
    g.cr4 = 0;
    assert_eq!(field(&g), Some("GUEST_CR4"));
    let mut g = long_mode();
    g.cr4 &= !0x20;
    assert_eq!(field(&g), Some("VM_ENTRY_CONTROLS"));
}

#[test]
fn efer() {
    let mut g = long_mode();
    g.efer = 0x100; // LME without LMA in IA-32e mode
    assert_eq!(field(&g), Some("GUEST_IA32_EFER"));
    g.efer = 0x501 | (1 << 20);
    assert!(check(&g).unwrap().rule.contains("reserved"));
    g.load_efer = false;
    assert_eq!(check(&g), None);
}

#[test]
fn segments() {
    let mut g = real_mode();
    g.cs.ar = 0x93 & !1; // not accessed: type 2
    assert_eq!(field(&g), Some("GUEST_CS_ACCESS_RIGHTS"));
    let mut g = long_mode();
    g.cs.ar |= 1 << 14; // L and D/B
    assert!(check(&g).unwrap().rule.contains("L and D/B"));
    let mut g = long_mode();
    g.tr.ar = 0x83; // 16-bit busy TSS in IA-32e mode
    assert_eq!(field(&g), Some("GUEST_TR_ACCESS_RIGHTS"));
    let mut g = real_mode();
    g.ds.limit = 0x10_0000; // 1 MiB or more needs G = 1
    assert_eq!(field(&g), Some("GUEST_DS_ACCESS_RIGHTS"));
    let mut g = real_mode();
    g.ss.ar = 0x93 | (3 << 5); // DPL 3 in real mode: CS (type 11) must match first
    assert!(check(&g).unwrap().rule.contains("DPL must equal SS.DPL"));
    g.cs.ar = 0x93; // CS as read/write data (unrestricted guest): only SS is wrong now
    assert_eq!(field(&g), Some("GUEST_SS_ACCESS_RIGHTS"));
    let mut g = real_mode();
    g.ldtr.ar = 0x83;
    assert_eq!(field(&g), Some("GUEST_LDTR_ACCESS_RIGHTS"));
    let mut g = long_mode();
    g.fs.base = 0x8000_0000_0000;
    assert_eq!(field(&g), Some("GUEST_FS_BASE / GUEST_GS_BASE"));
}

#[test]
fn rip_rflags_and_the_rest() {
    let mut g = real_mode();
    g.rip = 1 << 32;
    assert_eq!(field(&g), Some("GUEST_RIP"));
    let mut g = long_mode();
    g.rip = 0x0000_8000_0000_0000;
    assert_eq!(field(&g), Some("GUEST_RIP"));
    let mut g = real_mode();
    g.rflags = 0;
    assert_eq!(field(&g), Some("GUEST_RFLAGS"));
    g.rflags = 2 | (1 << 15);
    assert_eq!(field(&g), Some("GUEST_RFLAGS"));
    let mut g = real_mode();
    g.activity = 4;
    assert_eq!(field(&g), Some("GUEST_ACTIVITY_STATE"));
    let mut g = real_mode();
    g.interruptibility = 3;
    assert_eq!(field(&g), Some("GUEST_INTERRUPTIBILITY_INFO"));
    let mut g = real_mode();
    g.link_pointer = 0;
    assert_eq!(field(&g), Some("VMCS_LINK_POINTER"));
    let mut g = real_mode();
    g.gdtr.1 = 0x1_0000;
    assert_eq!(field(&g), Some("GUEST_GDTR"));
}

#[test]
fn vm_instruction_errors() {
    assert_eq!(vm_instruction_error(7), "VM entry with invalid control field(s)");
    assert_eq!(vm_instruction_error(8), "VM entry with invalid host-state field(s)");
    assert_eq!(vm_instruction_error(99), "unknown VM-instruction error");
}
