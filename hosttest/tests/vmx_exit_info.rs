use rvmx_pure::vmx::exit_info::*;

#[test]
fn io_qualification() {
    // OUT dx, al to port 0x3f8: size 1, out, port in bits 31:16.
    let q = IoQual::decode(0x03f8_0000).unwrap();
    assert_eq!(q, IoQual { size: 1, is_in: false, string: false, rep: false, port: 0x3f8 });
    // IN eax, 0x71 (size 4 is encoded 3).
    let q = IoQual::decode(0x0071_0000 | 8 | 3).unwrap();
    assert_eq!((q.size, q.is_in, q.port), (4, true, 0x71));
    // REP OUTSW.
    let q = IoQual::decode(0x0080_0000 | 0x20 | 0x10 | 1).unwrap();
    assert!(q.string && q.rep && q.size == 2);
    assert_eq!(IoQual::decode(2), None);
    assert_eq!(IoQual::decode(4), None);
}

#[test]
fn in_results_follow_operand_size() {
    let rax = 0x1122_3344_5566_7788;
    assert_eq!(in_result(rax, 1, 0xabcd), 0x1122_3344_5566_77cd);
    assert_eq!(in_result(rax, 2, 0xabcd_ef01), 0x1122_3344_5566_ef01);
    assert_eq!(in_result(rax, 4, 0xffff_abcd_ef01_2345), 0xef01_2345);
}

#[test]
fn exit_reason() {
    let r = ExitReason(0x8000_0021);
    assert!(r.entry_failed());
    assert_eq!(r.basic(), reason::INVALID_GUEST_STATE);
    assert!(ExitReason(reason::VMCALL as u32).is_vmx_instruction());
    assert!(ExitReason(reason::VMXON as u32).is_vmx_instruction());
    assert!(ExitReason(reason::INVEPT as u32).is_vmx_instruction());
    assert!(!ExitReason(reason::CR_ACCESS as u32).is_vmx_instruction());
    assert!(!ExitReason(reason::HLT as u32).is_vmx_instruction());
}

#[test]
fn cr_access() {
    // mov cr0, rbx: cr 0, type 0, gpr 3.
    assert_eq!(CrAccess::decode(0x300), CrAccess::MovTo { cr: 0, gpr: 3 });
    // mov r12, cr8: cr 8, type 1, gpr 12.
    assert_eq!(CrAccess::decode(0xc18), CrAccess::MovFrom { cr: 8, gpr: 12 });
    assert_eq!(CrAccess::decode(0x20), CrAccess::Clts);
    assert_eq!(CrAccess::decode(0x0001_0030), CrAccess::Lmsw { data: 1 });
}

#[test]
fn ept_and_interruption_info() {
    let e = EptQual(0x182); // write, not mapped
    assert!(e.write() && !e.read() && !e.fetch() && !e.mapped());
    assert!(EptQual(0x9).mapped());
    let nmi = IntrInfo(0x8000_0202);
    assert!(nmi.is_nmi() && nmi.0 & 0xff == 2);
    assert!(!IntrInfo(0x0000_0202).is_nmi());
    assert_eq!(IntrInfo::exception(6, false).0, 0x8000_0306);
    assert_eq!(IntrInfo::exception(13, true).0, 0x8000_0b0d);
}
