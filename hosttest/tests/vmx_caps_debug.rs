//! `RawCaps::missing`: rvmx needs "save debug controls" (VM-exit control
//! bit 2) and "load debug controls" (VM-entry control bit 2; SDM Vol. 3C
//! 25.7.1, 25.8.1). Control MSRs: allowed 0-settings in bits 31:0,
//! allowed 1-settings in bits 63:32 (SDM Vol. 3D A.3); with
//! IA32_VMX_BASIC bit 55 the TRUE_ MSRs decide (A.2).

use rvmx_pure::vmx::caps::*;

const DEBUG: &str = "load/save debug controls";

fn msr(must_be_1: u32, may_be_1: u32) -> u64 {
    (u64::from(may_be_1) << 32) | u64::from(must_be_1)
}

/// A CPU with everything rvmx needs (the one in vmx_caps.rs).
fn good() -> RawCaps {
    RawCaps {
        basic: 0x00da_0400_0000_0004u64 | (1 << 55) | (6 << 50),
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

fn missing(c: &RawCaps) -> Vec<&'static str> {
    c.missing().names().collect()
}

#[test]
fn debug_control_bits() {
    assert_eq!(exit::SAVE_DEBUG, 1 << 2);
    assert_eq!(entry::LOAD_DEBUG, 1 << 2);
    assert!(good().missing().is_empty(), "{:?}", missing(&good()));
}

// Exit controls cannot set bit 2 (in the TRUE_ MSR, which decides).
#[test]
fn no_save_debug_is_missing() {
    let mut c = good();
    c.true_exit = msr(0, 0x3fffff & !(1 << 2));
    assert_eq!(missing(&c), [DEBUG]);
}

// Entry controls cannot set bit 2.
#[test]
fn no_load_debug_is_missing() {
    let mut c = good();
    c.true_entry = msr(0, 0xffff & !(1 << 2));
    assert_eq!(missing(&c), [DEBUG]);
    // Both lacking: still one entry.
    c.true_exit = msr(0, 0x3fffff & !(1 << 2));
    assert_eq!(missing(&c), [DEBUG]);
}

// A must-be-1 bit 2 without the allowed-1 bit is still "cannot set it"
// (only the high half says what may be 1).
#[test]
fn debug_allowed_1_comes_from_high_half() {
    let mut c = good();
    c.true_exit = msr(1 << 2, 0x3fffff & !(1 << 2));
    assert_eq!(missing(&c), [DEBUG]);
}

// With BASIC bit 55 the TRUE_ MSRs decide: the legacy MSRs lacking bit 2
// do not matter, and legacy ones allowing it do not rescue a TRUE_ lack.
// Without bit 55 the legacy MSRs decide.
#[test]
fn debug_controls_follow_true_msrs_only_with_basic_bit_55() {
    let mut c = good();
    c.exit = msr(0x36dfb, 0x3fffff & !(1 << 2));
    c.entry = msr(0x11fb, 0xffff & !(1 << 2));
    assert!(c.missing().is_empty(), "{:?}", missing(&c));
    c.basic &= !(1 << 55);
    assert_eq!(missing(&c), [DEBUG]);

    let mut c = good();
    c.true_entry = msr(0, 0xffff & !(1 << 2));
    c.basic &= !(1 << 55);
    assert!(c.missing().is_empty(), "{:?}", missing(&c));
}

// The name's place in the list: after "64-bit host", before the EFER/PAT
// entry, as the checks run.
#[test]
fn debug_controls_listed_in_check_order() {
    let mut c = good();
    c.true_exit = msr(0, 0x3fffff & !((1 << 2) | (1 << 9) | (1 << 20)));
    assert_eq!(missing(&c), ["64-bit host", DEBUG, "load/save IA32_EFER and IA32_PAT"]);
}
