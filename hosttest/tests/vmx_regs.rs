//! `vmx::regs::GuestRegs`: the layout the entry/exit stub relies on, and
//! register numbers (SDM Vol. 3C Table 28-3; Vol. 2A 2.1.5 Table 2-2).

use core::mem::{offset_of, size_of};
use rvmx_pure::vmx::regs::GuestRegs;

// The stub saves and loads each register at 8 * its position; RSP is not
// there (it is in the VMCS).
#[test]
fn layout_is_fifteen_packed_quadwords() {
    let offsets = [
        offset_of!(GuestRegs, rax),
        offset_of!(GuestRegs, rcx),
        offset_of!(GuestRegs, rdx),
        offset_of!(GuestRegs, rbx),
        offset_of!(GuestRegs, rbp),
        offset_of!(GuestRegs, rsi),
        offset_of!(GuestRegs, rdi),
        offset_of!(GuestRegs, r8),
        offset_of!(GuestRegs, r9),
        offset_of!(GuestRegs, r10),
        offset_of!(GuestRegs, r11),
        offset_of!(GuestRegs, r12),
        offset_of!(GuestRegs, r13),
        offset_of!(GuestRegs, r14),
        offset_of!(GuestRegs, r15),
    ];
    for (i, off) in offsets.into_iter().enumerate() {
        assert_eq!(off, 8 * i, "register {i}");
    }
    assert_eq!(size_of::<GuestRegs>(), 15 * 8);
}

/// Registers holding 0x100 + their x86 number (RSP, 4, absent).
fn numbered() -> GuestRegs {
    GuestRegs {
        rax: 0x100,
        rcx: 0x101,
        rdx: 0x102,
        rbx: 0x103,
        rbp: 0x105,
        rsi: 0x106,
        rdi: 0x107,
        r8: 0x108,
        r9: 0x109,
        r10: 0x10a,
        r11: 0x10b,
        r12: 0x10c,
        r13: 0x10d,
        r14: 0x10e,
        r15: 0x10f,
    }
}

// Register numbers: 0 RAX, 1 RCX, 2 RDX, 3 RBX, 4 RSP, 5 RBP, 6 RSI,
// 7 RDI, 8..15 R8..R15. slot(4) is None: RSP is GUEST_RSP.
#[test]
fn slot_maps_register_numbers() {
    let mut r = numbered();
    for n in 0u8..16 {
        match r.slot(n) {
            Some(v) => assert_eq!(*v, 0x100 + u64::from(n), "slot {n}"),
            None => assert_eq!(n, 4, "only RSP has no slot"),
        }
    }
    assert!(r.slot(4).is_none());
}

// Writing through a slot changes exactly the named register.
#[test]
fn slot_writes_the_named_field() {
    let mut r = numbered();
    *r.slot(11).unwrap() = 0xdead;
    *r.slot(3).unwrap() = 0xbeef;
    assert_eq!((r.r11, r.rbx), (0xdead, 0xbeef));
    let mut want = numbered();
    want.r11 = 0xdead;
    want.rbx = 0xbeef;
    assert_eq!(r, want);
}

// Bits above 3 of the number are ignored (the qualification's GPR field
// has 4 bits).
#[test]
fn slot_ignores_high_bits() {
    let mut r = numbered();
    assert_eq!(r.slot(0x13).copied(), Some(0x103)); // RBX
    assert_eq!(r.slot(0xf0).copied(), Some(0x100)); // RAX
    assert_eq!(r.slot(0x1f).copied(), Some(0x10f)); // R15
    assert!(r.slot(0x14).is_none()); // RSP
    assert!(r.slot(0xf4).is_none());
}
