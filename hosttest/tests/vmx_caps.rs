use rvmx_pure::vmx::caps::*;

fn msr(must_be_1: u32, may_be_1: u32) -> u64 {
    (u64::from(may_be_1) << 32) | u64::from(must_be_1)
}

#[test]
fn adjust_sets_required_optional_and_forced_bits() {
    // Bits 1, 2, 4 forced to 1; bits 0..=7 may be 1.
    let a = Allowed::from_msr(msr(0b1_0110, 0xff));
    assert_eq!(a.adjust(0b1000_0000, 0), Ok(0b1001_0110));
    // An optional bit the CPU cannot set is dropped silently.
    assert_eq!(a.adjust(0, 1 << 9), Ok(0b1_0110));
    assert_eq!(a.adjust(0, 1 << 3), Ok(0b1_1110));
}

#[test]
fn adjust_reports_missing_required_bits() {
    let a = Allowed::from_msr(msr(0, 0x0f));
    assert_eq!(a.adjust(1 << 4 | 1 << 31 | 1, 0), Err(1 << 4 | 1 << 31));
    // Nothing is allowed: everything required is missing.
    assert_eq!(Allowed::from_msr(0).adjust(1, 0), Err(1));
    assert_eq!(Allowed::from_msr(0).adjust(0, 0xffff_ffff), Ok(0));
}

#[test]
fn forced_one_wins_over_not_wanted() {
    // A must-be-1 bit is set even if nobody asked (default1 class).
    let a = Allowed::from_msr(msr(1 << 1, 1 << 1));
    assert_eq!(a.adjust(0, 0), Ok(1 << 1));
}

fn base_caps() -> RawCaps {
    let basic = 0x00da_0400_0000_0004u64 | (1 << 55) | (6 << 50); // rev 4, 0x400 bytes, WB, TRUE ctls
    RawCaps {
        basic,
        // Legacy MSRs force default1 bits; TRUE ones let them be 0.
        pin: msr(0x16, 0x7f),
        true_pin: msr(0, 0x7f),
        proc: msr(0x0401_e172, 0xffff_fffe),
        true_proc: msr(0, 0xffff_fffe),
        proc2: msr(0, proc2::EPT | proc2::VPID | proc2::UNRESTRICTED_GUEST),
        exit: msr(0x36dff, 0x3fffff),
        true_exit: msr(0, 0x3fffff),
        entry: msr(0x11ff, 0xffff),
        true_entry: msr(0, 0xffff),
        ept_vpid: ept_vpid::WALK_4 | ept_vpid::MEMTYPE_WB | ept_vpid::INVEPT | ept_vpid::INVEPT_ALL
            | ept_vpid::INVVPID | ept_vpid::INVVPID_SINGLE,
        ..Default::default()
    }
}

#[test]
fn true_msrs_used_when_basic_bit_55_is_set() {
    let c = base_caps();
    assert_eq!(c.pin().must_be_1, 0);
    assert_eq!(c.proc().must_be_1, 0);
    let mut legacy = c;
    legacy.basic &= !(1 << 55);
    assert_eq!(legacy.pin().must_be_1, 0x16);
    assert_eq!(legacy.proc().must_be_1, 0x0401_e172);
    assert_eq!(legacy.exit().must_be_1, 0x36dff);
}

#[test]
fn secondary_controls_need_primary_bit_31() {
    let mut c = base_caps();
    assert!(c.proc2().allows(proc2::EPT));
    c.true_proc = msr(0, 0x7fff_ffff);
    assert_eq!(c.proc2().may_be_1, 0);
    assert_eq!(c.ept_vpid(), 0);
}

#[test]
fn basic_decoding() {
    let b = Basic(base_caps().basic);
    assert_eq!(b.revision(), 4);
    assert_eq!(b.region_size(), 0x400);
    assert_eq!(b.memtype(), 6);
    assert!(b.true_ctls());
    assert!(!Basic(1 << 31).true_ctls());
    assert_eq!(Basic(0xffff_ffff).revision(), 0x7fff_ffff); // bit 31 is not revision
}

#[test]
fn minimum_features() {
    assert!(base_caps().missing().is_empty(), "{:?}", base_caps().missing().names().collect::<Vec<_>>());
    let mut c = base_caps();
    c.proc2 = msr(0, proc2::EPT | proc2::VPID); // no unrestricted guest (e.g. Nehalem)
    assert_eq!(c.missing().names().collect::<Vec<_>>(), ["unrestricted guest"]);
    let mut c = base_caps();
    c.ept_vpid &= !ept_vpid::MEMTYPE_WB;
    c.basic &= !(0xf << 50);
    assert_eq!(c.missing().names().collect::<Vec<_>>(), ["VMCS in write-back memory", "4-level write-back EPT"]);
    let none = RawCaps::default();
    assert!(none.missing().names().count() >= 10);
}

#[test]
fn optional_msr_presence_rules() {
    assert!(has_true_msrs(1 << 55));
    assert!(!has_true_msrs(0));
    assert!(has_proc2(msr(0, 1 << 31)));
    assert!(!has_proc2(msr(1 << 31, 0x7fff_ffff)));
    assert!(has_ept_vpid_cap(msr(0, proc2::VPID)));
    assert!(!has_ept_vpid_cap(msr(0, proc2::UNRESTRICTED_GUEST)));
}

#[test]
fn cr_fixed_bits() {
    let (f0, f1) = (0x8000_0021u64, 0xffff_ffffu64); // PG, NE, PE must be 1
    assert!(cr_ok(0x8005_0033, f0, f1));
    assert!(!cr_ok(0x0005_0033, f0, f1)); // PG clear
    assert!(!cr_ok(0x1_8005_0033, f0, f1)); // a bit FIXED1 forbids
    assert!(cr_ok(0x2000, 0x2000, 0x3727ff)); // CR4.VMXE
    assert!(!cr_ok(0, 0x2000, 0x3727ff));
}
