//! IN and OUT exits (reason 30) and completing an IN. Qualification per
//! SDM Vol. 3C Table 28-5: bits 2:0 size - 1, bit 3 IN, bit 4 string,
//! bit 5 REP, bits 31:16 port.

mod common;

use common::*;
use rvmx_pure::vmcs::field::*;
use rvmx_pure::vmx::exit::{self, CpuState, Next, PendingIn, UserExit};

const RIP: u64 = 0x1_0000;
const RAX: u64 = 0x1122_3344_5566_7788;

fn qual(size: u8, is_in: bool, port: u16) -> u64 {
    u64::from(size - 1) | (u64::from(is_in) << 3) | (u64::from(port) << 16)
}

fn fake(q: u64, len: u32) -> FakeVmcs {
    let v = FakeVmcs::new();
    v.set(GUEST_RIP, RIP);
    exit_with(&v, q, len);
    v
}

// OUT of 1, 2 and 4 bytes: userland gets AL, AX or EAX (SDM Vol. 2B OUT),
// and the OUT is complete, so RIP moves past it.
#[test]
fn out_reports_data_masked_to_size_and_advances() {
    for (size, data) in [(1u8, 0x88u64), (2, 0x7788), (4, 0x5566_7788)] {
        let v = fake(qual(size, false, 0x3f8), 1);
        let mut cpu = CpuState::default();
        cpu.regs.rax = RAX;
        let next = handle(&v, 30, &mut cpu);
        assert_eq!(next, Next::ToUser(UserExit::Io { is_in: false, size, port: 0x3f8, data }), "size {size}");
        assert_eq!(v.get(GUEST_RIP), RIP + 1, "size {size}");
        assert_eq!(cpu.pending_in, None);
        assert_eq!(cpu.regs.rax, RAX, "OUT does not change RAX");
    }
}

// The port is bits 31:16, the full 16 bits of it.
#[test]
fn out_port_uses_all_sixteen_bits() {
    let v = fake(qual(2, false, 0xcfc) | (0xabcd << 32), 2); // bits above 31 ignored
    let mut cpu = CpuState::default();
    let Next::ToUser(UserExit::Io { port, .. }) = handle(&v, 30, &mut cpu) else { panic!() };
    assert_eq!(port, 0xcfc);
    let v = fake(qual(1, false, 0xffff), 1);
    let Next::ToUser(UserExit::Io { port, .. }) = handle(&v, 30, &mut cpu) else { panic!() };
    assert_eq!(port, 0xffff);
}

// IN goes to userland for its data: RIP stays at the IN until the data is
// in RAX, and the vCPU remembers the size and length.
#[test]
fn in_reports_keeps_rip_and_sets_pending() {
    for size in [1u8, 2, 4] {
        let v = fake(qual(size, true, 0x71), 2);
        let mut cpu = CpuState::default();
        cpu.regs.rax = RAX;
        let next = handle(&v, 30, &mut cpu);
        assert_eq!(next, Next::ToUser(UserExit::Io { is_in: true, size, port: 0x71, data: 0 }), "size {size}");
        assert_eq!(v.get(GUEST_RIP), RIP, "size {size}");
        assert_eq!(cpu.pending_in, Some(PendingIn { size, len: 2 }), "size {size}");
        assert_eq!(cpu.regs.rax, RAX, "RAX changes only on completion");
    }
}

// Completing an IN writes RAX as IN does: 8 and 16 bits keep the rest of
// RAX, 32 bits zero-extend (SDM Vol. 1 3.4.1.1); then RIP moves on.
#[test]
fn complete_in_merges_by_size_and_advances() {
    let data = 0x0bad_cafe_9abc_def0;
    for (size, want) in [(1u8, 0x1122_3344_5566_77f0u64), (2, 0x1122_3344_5566_def0), (4, 0x9abc_def0)] {
        let v = fake(qual(size, true, 0x60), 2);
        let mut cpu = CpuState::default();
        cpu.regs.rax = RAX;
        handle(&v, 30, &mut cpu);
        exit::complete_in(&v, &mut cpu, data);
        assert_eq!(cpu.regs.rax, want, "size {size}");
        assert_eq!(v.get(GUEST_RIP), RIP + 2, "size {size}");
        assert_eq!(cpu.pending_in, None, "size {size}");
    }
}

// The completion steps over the IN by the length saved at the exit, not by
// whatever the exit-information fields say by then (other exits, e.g. an
// external interrupt, may have happened in between).
#[test]
fn complete_in_uses_saved_length() {
    let v = fake(qual(1, true, 0x60), 2);
    let mut cpu = CpuState::default();
    handle(&v, 30, &mut cpu);
    exit_with(&v, 0, 9);
    exit::complete_in(&v, &mut cpu, 0x41);
    assert_eq!(v.get(GUEST_RIP), RIP + 2);
    assert_eq!(cpu.regs.rax, 0x41);
}

// Completing an IN also ends STI/MOV-SS blocking (it is the RIP advance
// of SDM Vol. 3C 25.4.2).
#[test]
fn complete_in_clears_sti_blocking() {
    let v = fake(qual(1, true, 0x60), 1);
    let mut cpu = CpuState::default();
    handle(&v, 30, &mut cpu);
    v.set(GUEST_INTERRUPTIBILITY, 0b1001);
    exit::complete_in(&v, &mut cpu, 0);
    assert_eq!(v.get(GUEST_INTERRUPTIBILITY), 0b1000);
}

// With no IN pending (after an OUT, or a second call) completion does
// nothing: RAX, RIP and the VMCS stay.
#[test]
fn complete_in_without_pending_does_nothing() {
    let v = fake(0, 2);
    let mut cpu = CpuState::default();
    cpu.regs.rax = RAX;
    exit::complete_in(&v, &mut cpu, 0xffff_ffff);
    assert_eq!(cpu.regs.rax, RAX);
    assert_eq!(v.get(GUEST_RIP), RIP);
    assert!(v.all_writes().is_empty());

    // Twice after one IN: the second call is a no-op.
    let v = fake(qual(4, true, 0x60), 2);
    handle(&v, 30, &mut cpu);
    exit::complete_in(&v, &mut cpu, 0x1234);
    exit::complete_in(&v, &mut cpu, 0x5678);
    assert_eq!(cpu.regs.rax, 0x1234);
    assert_eq!(v.get(GUEST_RIP), RIP + 2);
}

// INS/OUTS (bit 4, with or without REP, bit 5) go to the run loop with
// what it needs to move the data (strio.rs), RIP at the instruction; a
// REP bit without the string bit is not an encoding: raw to userland.
#[test]
fn string_io_goes_to_the_run_loop() {
    for rep in [0u64, 1 << 5] {
        for is_in in [false, true] {
            let q = qual(2, is_in, 0x1f0) | (1 << 4) | rep;
            let v = fake(q, 2);
            // 32-bit address size (bits 9:7 = 1), DS (bits 17:15 = 3).
            v.set_info(EXIT_INSTRUCTION_INFO, (1 << 7) | (3 << 15));
            v.set(GUEST_RFLAGS, 2 | (1 << 10));
            v.set(Seg::Ds.fields().base, 0x1234_0000);
            v.set(Seg::Es.fields().base, 0x5678_0000);
            let mut cpu = CpuState::default();
            match handle(&v, 30, &mut cpu) {
                Next::StringIo(x) => {
                    assert_eq!((x.s.is_in, x.s.size, x.s.rep, x.s.port, x.s.addr_size), (is_in, 2, rep != 0, 0x1f0, 4));
                    assert!(x.df);
                    assert_eq!(x.len, 2);
                    // INS always writes ES:EDI; OUTS reads the segment given.
                    assert_eq!(x.seg_base, if is_in { 0x5678_0000 } else { 0x1234_0000 }, "{q:#x}");
                }
                other => panic!("{q:#x}: {other:?}"),
            }
            assert_eq!(v.get(GUEST_RIP), RIP, "{q:#x}");
            assert_eq!(cpu.pending_in, None, "{q:#x}");
        }
    }
    let q = qual(1, false, 0x80) | (1 << 5);
    let v = fake(q, 1);
    assert!(matches!(handle(&v, 30, &mut CpuState::default()), Next::ToUser(UserExit::Vmx { reason: 30, .. })));
    assert_eq!(v.get(GUEST_RIP), RIP);
}

// Size encodings 2 and 4..7 are not defined by Table 28-5: raw to
// userland, RIP kept.
#[test]
fn undefined_size_goes_raw() {
    for enc in [2u64, 4, 5, 6, 7] {
        let q = enc | (0x80 << 16);
        let v = fake(q, 1);
        let mut cpu = CpuState::default();
        assert!(
            matches!(handle(&v, 30, &mut cpu), Next::ToUser(UserExit::Vmx { reason: 30, .. })),
            "size encoding {enc}"
        );
        assert_eq!(v.get(GUEST_RIP), RIP);
        assert_eq!(cpu.pending_in, None);
    }
}
