//! String port I/O planning (vmx/exit/strio.rs): decoding INS/OUTS exits
//! (SDM Vol. 3C Tables 28-5 and 28-8), batches that stop at page
//! boundaries, the data area's capacity, the count and the address-size
//! wrap, the data-area order with DF = 0 and 1, and the register updates.

mod common;

use rvmx_pure::vmcs::field::Seg;
use rvmx_pure::vmx::exit::strio::{decode, finish, finish_empty, plan, Batch, Split, StrIo};
use rvmx_pure::vmx::regs::GuestRegs;

const CAP: usize = 3584;

/// Qualification: size - 1 in bits 2:0, IN bit 3, string bit 4, REP bit 5,
/// port in bits 31:16.
fn qual(size: u8, is_in: bool, rep: bool, port: u16) -> u64 {
    u64::from(size - 1) | (u64::from(is_in) << 3) | (1 << 4) | (u64::from(rep) << 5) | (u64::from(port) << 16)
}

/// Instruction information: address size code in bits 9:7, segment in
/// bits 17:15; other bits set to show they are ignored.
fn info(addr_code: u32, seg: u32) -> u32 {
    (addr_code << 7) | (seg << 15) | 0xfffc_047f
}

fn strio(is_in: bool, size: u8, rep: bool, addr_size: u8, mode64: bool) -> StrIo {
    StrIo { is_in, size, rep, addr_size, seg: if is_in { Seg::Es } else { Seg::Ds }, port: 0x1f0, mode64 }
}

// INS: ES always (the information's segment is undefined for INS); OUTS:
// the segment from bits 17:15. Size, direction, REP and port from the
// qualification; address size from bits 9:7.
#[test]
fn decode_ins_and_outs() {
    let s = decode(qual(2, true, true, 0x1f0), info(1, 3), false).unwrap();
    assert_eq!(s, StrIo { is_in: true, size: 2, rep: true, addr_size: 4, seg: Seg::Es, port: 0x1f0, mode64: false });
    let segs = [Seg::Es, Seg::Cs, Seg::Ss, Seg::Ds, Seg::Fs, Seg::Gs];
    for (code, seg) in segs.iter().enumerate() {
        let s = decode(qual(4, false, false, 0x3f8), info(2, code as u32), true).unwrap();
        assert_eq!((s.seg, s.is_in, s.size, s.rep, s.addr_size, s.port), (*seg, false, 4, false, 8, 0x3f8));
    }
    assert_eq!(decode(qual(1, false, true, 0x80), info(0, 3), false).unwrap().addr_size, 2);
    assert_eq!(decode(qual(1, true, false, 0x80), info(1, 7), true).unwrap().seg, Seg::Es);
}

// Not INS/OUTS, or encodings the SDM does not define: no plan.
#[test]
fn decode_rejects() {
    assert_eq!(decode(qual(1, true, false, 0x60) & !(1 << 4), info(1, 3), false), None); // plain IN
    assert_eq!(decode(qual(1, true, false, 0x60) | 2, info(1, 3), false), None); // size code 2
    assert_eq!(decode(qual(1, false, false, 0x60), info(3, 3), true), None); // address size 3
    assert_eq!(decode(qual(1, false, false, 0x60), info(0, 3), true), None); // 16-bit in 64-bit mode
    assert_eq!(decode(qual(1, false, false, 0x60), info(2, 3), false), None); // 64-bit outside it
    assert_eq!(decode(qual(1, false, false, 0x60), info(1, 6), false), None); // segment 6
}

// REP with a zero count does nothing; without REP, RCX does not count.
// The count is CX/ECX/RCX by address size.
#[test]
fn count_zero_and_no_rep() {
    let s = strio(true, 1, true, 8, true);
    assert_eq!(plan(&s, 0x1000, 0, false, 0, CAP), None);
    let s16 = strio(true, 1, true, 2, false);
    assert_eq!(plan(&s16, 0x1000, 0xffff_0000, false, 0, CAP), None);
    let one = strio(false, 4, false, 8, true);
    let b = plan(&one, 0x1000, 0, false, 0, CAP).unwrap();
    assert_eq!(b, Batch { linear: 0x1000, count: 1, size: 4, down: false, split: None });
}

// DF = 0, each size: from the page offset up to the page end or the
// capacity, whichever is nearer.
#[test]
fn df0_each_size_page_and_capacity() {
    for size in [1u8, 2, 4] {
        let s = strio(false, size, true, 8, true);
        let b = plan(&s, 0x7000_0100, 100_000, false, 0, CAP).unwrap();
        let page_room = (0x1000 - 0x100) / u32::from(size);
        let cap_room = CAP as u32 / u32::from(size);
        assert_eq!(b.count, page_room.min(cap_room), "size {size}");
        assert_eq!((b.linear, b.down, b.split), (0x7000_0100, false, None));
        assert!(b.bytes() <= CAP);
        // Near the page end only the rest of the page.
        let b = plan(&s, 0x7000_0ff0, 100_000, false, 0, CAP).unwrap();
        assert_eq!(b.count, 16 / u32::from(size), "size {size}");
        // Fewer elements left than room: all of them.
        let b = plan(&s, 0x7000_0000, 3, false, 0, CAP).unwrap();
        assert_eq!(b.count, 3);
    }
}

// DF = 1: the first element is the highest; the batch goes down to the
// page start, and `linear` is the lowest address touched.
#[test]
fn df1_batch_goes_down() {
    for size in [1u8, 2, 4] {
        let s = strio(true, size, true, 4, false);
        let sz = u64::from(size);
        let b = plan(&s, 0x5010, 1000, true, 0, CAP).unwrap();
        let n = 0x10 / sz + 1;
        assert_eq!(b, Batch { linear: 0x5010 - (n - 1) * sz, count: n as u32, size, down: true, split: None });
        // The first element transferred is the highest, the last the lowest.
        // The first element transferred is the highest; the last is at `linear`.
        assert_eq!(b.linear + u64::from(b.count - 1) * u64::from(b.size), 0x5010);
        // Fewer left: just those below the pointer.
        let b = plan(&s, 0x5800, 3, true, 0, CAP).unwrap();
        assert_eq!((b.linear, b.count), (0x5800 - 2 * sz, 3));
    }
}

// Capacity: at most capacity / size elements; below one element there is
// nothing to plan.
#[test]
fn capacity_limit() {
    let s = strio(false, 4, true, 8, true);
    assert_eq!(plan(&s, 0x1000, 10_000, false, 0, 3584).unwrap().count, 896);
    assert_eq!(plan(&s, 0x1000, 10_000, false, 0, 7).unwrap().count, 1);
    assert_eq!(plan(&s, 0x1000, 10_000, false, 0, 3), None);
    assert_eq!(plan(&s, 0x1ffc, 10_000, true, 0, 10).unwrap().count, 2);
}

// An element across a page boundary: alone in its batch, with the bytes
// on each page (both directions).
#[test]
fn element_across_pages() {
    let s = strio(true, 4, true, 8, true);
    for df in [false, true] {
        let b = plan(&s, 0x3ffe, 10, df, 0, CAP).unwrap();
        assert_eq!(b, Batch { linear: 0x3ffe, count: 1, size: 4, down: df, split: Some(Split { first: 2, linear2: 0x4000 }) });
    }
    let s = strio(false, 2, false, 4, false);
    let b = plan(&s, 0x0fff, 0, false, 0x10_0000, CAP).unwrap();
    assert_eq!(b.split, Some(Split { first: 1, linear2: 0x10_1000 }));
    // Outside 64-bit mode the next page after 4 GiB - 4 KiB is page 0.
    let s = strio(false, 4, false, 4, false);
    let b = plan(&s, 0xffff_fffd, 0, false, 0, CAP).unwrap();
    assert_eq!((b.linear, b.split), (0xffff_fffd, Some(Split { first: 3, linear2: 0 })));
}

// 16-bit addresses: SI/DI wrap at 64 KiB, so a batch stops at the wrap
// (with a segment base that is not page aligned the wrap is mid-page);
// bits 63:16 of the register do not count.
#[test]
fn addr16_wraps_at_64k() {
    let s = strio(false, 2, true, 2, false);
    let b = plan(&s, 0xdead_0000_0000_fffc, 0x1000, false, 0x1_0800, CAP).unwrap();
    assert_eq!((b.linear, b.count), (0x2_07fc, 2));
    let mut regs = GuestRegs { rsi: 0xdead_0000_0000_fffc, rcx: 0xbeef_0000_0000_1000, ..Default::default() };
    assert!(!finish(&s, &b, &mut regs));
    assert_eq!((regs.rsi, regs.rcx), (0xdead_0000_0000_0000, 0xbeef_0000_0000_0ffe));
    // The next batch starts at the segment base.
    let b = plan(&s, regs.rsi, regs.rcx, false, 0x1_0800, CAP).unwrap();
    assert_eq!((b.linear, b.count), (0x1_0800, 0x400));
    // DF = 1: down to offset 0, then on from 0xfffe.
    let s = strio(true, 2, true, 2, false);
    let b = plan(&s, 0x0002, 100, true, 0x1_0800, CAP).unwrap();
    assert_eq!((b.linear, b.count), (0x1_0800, 2));
    let mut regs = GuestRegs { rdi: 0x0002, rcx: 100, ..Default::default() };
    assert!(!finish(&s, &b, &mut regs));
    assert_eq!((regs.rdi, regs.rcx), (0xfffe, 98));
}

// 32-bit addresses: outside 64-bit mode linear addresses wrap at 4 GiB; in
// 64-bit mode (0x67 prefix) ESI is zero-extended, ES/DS bases count as 0
// and FS/GS bases count in full.
#[test]
fn addr32_and_segment_bases() {
    let s = strio(false, 1, true, 4, false);
    let b = plan(&s, 0x1010, 5, false, 0xffff_f000, CAP).unwrap();
    assert_eq!((b.linear, b.count), (0x10, 5));
    let s64 = strio(false, 1, true, 4, true);
    let b = plan(&s64, 0xffff_ffff_8000_0000, 5, false, 0x1234_0000, CAP).unwrap();
    assert_eq!(b.linear, 0x8000_0000, "DS base ignored, ESI zero-extended");
    let fs = StrIo { seg: Seg::Fs, ..s64 };
    let b = plan(&fs, 0x10, 5, false, 0x7f00_0000_0000, CAP).unwrap();
    assert_eq!(b.linear, 0x7f00_0000_0010);
    // 64-bit addresses: the full RSI.
    let s = strio(false, 1, true, 8, true);
    assert_eq!(plan(&s, 0xffff_8000_0000_0123, 5, false, 0, CAP).unwrap().linear, 0xffff_8000_0000_0123);
}

// 32-bit address size: RSI/RDI and RCX are written as 32-bit registers
// (bits 63:32 cleared); 64-bit: the full registers.
#[test]
fn finish_register_widths() {
    let s = strio(true, 4, true, 4, true);
    let mut regs = GuestRegs { rdi: 0xaaaa_0000_0000_1000, rsi: 7, rcx: 0xbbbb_0000_0000_0010, ..Default::default() };
    let b = plan(&s, regs.rdi, regs.rcx, false, 0, CAP).unwrap();
    assert_eq!(b.count, 16);
    assert!(finish(&s, &b, &mut regs));
    assert_eq!((regs.rdi, regs.rcx, regs.rsi), (0x1040, 0, 7));
    let s = strio(false, 2, true, 8, true);
    let mut regs = GuestRegs { rsi: 0x1_0000_0100, rcx: 0x1_0000_0000, ..Default::default() };
    let b = plan(&s, regs.rsi, regs.rcx, true, 0, CAP).unwrap();
    assert_eq!(b.count, 0x81);
    assert!(!finish(&s, &b, &mut regs));
    assert_eq!((regs.rsi, regs.rcx), (0x1_0000_0100 - 0x102, 0x1_0000_0000 - 0x81));
}

// Without REP one element moves and the instruction is complete; RCX
// stays.
#[test]
fn finish_without_rep() {
    let s = strio(false, 4, false, 8, true);
    let mut regs = GuestRegs { rsi: 0x2000, rcx: 0x55, ..Default::default() };
    let b = plan(&s, regs.rsi, regs.rcx, true, 0, CAP).unwrap();
    assert!(finish(&s, &b, &mut regs));
    assert_eq!((regs.rsi, regs.rcx), (0x1ffc, 0x55));
}

// A zero-count REP with a 32-bit address size in 64-bit mode clears
// RCX[63:32] (Intel); other widths keep RCX.
#[test]
fn finish_empty_rcx() {
    let mut regs = GuestRegs { rcx: 0xffff_0000_0000_0000, rdi: 0x1234_0000_0000_0000, ..Default::default() };
    finish_empty(&strio(true, 1, true, 4, true), &mut regs);
    assert_eq!((regs.rcx, regs.rdi), (0, 0x1234_0000_0000_0000));
    let mut regs = GuestRegs { rcx: 0xffff_0000_0000_0000, ..Default::default() };
    finish_empty(&strio(true, 1, true, 8, true), &mut regs);
    finish_empty(&strio(true, 1, false, 4, true), &mut regs);
    let mut r16 = GuestRegs { rcx: 0xffff_0000, ..Default::default() };
    finish_empty(&strio(true, 1, true, 2, false), &mut r16);
    assert_eq!((regs.rcx, r16.rcx), (0xffff_0000_0000_0000, 0xffff_0000));
}

// reorder: DF = 1 turns memory order into the CPU's order by elements, not
// bytes, and back; DF = 0 leaves the bytes alone.
#[test]
fn reorder_elements() {
    let b = Batch { linear: 0, count: 3, size: 2, down: true, split: None };
    let mut buf = [1u8, 2, 3, 4, 5, 6];
    b.reorder(&mut buf);
    assert_eq!(buf, [5, 6, 3, 4, 1, 2]);
    b.reorder(&mut buf);
    assert_eq!(buf, [1, 2, 3, 4, 5, 6]);
    Batch { down: false, ..b }.reorder(&mut buf);
    assert_eq!(buf, [1, 2, 3, 4, 5, 6]);
}

/// A byte of guest memory at a linear address (a pattern).
fn mem(lin: u64) -> u8 {
    (lin ^ (lin >> 8) ^ (lin >> 16)).wrapping_mul(31) as u8
}

/// What the port sees from REP OUTS, element by element as the CPU does
/// it, and the final RSI and RCX.
fn reference(s: &StrIo, rsi: u64, rcx: u64, df: bool, base: u64) -> (Vec<u8>, u64, u64) {
    let amask = match s.addr_size { 2 => 0xffff, 4 => 0xffff_ffff, _ => u64::MAX };
    let lmask = if s.mode64 { u64::MAX } else { 0xffff_ffff };
    let size = u64::from(s.size);
    let mut out = Vec::new();
    let mut ea = rsi & amask;
    for _ in 0..(rcx & amask) {
        let lin = base.wrapping_add(ea) & lmask;
        out.extend((0..size).map(|k| mem(lin.wrapping_add(k) & lmask)));
        ea = if df { ea.wrapping_sub(size) } else { ea.wrapping_add(size) } & amask;
    }
    let merge = |old: u64, new: u64| match s.addr_size { 2 => (old & !0xffff) | new, 4 => new, _ => new };
    (out, merge(rsi, ea), merge(rcx, 0))
}

// End to end: batches planned, copied through the data area (reordered)
// and finished until the instruction completes give the port the CPU's
// byte stream and leave RSI/RCX as the CPU would; no batch crosses a page
// or passes the capacity.
#[test]
fn batches_match_the_cpu() {
    // (size, DF, address size, 64-bit mode, FS base, RSI, RCX, capacity)
    type Case = (u8, bool, u8, bool, u64, u64, u64, usize);
    let cases: [Case; 8] = [
        (1, false, 8, true, 0, 0x1_0f00, 9000, CAP),
        (2, true, 8, true, 0, 0x2_0101, 5000, CAP),
        (4, true, 4, true, 0, 0x0000_3002, 3000, 100),
        (4, false, 4, false, 0x10_0003, 0xfffe, 4000, CAP),
        (2, false, 2, false, 0x1_0801, 0xff00, 300, 64),
        (2, true, 2, false, 0x1_0801, 0x0100, 300, CAP),
        (4, false, 4, false, 0xffff_f000, 0xff8, 40, CAP),
        (1, true, 2, false, 0, 0x10, 0x1_0030, CAP), // CX = 0x30
    ];
    for (size, df, addr_size, mode64, base, rsi0, rcx0, cap) in cases {
        let s = StrIo { seg: Seg::Fs, ..strio(false, size, true, addr_size, mode64) };
        let (want, want_rsi, want_rcx) = reference(&s, rsi0, rcx0, df, base);
        let mut regs = GuestRegs { rsi: rsi0, rcx: rcx0, ..Default::default() };
        let mut got = Vec::new();
        let mut exits = 0;
        loop {
            let b = plan(&s, s.pointer(&regs), regs.rcx, df, base, cap).unwrap();
            assert!(b.bytes() <= cap.max(usize::from(size)));
            let mut area = vec![0u8; b.bytes()];
            match b.split {
                Some(sp) => {
                    assert_eq!(b.count, 1);
                    assert_eq!((b.linear + u64::from(sp.first)) % 4096, 0);
                    let f = usize::from(sp.first);
                    for (k, byte) in area.iter_mut().enumerate() {
                        *byte = if k < f { mem(b.linear + k as u64) } else { mem(sp.linear2 + (k - f) as u64) };
                    }
                }
                None => {
                    assert_eq!(b.linear / 4096, (b.linear + b.bytes() as u64 - 1) / 4096, "batch crosses a page");
                    for (k, byte) in area.iter_mut().enumerate() {
                        *byte = mem(b.linear + k as u64);
                    }
                    b.reorder(&mut area);
                }
            }
            got.extend_from_slice(&area);
            exits += 1;
            if finish(&s, &b, &mut regs) {
                break;
            }
        }
        let case = format!("size {size} df {df} addr {addr_size} base {base:#x} rsi {rsi0:#x}");
        assert_eq!(got, want, "{case}");
        assert_eq!((regs.rsi, regs.rcx), (want_rsi, want_rcx), "{case}");
        assert!(exits <= want.len() / usize::from(size), "{case}");
    }
}

mod transfer {
    use rvmx_pure::vmcs::field::Seg;
    use rvmx_pure::vmx::exit::strio::{complete_in, start, StrExit, StrIo, Step};
    use rvmx_pure::vmx::regs::GuestRegs;
    use rvmx_pure::x86::paging::PagingRegs;

    use super::common::Ram;

    fn exit(is_in: bool, size: u8, rep: bool, df: bool, paging: PagingRegs) -> StrExit {
        let s = StrIo { is_in, size, rep, addr_size: 4, seg: if is_in { Seg::Es } else { Seg::Ds }, port: 0x3f8, mode64: false };
        StrExit { s, df, seg_base: 0x100, paging, user: false, len: 2, qual: 0, info: 0 }
    }

    // REP OUTSB, DF=0, paging off: the bytes at DS:ESI in order, ESI and
    // ECX moved, complete.
    #[test]
    fn rep_outsb_copies_and_completes() {
        let mut ram = Ram((0..65536u32).map(|i| i as u8).collect());
        let mut regs = GuestRegs { rsi: 0x20, rcx: 5, ..Default::default() };
        let mut data = [0u8; 3584];
        let step = start(&exit(false, 1, true, false, PagingRegs::default()), &mut regs, &mut ram, &mut data);
        assert_eq!(step, Step::Report { count: 5, complete: true });
        assert_eq!(&data[..5], &[0x20, 0x21, 0x22, 0x23, 0x24]);
        assert_eq!((regs.rsi, regs.rcx), (0x25, 0));
    }

    // REP INSW with DF=1: userland's elements (CPU order) land at
    // ES:EDI, EDI-2, ...; EDI and ECX move only on completion.
    #[test]
    fn rep_insw_down_completes_on_next_run() {
        let mut ram = Ram(vec![0; 65536]);
        let mut regs = GuestRegs { rdi: 0x40, rcx: 3, ..Default::default() };
        let mut data = [0u8; 3584];
        let x = exit(true, 2, true, true, PagingRegs::default());
        let Step::Wait { count: 3, pending } = start(&x, &mut regs, &mut ram, &mut data) else { panic!() };
        assert_eq!((regs.rdi, regs.rcx), (0x40, 3));
        data[..6].copy_from_slice(&[0x11, 0x22, 0x33, 0x44, 0x55, 0x66]);
        assert_eq!(complete_in(&pending, &mut regs, &mut ram, &mut data), Some(true));
        // First element at 0x140, then 0x13e, then 0x13c.
        assert_eq!(&ram.0[0x13c..0x142], &[0x55, 0x66, 0x33, 0x44, 0x11, 0x22]);
        assert_eq!((regs.rdi, regs.rcx), (0x3a, 0));
    }

    // Paging on with a not-present page: #PF with the error code and CR2
    // at the linear address; nothing moves.
    #[test]
    fn not_present_page_faults() {
        let mut ram = Ram(vec![0; 65536]);
        // 32-bit paging, CR3 = 0x1000, empty page directory.
        let paging = PagingRegs { cr0: (1 << 31) | 1, cr3: 0x1000, ..Default::default() };
        let mut regs = GuestRegs { rsi: 0x20, rcx: 1, ..Default::default() };
        let mut data = [0u8; 3584];
        match start(&exit(false, 1, true, false, paging), &mut regs, &mut ram, &mut data) {
            Step::Fault(e) => assert_eq!((e.vector, e.error_code, e.payload), (14, Some(0), Some(0x120))),
            other => panic!("{other:?}"),
        }
        assert_eq!((regs.rsi, regs.rcx), (0x20, 1));
    }

    // A memory operand outside RAM is not moved.
    #[test]
    fn outside_ram_is_refused() {
        let mut ram = Ram(vec![0; 0x100]);
        let mut regs = GuestRegs { rsi: 0x20, rcx: 1, ..Default::default() };
        let mut data = [0u8; 3584];
        assert_eq!(start(&exit(false, 1, false, false, PagingRegs::default()), &mut regs, &mut ram, &mut data), Step::NotRam);
    }

    // INS into memory that is not RAM (MMIO, a ROM): not started (userland
    // would read ports for nothing), the exit goes raw.
    #[test]
    fn ins_into_non_ram_is_refused() {
        let mut ram = Ram(vec![0; 0x100]);
        let mut regs = GuestRegs { rdi: 0x20, rcx: 1, ..Default::default() };
        let mut data = [0u8; 3584];
        assert_eq!(start(&exit(true, 1, false, false, PagingRegs::default()), &mut regs, &mut ram, &mut data), Step::NotRam);
        assert_eq!(regs.rdi, 0x20);
    }

    // REP with ECX = 0: nothing moves, the instruction is done.
    #[test]
    fn zero_count_is_empty() {
        let mut ram = Ram(vec![0; 65536]);
        let mut regs = GuestRegs { rsi: 0x20, rcx: 0, ..Default::default() };
        let mut data = [0u8; 3584];
        assert_eq!(start(&exit(false, 1, true, false, PagingRegs::default()), &mut regs, &mut ram, &mut data), Step::Empty);
    }
}
