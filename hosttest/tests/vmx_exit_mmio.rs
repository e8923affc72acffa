//! MMIO emulation driver (vmx/exit/mmio.rs): fetch, decode, accesses to
//! userland or RAM, page-crossing splits, completion.

mod common;

use common::Ram;
use rvmx_pure::vmx::exit::mmio::{resume, start, Frame, Mmio, Outcome};
use rvmx_pure::vmx::regs::GuestRegs;

const CODE: u64 = 0x1000;
const MMIO: u64 = 0xfee0_0000;

/// 64-bit mode, paging "off" for the walk (flat: linear = physical), the
/// code at CODE.
fn setup(code: &[u8]) -> (Ram, Frame) {
    let mut ram = Ram(vec![0; 65536]);
    ram.0[CODE as usize..CODE as usize + code.len()].copy_from_slice(code);
    let frame = Frame { rip: CODE, rsp: 0x8000, rflags: 2, long64: true, default32: false, ..Default::default() };
    (ram, frame)
}

// mov eax, [rbx]: a 4-byte read exit; userland's data completes it
// (32-bit write zero-extends RAX), RIP moves by 2.
#[test]
fn load_exits_then_completes() {
    let (mut ram, frame) = setup(&[0x8b, 0x03]);
    let mut regs = GuestRegs { rax: u64::MAX, rbx: MMIO + 0x20, ..Default::default() };
    let mut pending: Option<Mmio> = None;
    let out = start(frame, &mut regs, &mut ram, MMIO + 0x20, false, &mut pending);
    assert_eq!(out, Outcome::Exit { gpa: MMIO + 0x20, size: 4, write: false, data: 0 });
    assert!(pending.is_some());
    let out = resume(&mut regs, &mut ram, 0x1234_5678_9abc, &mut pending);
    assert_eq!(out, Outcome::Done { len: 2 });
    assert_eq!(regs.rax, 0x5678_9abc);
    // Done: the frame to write back is left for the caller.
    assert_eq!(pending.take().unwrap().frame.rip, CODE);
}

// mov word [rbx], cx: a 2-byte write exit with the data.
#[test]
fn store_exits_with_data() {
    let (mut ram, frame) = setup(&[0x66, 0x89, 0x0b]);
    let mut regs = GuestRegs { rcx: 0xaaaa_bbcc, rbx: MMIO, ..Default::default() };
    let mut pending = None;
    let out = start(frame, &mut regs, &mut ram, MMIO, true, &mut pending);
    assert_eq!(out, Outcome::Exit { gpa: MMIO, size: 2, write: true, data: 0xbbcc });
    let out = resume(&mut regs, &mut ram, 0, &mut pending);
    assert_eq!(out, Outcome::Done { len: 3 });
}

// An 8-byte read across a page boundary of two MMIO pages: two exits of 4
// bytes each, assembled little-endian.
#[test]
fn page_crossing_read_is_split() {
    let (mut ram, frame) = setup(&[0x48, 0x8b, 0x03]); // mov rax, [rbx]
    let mut regs = GuestRegs { rbx: MMIO + 0xffc, ..Default::default() };
    let mut pending = None;
    let out = start(frame, &mut regs, &mut ram, MMIO + 0xffc, false, &mut pending);
    assert_eq!(out, Outcome::Exit { gpa: MMIO + 0xffc, size: 4, write: false, data: 0 });
    let out = resume(&mut regs, &mut ram, 0x4433_2211, &mut pending);
    assert_eq!(out, Outcome::Exit { gpa: MMIO + 0x1000, size: 4, write: false, data: 0 });
    let out = resume(&mut regs, &mut ram, 0x8877_6655, &mut pending);
    assert_eq!(out, Outcome::Done { len: 3 });
    assert_eq!(regs.rax, 0x8877_6655_4433_2211);
}

// A write that starts in RAM and ends in MMIO: the RAM part is written
// here, only the MMIO part goes to userland.
#[test]
fn split_write_ram_then_mmio() {
    let (mut ram, frame) = setup(&[0x89, 0x03]); // mov [rbx], eax
    let mut regs = GuestRegs { rax: 0xddcc_bbaa, rbx: 0xfffe, ..Default::default() };
    let mut pending = None;
    let out = start(frame, &mut regs, &mut ram, 0x10000, true, &mut pending);
    assert_eq!(out, Outcome::Exit { gpa: 0x10000, size: 2, write: true, data: 0xddcc });
    assert_eq!(&ram.0[0xfffe..0x10000], &[0xaa, 0xbb]);
}

// or dword [rbx], 1: read, then write of the result, flags computed.
#[test]
fn alu_read_modify_write() {
    let (mut ram, frame) = setup(&[0x83, 0x0b, 0x01]);
    let mut regs = GuestRegs { rbx: MMIO, ..Default::default() };
    let mut pending = None;
    let out = start(frame, &mut regs, &mut ram, MMIO, true, &mut pending);
    assert_eq!(out, Outcome::Exit { gpa: MMIO, size: 4, write: false, data: 0 });
    let out = resume(&mut regs, &mut ram, 0x80, &mut pending);
    assert_eq!(out, Outcome::Exit { gpa: MMIO, size: 4, write: true, data: 0x81 });
    let out = resume(&mut regs, &mut ram, 0, &mut pending);
    let frame = pending.take().unwrap().frame;
    assert_eq!(out, Outcome::Done { len: 3 });
    // 0x81: two bits set in the low byte (PF), not zero, sign clear at 32 bits.
    assert_eq!(frame.rflags & 0x8c5, 0x4);
}

// Bytes that are not an instruction the emulator knows: raw, with them.
#[test]
fn undecodable_goes_raw() {
    let (mut ram, frame) = setup(&[0x0f, 0x0b]); // ud2
    let mut regs = GuestRegs::default();
    let mut pending = None;
    let out = start(frame, &mut regs, &mut ram, MMIO, false, &mut pending);
    match out {
        Outcome::Raw { bytes, len } => {
            assert_eq!(len, 15);
            assert_eq!(&bytes[..2], &[0x0f, 0x0b]);
        }
        other => panic!("{other:?}"),
    }
    assert!(pending.is_none());
}

// REP STOSB into MMIO: one element per exit, then Repeat (RIP stays).
#[test]
fn rep_stos_one_element_per_exit() {
    let (mut ram, frame) = setup(&[0xf3, 0xaa]);
    let mut regs = GuestRegs { rax: 0x5a, rcx: 3, rdi: MMIO, ..Default::default() };
    let mut pending = None;
    let out = start(frame, &mut regs, &mut ram, MMIO, true, &mut pending);
    assert_eq!(out, Outcome::Exit { gpa: MMIO, size: 1, write: true, data: 0x5a });
    let out = resume(&mut regs, &mut ram, 0, &mut pending);
    assert_eq!(out, Outcome::Repeat);
    assert_eq!((regs.rcx, regs.rdi), (2, MMIO + 1));
}

// With guest paging: a not-present page for the operand is #PF with CR2.
#[test]
fn operand_page_fault() {
    // Identity-map only the code page: PML4 at 0x2000 -> PDPT 0x3000 ->
    // PD 0x4000 -> PT 0x5000 with entry 1 (0x1000) present.
    let (mut ram, mut frame) = setup(&[0x8b, 0x03]);
    let put = |ram: &mut Ram, at: usize, v: u64| ram.0[at..at + 8].copy_from_slice(&v.to_le_bytes());
    put(&mut ram, 0x2000, 0x3003);
    put(&mut ram, 0x3000, 0x4003);
    put(&mut ram, 0x4000, 0x5003);
    put(&mut ram, 0x5008, 0x1003);
    frame.paging.cr0 = (1 << 31) | 1;
    frame.paging.cr3 = 0x2000;
    frame.paging.cr4 = 1 << 5;
    frame.paging.efer = (1 << 8) | (1 << 10);
    let mut regs = GuestRegs { rbx: 0x7000, ..Default::default() };
    let mut pending = None;
    let out = start(frame, &mut regs, &mut ram, 0x7000, false, &mut pending);
    match out {
        Outcome::Fault(e) => assert_eq!((e.vector, e.payload), (14, Some(0x7000))),
        other => panic!("{other:?}"),
    }
}

// The bytes at RIP changed since the exit (another vCPU): their operand
// is not on the page that faulted, so they go to userland raw.
#[test]
fn operand_not_on_the_faulting_page_goes_raw() {
    let (mut ram, frame) = setup(&[0x8b, 0x03]); // mov eax, [rbx]
    let mut regs = GuestRegs { rbx: MMIO + 0x5000, ..Default::default() };
    let mut pending = None;
    let out = start(frame, &mut regs, &mut ram, MMIO, false, &mut pending);
    assert!(matches!(out, Outcome::Raw { len: 15, .. }), "{out:?}");
    assert!(pending.is_none());
}
