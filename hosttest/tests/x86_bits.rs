//! Small architectural rules: IA32_FEATURE_CONTROL, canonical addresses,
//! which exits report an instruction length, interruption-information
//! error codes.

use rvmx_pure::vmx::exit_info::{ExitReason, IntrInfo};
use rvmx_pure::x86::canonical;
use rvmx_pure::x86::feature_control::{verdict, Verdict};

// IA32_FEATURE_CONTROL (SDM Vol. 3C 24.7): unlocked, write it with the
// lock (bit 0) and VMX outside SMX (bit 2), keeping the other bits.
#[test]
fn feature_control_unlocked_is_locked_with_vmx() {
    assert_eq!(verdict(0), Verdict::Lock(0b101));
    assert_eq!(verdict(0xff00), Verdict::Lock(0xff05));
    assert_eq!(verdict(0b110), Verdict::Lock(0b111));
    assert_eq!(verdict(1 << 20 | 1 << 17), Verdict::Lock(1 << 20 | 1 << 17 | 0b101));
}

// Locked: VMXON outside SMX works only if bit 2 is set (else it #GPs).
#[test]
fn feature_control_locked() {
    assert_eq!(verdict(0b101), Verdict::Allowed);
    assert_eq!(verdict(0xff05), Verdict::Allowed);
    assert_eq!(verdict(0b001), Verdict::Disabled);
    // VMX inside SMX only (bit 1) does not help outside SMX.
    assert_eq!(verdict(0b011), Verdict::Disabled);
}

// Canonical with 48 bits (SDM Vol. 1 3.3.7.1): bits 63:47 all equal.
#[test]
fn canonical_addresses() {
    for a in [0, 0x7fff_ffff_ffff, 0xffff_8000_0000_0000, u64::MAX, 0xffff_ffff_8100_0000] {
        assert!(canonical(a), "{a:#x}");
    }
    for a in [0x8000_0000_0000, 0xffff_7fff_ffff_ffff, 1 << 48, 1 << 63, 0x0000_8000_0000_1000] {
        assert!(!canonical(a), "{a:#x}");
    }
}

// SDM Vol. 3C 28.2.5: exits caused by executing an instruction report its
// length (CPUID 10, HLT 12, MOV CR 28, I/O 30, RDMSR 31, WRMSR 32); events
// (exception/NMI 0, interrupt 1, triple fault 2, EPT violation 48,
// preemption timer 52) and failed entries (33) do not.
#[test]
fn exit_reasons_with_instruction_length() {
    for r in [10, 12, 28, 30, 31, 32] {
        assert!(ExitReason(r).has_instruction_length(), "reason {r}");
        // The basic reason decides, also with bit 31 set.
        assert!(ExitReason(r | 1 << 31).has_instruction_length(), "reason {r} | bit 31");
    }
    for r in [0, 1, 2, 33, 48, 52] {
        assert!(!ExitReason(r).has_instruction_length(), "reason {r}");
    }
}

// Interruption information bit 11: an error code is delivered (SDM Vol. 3C
// 25.8.3, 25.9.2), whatever the other bits say.
#[test]
fn intr_info_error_code_bit() {
    assert!(IntrInfo(1 << 11).has_error_code());
    assert!(IntrInfo(0x8000_0b0e).has_error_code()); // #PF
    assert!(!IntrInfo(0x8000_0306).has_error_code()); // #UD
    assert!(!IntrInfo(0xffff_f7ff).has_error_code());
    assert!(IntrInfo::exception(13, true).has_error_code());
    assert!(!IntrInfo::exception(13, false).has_error_code());
}
