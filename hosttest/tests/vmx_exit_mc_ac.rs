//! Exception exits rvmx intercepts (EXCEPTION_BITMAP: #MC and #AC, as KVM
//! does), NMIs, WBINVD, and a VM entry that fails on a machine check.
//! Interruption information per SDM Vol. 3C 25.9.2: bit 31 valid, bits
//! 10:8 type (2 NMI, 3 hardware exception), bit 11 error code, bits 7:0
//! vector.

mod common;

use common::*;
use rvmx_pure::vmcs::field::*;
use rvmx_pure::vmx::exit::{CpuState, Next, UserExit};

const RIP: u64 = 0x0040_1a2b;
const AM: u64 = 1 << 18; // CR0.AM
const AC: u64 = 1 << 18; // RFLAGS.AC

fn hw_exception(vector: u32) -> u32 {
    (1 << 31) | (3 << 8) | vector
}

/// An exception exit (reason 0) with this interruption information; the
/// instruction-length field holds junk a handler must not use.
fn exception(info: u32) -> FakeVmcs {
    let v = FakeVmcs::new();
    v.set(GUEST_RIP, RIP);
    exit_with(&v, 0, 5);
    v.set_info(EXIT_INTR_INFO, info);
    v
}

/// The guest state for an #AC: CR0.AM, RFLAGS.AC and SS access rights.
fn ac_guest(cr0_am: bool, rflags_ac: bool, ss_ar: u32) -> FakeVmcs {
    let v = exception(hw_exception(17));
    v.set(GUEST_CR0, 0x8000_0031 | if cr0_am { AM } else { 0 }); // PG NE ET PE
    v.set(GUEST_RFLAGS, 0x202 | if rflags_ac { AC } else { 0 });
    v.set(Seg::Ss.fields().ar, ss_ar);
    v
}

const SS_CPL3: u32 = 0xc0f3; // G, D/B, P, DPL 3, S, RW data accessed
const SS_CPL0: u32 = 0xc093;

// #MC (vector 18) while the guest ran: the host's handler takes it; no
// instruction to step over, nothing injected or written.
#[test]
fn machine_check_goes_to_host() {
    let v = exception(hw_exception(18));
    let mut cpu = CpuState::default();
    assert_eq!(handle(&v, 0, &mut cpu), Next::HostMachineCheck);
    assert_eq!(v.get(GUEST_RIP), RIP);
    assert!(v.all_writes().is_empty(), "{:x?}", v.all_writes());
    assert!(!cpu.flush_tlb);
}

// Vector 18 that is not a valid hardware exception is not a machine check:
// the valid bit clear, or another type (4 software interrupt, INT 18).
#[test]
fn vector_18_not_a_hw_exception_is_not_machine_check() {
    for info in [(3 << 8) | 18, (1 << 31) | (4 << 8) | 18, (1 << 31) | (6 << 8) | 18] {
        let v = exception(info);
        match handle(&v, 0, &mut CpuState::default()) {
            Next::ToUser(UserExit::Vmx { reason: 0, intr_info, .. }) => assert_eq!(intr_info, info),
            other => panic!("{info:#x}: {other:?}"),
        }
        assert_eq!(v.get(GUEST_RIP), RIP);
    }
}

// #AC with CR0.AM, RFLAGS.AC and CPL 3 is the guest's own alignment check
// (SDM Vol. 3A 6.15): inject #AC back (hardware exception, vector 17, with
// error code 0), RIP at the faulting instruction.
#[test]
fn guest_alignment_check_is_reinjected() {
    let v = ac_guest(true, true, SS_CPL3);
    assert_eq!(handle(&v, 0, &mut CpuState::default()), Next::Resume);
    let info = v.get(ENTRY_INTR_INFO);
    assert_eq!(info, 0x8000_0b11, "{info:#x}");
    assert_eq!(info >> 31, 1);
    assert_eq!((info >> 8) & 7, 3);
    assert_eq!(info & 0xff, 17);
    assert_eq!((info >> 11) & 1, 1);
    assert_eq!(v.writes_to(ENTRY_EXCEPTION_ERROR_CODE), [0]);
    assert_eq!(v.get(GUEST_RIP), RIP);
    assert!(!v.written(GUEST_RIP));
}

// CPL is SS.DPL (access rights bits 6:5), not CS's, and other AR bits do
// not matter: DPL 3 with P clear still is CPL 3.
#[test]
fn guest_alignment_check_cpl_from_ss_dpl() {
    // GUEST_SS_AR_BYTES (SDM Vol. 3D Appendix B.3.3) is what the fake holds.
    assert_eq!(Seg::Ss.fields().ar.field().raw(), 0x4818);
    let v = ac_guest(true, true, 0x73); // DPL 3, P clear
    assert_eq!(handle(&v, 0, &mut CpuState::default()), Next::Resume);
    assert_eq!(v.get(ENTRY_INTR_INFO), 0x8000_0b11);

    // CS says 3, SS says 0: CPL 0, so a split lock.
    let v = ac_guest(true, true, SS_CPL0);
    v.set(Seg::Cs.fields().ar, 0xa0fb);
    assert_eq!(handle(&v, 0, &mut CpuState::default()), Next::SplitLock { rip: RIP });
    assert!(!v.written(ENTRY_INTR_INFO));
}

// Any #AC without all three conditions is a split-lock trap the host set
// up: SplitLock with the guest's RIP, nothing injected, RIP kept.
#[test]
fn other_alignment_checks_are_split_locks() {
    let cases = [
        ("CR0.AM clear", false, true, SS_CPL3),
        ("RFLAGS.AC clear", true, false, SS_CPL3),
        ("CPL 0", true, true, SS_CPL0),
        ("CPL 1", true, true, 0xb3),
        ("CPL 2", true, true, 0xd3),
        ("none", false, false, SS_CPL0),
    ];
    for (what, am, ac, ar) in cases {
        let v = ac_guest(am, ac, ar);
        let rip = 0xffff_8000_0012_3456 ^ u64::from(ar);
        v.set(GUEST_RIP, rip);
        assert_eq!(handle(&v, 0, &mut CpuState::default()), Next::SplitLock { rip }, "{what}");
        assert_eq!(v.get(GUEST_RIP), rip, "{what}");
        assert!(v.all_writes().is_empty(), "{what}: {:x?}", v.all_writes());
    }
}

// NMIs still go to the host, whatever vector byte comes with them.
#[test]
fn nmi_still_goes_to_host() {
    for info in [(1 << 31) | (2 << 8) | 2, (1 << 31) | (2 << 8) | 17] {
        let v = exception(info);
        assert_eq!(handle(&v, 0, &mut CpuState::default()), Next::HostNmi, "{info:#x}");
        assert_eq!(v.get(GUEST_RIP), RIP);
        assert!(v.all_writes().is_empty());
    }
}

// Other exception vectors (#UD 6, #GP 13 with error code, #PF 14; #DB is
// reflected to the guest: vmx_exit_events.rs) still go raw to userland
// with RIP kept.
#[test]
fn other_exceptions_still_go_raw_to_user() {
    for info in [hw_exception(6), hw_exception(13) | (1 << 11), hw_exception(14) | (1 << 11)] {
        let v = ac_guest(true, true, SS_CPL3); // #AC conditions must not matter
        v.set_info(EXIT_INTR_INFO, info);
        match handle(&v, 0, &mut CpuState::default()) {
            Next::ToUser(UserExit::Vmx { reason, intr_info, instruction_length, .. }) => {
                assert_eq!((reason, intr_info, instruction_length), (0, info, 5));
            }
            other => panic!("{info:#x}: {other:?}"),
        }
        assert_eq!(v.get(GUEST_RIP), RIP);
        assert!(!v.written(ENTRY_INTR_INFO));
    }
}

// WBINVD (reason 54) resumes the guest past the instruction (2 bytes for
// 0F 09, 3 with a prefix), touching nothing else.
#[test]
fn wbinvd_resumes_with_rip_advanced() {
    for len in [2u32, 3] {
        let v = FakeVmcs::new();
        v.set(GUEST_RIP, RIP);
        exit_with(&v, 0, len);
        let mut cpu = CpuState::default();
        cpu.regs.rax = 0x1234;
        assert_eq!(handle(&v, 54, &mut cpu), Next::Resume);
        assert_eq!(v.get(GUEST_RIP), RIP + u64::from(len));
        assert_eq!(v.all_writes(), [(GUEST_RIP.field().raw(), RIP + u64::from(len))]);
        assert_eq!(cpu.regs.rax, 0x1234);
        assert!(!cpu.flush_tlb);
    }
}

// A VM entry that fails on a machine check (reason 41 | bit 31; SDM Vol.
// 3C 27.9): FailEntry with the reason and qualification, an account that
// says it was a machine check, no VMCS write, RIP not advanced.
#[test]
fn machine_check_during_entry_fails_entry_with_account() {
    let v = FakeVmcs::new();
    v.set(GUEST_RIP, RIP);
    exit_with(&v, 0x77, 3);
    let why = 41 | (1 << 31);
    let next = handle(&v, why, &mut CpuState::default());
    let Next::ToUser(UserExit::FailEntry { reason, vm_instruction_error, qualification, account }) = next else {
        panic!("{next:?}");
    };
    assert_eq!((reason, vm_instruction_error, qualification), (why, 0, 0x77));
    let text = format!("{} {}", account.subject, account.rule).to_lowercase().replace('-', " ");
    assert!(text.contains("machine check"), "{account:?}");
    assert_eq!(v.get(GUEST_RIP), RIP);
    assert!(v.all_writes().is_empty(), "{:x?}", v.all_writes());
}

// Reason 41 without bit 31 is not a failed entry (no such exit exists, but
// the dispatcher must not take it for one): raw to userland.
#[test]
fn reason_41_without_entry_failure_bit_is_raw() {
    let v = FakeVmcs::new();
    v.set(GUEST_RIP, RIP);
    exit_with(&v, 0, 3);
    assert!(matches!(handle(&v, 41, &mut CpuState::default()), Next::ToUser(UserExit::Vmx { reason: 41, .. })));
    assert_eq!(v.get(GUEST_RIP), RIP);
}
