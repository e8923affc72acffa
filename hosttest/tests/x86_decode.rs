//! The MMIO instruction decoder (x86/decode.rs): a table of encodings with
//! what they must decode to, in 64-bit, 32-bit and 16-bit modes, and the
//! bytes it must refuse. Encodings from SDM Vol. 2A chapter 2 and the
//! per-instruction pages; each was checked against a disassembler.

use rvmx_pure::vmcs::field::Seg;
use rvmx_pure::x86::decode::{decode, Alu, Insn, Mem, Mode, Op, Reg, Src, Undecodable};

const L64: Mode = Mode { long64: true, default32: false };
const P32: Mode = Mode { long64: false, default32: true };
const R16: Mode = Mode { long64: false, default32: false };

const ST: Op = Op::Store(Src::Reg);
const STI: Op = Op::Store(Src::Imm);
const fn ld(src_size: u8, sign: bool) -> Op {
    Op::Load { src_size, sign }
}
const fn am(alu: Alu) -> Op {
    Op::AluMem(alu, Src::Reg)
}
const fn ami(alu: Alu) -> Op {
    Op::AluMem(alu, Src::Imm)
}

const fn r(num: u8) -> Reg {
    Reg { num, high: false }
}
const fn hi(num: u8) -> Reg {
    Reg { num, high: true }
}
/// [base + disp].
const fn bd(base: u8, disp: i64) -> Mem {
    Mem { base: Some(base), index: None, scale: 1, disp: disp as u64, rip_rel: false }
}
/// [base].
const fn b(base: u8) -> Mem {
    bd(base, 0)
}
/// [base + index * scale + disp].
const fn sib(base: Option<u8>, index: u8, scale: u8, disp: i64) -> Mem {
    Mem { base, index: Some(index), scale, disp: disp as u64, rip_rel: false }
}
/// [disp] (also moffs).
const fn abs(disp: u64) -> Mem {
    Mem { base: None, index: None, scale: 1, disp, rip_rel: false }
}
/// [rip + disp].
const fn rip(disp: i64) -> Mem {
    Mem { base: None, index: None, scale: 1, disp: disp as u64, rip_rel: true }
}
/// No ModRM operand (STOS, MOVS).
const NONE: Mem = Mem { base: None, index: None, scale: 0, disp: 0, rip_rel: false };

/// The default: DS, the mode's address size, no immediate, no REP.
fn ins(mode: Mode, len: u8, op: Op, size: u8, mem: Mem, reg: Reg) -> Insn {
    let addr_size = if mode.long64 {
        8
    } else if mode.default32 {
        4
    } else {
        2
    };
    Insn { len, op, size, addr_size, seg: Seg::Ds, mem, reg, imm: 0, rep: false, long64: mode.long64 }
}

fn check(table: &[(&[u8], Mode, Insn)]) {
    for (bytes, mode, want) in table {
        assert_eq!(decode(bytes, *mode), Ok(*want), "{bytes:02x?} in {mode:?}");
        // Trailing bytes are not part of it.
        let mut more = bytes.to_vec();
        more.extend_from_slice(&[0x90; 4]);
        more.truncate(15.max(bytes.len()));
        assert_eq!(decode(&more, *mode), Ok(*want), "{more:02x?} in {mode:?}");
    }
}

#[test]
fn mov_64bit() {
    check(&[
        // mov [rax], ecx / rcx / cx / cl
        (&[0x89, 0x08], L64, ins(L64, 2, ST, 4, b(0), r(1))),
        (&[0x48, 0x89, 0x08], L64, ins(L64, 3, ST, 8, b(0), r(1))),
        (&[0x66, 0x89, 0x08], L64, ins(L64, 3, ST, 2, b(0), r(1))),
        (&[0x88, 0x08], L64, ins(L64, 2, ST, 1, b(0), r(1))),
        // mov [rax], ah (no REX) vs spl (REX 40), r8b, dil with [r15]
        (&[0x88, 0x20], L64, ins(L64, 2, ST, 1, b(0), hi(0))),
        (&[0x40, 0x88, 0x20], L64, ins(L64, 3, ST, 1, b(0), r(4))),
        (&[0x44, 0x88, 0x00], L64, ins(L64, 3, ST, 1, b(0), r(8))),
        (&[0x41, 0x88, 0x3f], L64, ins(L64, 3, ST, 1, b(15), r(7))),
        // mov eax, [rip+0x10]; mov r11, [rip-0x10]
        (&[0x8b, 0x05, 0x10, 0, 0, 0], L64, ins(L64, 6, ld(4, false), 4, rip(0x10), r(0))),
        (&[0x4c, 0x8b, 0x1d, 0xf0, 0xff, 0xff, 0xff], L64, ins(L64, 7, ld(8, false), 8, rip(-0x10), r(11))),
        // mov ah, [rbx+0x7f]; mov bh, [rbx-1]
        (&[0x8a, 0x63, 0x7f], L64, ins(L64, 3, ld(1, false), 1, bd(3, 0x7f), hi(0))),
        (&[0x8a, 0x7b, 0xff], L64, ins(L64, 3, ld(1, false), 1, bd(3, -1), hi(3))),
        // mov r15d, [rsp]: SS; mov eax, [rsp+8]
        (&[0x44, 0x8b, 0x3c, 0x24], L64, Insn { seg: Seg::Ss, ..ins(L64, 4, ld(4, false), 4, b(4), r(15)) }),
        (&[0x8b, 0x44, 0x24, 0x08], L64, Insn { seg: Seg::Ss, ..ins(L64, 4, ld(4, false), 4, bd(4, 8), r(0)) }),
        // mov eax, [rbp+0] (SS) vs [r13+0] (DS) vs [r12] (SIB, DS)
        (&[0x8b, 0x45, 0x00], L64, Insn { seg: Seg::Ss, ..ins(L64, 3, ld(4, false), 4, b(5), r(0)) }),
        (&[0x41, 0x8b, 0x45, 0x00], L64, ins(L64, 4, ld(4, false), 4, b(13), r(0))),
        (&[0x41, 0x8b, 0x04, 0x24], L64, ins(L64, 4, ld(4, false), 4, b(12), r(0))),
        // mov eax, [rcx*4+0x1000] (SIB without base)
        (&[0x8b, 0x04, 0x8d, 0x00, 0x10, 0, 0], L64, ins(L64, 7, ld(4, false), 4, sib(None, 1, 4, 0x1000), r(0))),
        // mov eax, [rax+r12*4] (REX.X: index 12 is a real index)
        (&[0x42, 0x8b, 0x04, 0xa0], L64, ins(L64, 4, ld(4, false), 4, sib(Some(0), 12, 4, 0), r(0))),
        // mov eax, [rax] via SIB with index 100: no index, scale ignored
        (&[0x8b, 0x04, 0x20], L64, ins(L64, 3, ld(4, false), 4, b(0), r(0))),
        (&[0x8b, 0x04, 0xe0], L64, ins(L64, 3, ld(4, false), 4, b(0), r(0))),
        // mov eax, [r13+r15*8-0x80]
        (&[0x43, 0x8b, 0x44, 0xfd, 0x80], L64, ins(L64, 5, ld(4, false), 4, sib(Some(13), 15, 8, -0x80), r(0))),
        // mov eax, [0x1000000] by SIB base 101 with mod 00, REX.B set: still no base
        (&[0x41, 0x8b, 0x04, 0x25, 0, 0, 0, 1], L64, ins(L64, 8, ld(4, false), 4, abs(0x100_0000), r(0))),
        // mov eax, [0x12345678] sign-extended disp32
        (&[0x8b, 0x04, 0x25, 0x78, 0x56, 0x34, 0x12], L64, ins(L64, 7, ld(4, false), 4, abs(0x1234_5678), r(0))),
        (&[0x8b, 0x04, 0x25, 0, 0, 0, 0x80], L64, ins(L64, 7, ld(4, false), 4, abs(0xffff_ffff_8000_0000), r(0))),
        // mov rcx, [rdx+rbx*2+0x12345678] (disp32 with mod 10)
        (&[0x48, 0x8b, 0x8c, 0x5a, 0x78, 0x56, 0x34, 0x12], L64, ins(L64, 8, ld(8, false), 8, sib(Some(2), 3, 2, 0x1234_5678), r(1))),
        // 67: 32-bit addresses, EIP-relative
        (&[0x67, 0x8b, 0x05, 0x10, 0, 0, 0], L64, Insn { addr_size: 4, ..ins(L64, 7, ld(4, false), 4, rip(0x10), r(0)) }),
        (&[0x67, 0x8b, 0x00], L64, Insn { addr_size: 4, ..ins(L64, 3, ld(4, false), 4, b(0), r(0)) }),
        // moffs: 8-byte offset, or 4 with 67
        (
            &[0xa1, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11],
            L64,
            ins(L64, 9, ld(4, false), 4, abs(0x1122_3344_5566_7788), r(0)),
        ),
        (&[0x48, 0xa3, 0, 0, 0, 0xfe, 0, 0, 0, 0x80], L64, ins(L64, 10, ST, 8, abs(0x8000_0000_fe00_0000), r(0))),
        (&[0x67, 0xa0, 0x78, 0x56, 0x34, 0x12], L64, Insn { addr_size: 4, ..ins(L64, 6, ld(1, false), 1, abs(0x1234_5678), r(0)) }),
        (&[0xa2, 1, 0, 0, 0, 0, 0, 0, 0], L64, ins(L64, 9, ST, 1, abs(1), r(0))),
        (&[0x66, 0xa1, 0x10, 0, 0, 0, 0, 0, 0, 0], L64, ins(L64, 10, ld(2, false), 2, abs(0x10), r(0))),
        // mov with immediates (sign-extended to 64 bits)
        (&[0xc6, 0x00, 0xff], L64, Insn { imm: u64::MAX, ..ins(L64, 3, STI, 1, b(0), r(0)) }),
        (&[0xc7, 0x00, 0x78, 0x56, 0x34, 0x12], L64, Insn { imm: 0x1234_5678, ..ins(L64, 6, STI, 4, b(0), r(0)) }),
        (&[0x48, 0xc7, 0x00, 0xff, 0xff, 0xff, 0xff], L64, Insn { imm: u64::MAX, ..ins(L64, 7, STI, 8, b(0), r(0)) }),
        (&[0x66, 0xc7, 0x00, 0x34, 0x12], L64, Insn { imm: 0x1234, ..ins(L64, 5, STI, 2, b(0), r(0)) }),
        // mov dword [rip+0x100], 1: RIP-relative with an immediate after
        (&[0xc7, 0x05, 0, 1, 0, 0, 1, 0, 0, 0], L64, Insn { imm: 1, ..ins(L64, 10, STI, 4, rip(0x100), r(0)) }),
        // MOVZX / MOVSX / MOVSXD
        (&[0x0f, 0xb6, 0x08], L64, ins(L64, 3, ld(1, false), 4, b(0), r(1))),
        (&[0x48, 0x0f, 0xb7, 0x08], L64, ins(L64, 4, ld(2, false), 8, b(0), r(1))),
        (&[0x66, 0x0f, 0xbe, 0x08], L64, ins(L64, 4, ld(1, true), 2, b(0), r(1))),
        (&[0x0f, 0xbf, 0x08], L64, ins(L64, 3, ld(2, true), 4, b(0), r(1))),
        (&[0x4c, 0x0f, 0xbe, 0x00], L64, ins(L64, 4, ld(1, true), 8, b(0), r(8))),
        (&[0x48, 0x63, 0x08], L64, ins(L64, 3, ld(4, true), 8, b(0), r(1))),
        (&[0x63, 0x08], L64, ins(L64, 2, ld(4, true), 4, b(0), r(1))),
        // MOVSXD r16, r/m16 (SDM Vol. 2B MOVSX/MOVSXD): a word is read
        (&[0x66, 0x63, 0x08], L64, ins(L64, 3, ld(2, true), 2, b(0), r(1))),
    ]);
}

#[test]
fn alu_test_xchg_cmpxchg_64bit() {
    use Alu::*;
    check(&[
        (&[0x01, 0x08], L64, ins(L64, 2, am(Add), 4, b(0), r(1))),
        (&[0xf0, 0x48, 0x01, 0x08], L64, ins(L64, 4, am(Add), 8, b(0), r(1))),
        (&[0x08, 0x20], L64, ins(L64, 2, am(Or), 1, b(0), hi(0))),
        (&[0x11, 0x08], L64, ins(L64, 2, am(Adc), 4, b(0), r(1))),
        (&[0x19, 0x08], L64, ins(L64, 2, am(Sbb), 4, b(0), r(1))),
        (&[0x21, 0x08], L64, ins(L64, 2, am(And), 4, b(0), r(1))),
        (&[0x29, 0x08], L64, ins(L64, 2, am(Sub), 4, b(0), r(1))),
        (&[0x31, 0x08], L64, ins(L64, 2, am(Xor), 4, b(0), r(1))),
        (&[0x39, 0x08], L64, ins(L64, 2, am(Cmp), 4, b(0), r(1))),
        (&[0x03, 0x08], L64, ins(L64, 2, Op::AluReg(Add), 4, b(0), r(1))),
        (&[0x3a, 0x08], L64, ins(L64, 2, Op::AluReg(Cmp), 1, b(0), r(1))),
        (&[0x2b, 0x0c, 0x24], L64, Insn { seg: Seg::Ss, ..ins(L64, 3, Op::AluReg(Sub), 4, b(4), r(1)) }),
        (&[0x4d, 0x13, 0x42, 0x08], L64, ins(L64, 4, Op::AluReg(Adc), 8, bd(10, 8), r(8))),
        (&[0x80, 0x08, 0x01], L64, Insn { imm: 1, ..ins(L64, 3, ami(Or), 1, b(0), r(0)) }),
        (&[0x81, 0x38, 0, 0, 0, 0x80], L64, Insn { imm: 0xffff_ffff_8000_0000, ..ins(L64, 6, ami(Cmp), 4, b(0), r(0)) }),
        (&[0x48, 0x83, 0x28, 0xff], L64, Insn { imm: u64::MAX, ..ins(L64, 4, ami(Sub), 8, b(0), r(0)) }),
        (&[0x66, 0x81, 0x00, 0x34, 0x12], L64, Insn { imm: 0x1234, ..ins(L64, 5, ami(Add), 2, b(0), r(0)) }),
        (&[0x83, 0x60, 0x04, 0xf0], L64, Insn { imm: (-16i64) as u64, ..ins(L64, 4, ami(And), 4, bd(0, 4), r(0)) }),
        (&[0x80, 0x58, 0x04, 0x7f], L64, Insn { imm: 0x7f, ..ins(L64, 4, ami(Sbb), 1, bd(0, 4), r(0)) }),
        (&[0x84, 0x08], L64, ins(L64, 2, Op::Test(Src::Reg), 1, b(0), r(1))),
        (&[0x48, 0x85, 0x08], L64, ins(L64, 3, Op::Test(Src::Reg), 8, b(0), r(1))),
        (&[0xf6, 0x00, 0x80], L64, Insn { imm: 0xffff_ffff_ffff_ff80, ..ins(L64, 3, Op::Test(Src::Imm), 1, b(0), r(0)) }),
        (&[0xf7, 0x00, 0xff, 0, 0, 0], L64, Insn { imm: 0xff, ..ins(L64, 6, Op::Test(Src::Imm), 4, b(0), r(0)) }),
        (&[0x86, 0x08], L64, ins(L64, 2, Op::Xchg, 1, b(0), r(1))),
        (&[0x48, 0x87, 0x08], L64, ins(L64, 3, Op::Xchg, 8, b(0), r(1))),
        (&[0xf0, 0x87, 0x08], L64, ins(L64, 3, Op::Xchg, 4, b(0), r(1))),
        (&[0xf0, 0x0f, 0xb1, 0x0a], L64, ins(L64, 4, Op::Cmpxchg, 4, b(2), r(1))),
        (&[0x0f, 0xb0, 0x0a], L64, ins(L64, 3, Op::Cmpxchg, 1, b(2), r(1))),
        (&[0x0f, 0xb0, 0x22], L64, ins(L64, 3, Op::Cmpxchg, 1, b(2), hi(0))),
        (&[0x48, 0x0f, 0xb1, 0x0a], L64, ins(L64, 4, Op::Cmpxchg, 8, b(2), r(1))),
        (&[0xf0, 0x80, 0x00, 0x01], L64, Insn { imm: 1, ..ins(L64, 4, ami(Add), 1, b(0), r(0)) }),
    ]);
}

#[test]
fn strings_64bit() {
    let es = |i: Insn| Insn { seg: Seg::Es, ..i };
    check(&[
        (&[0xaa], L64, es(ins(L64, 1, Op::Stos, 1, NONE, r(0)))),
        (&[0xf3, 0x48, 0xab], L64, es(Insn { rep: true, ..ins(L64, 3, Op::Stos, 8, NONE, r(0)) })),
        (&[0x66, 0xab], L64, es(ins(L64, 2, Op::Stos, 2, NONE, r(0)))),
        // STOS ignores a segment override (ES:rDI)
        (&[0x64, 0xab], L64, es(ins(L64, 2, Op::Stos, 4, NONE, r(0)))),
        (&[0xf3, 0xa4], L64, Insn { rep: true, ..ins(L64, 2, Op::Movs, 1, NONE, r(0)) }),
        (&[0x64, 0xa5], L64, Insn { seg: Seg::Fs, ..ins(L64, 2, Op::Movs, 4, NONE, r(0)) }),
        (&[0x67, 0xf3, 0xa5], L64, Insn { rep: true, addr_size: 4, ..ins(L64, 3, Op::Movs, 4, NONE, r(0)) }),
        (&[0xf3, 0x48, 0xa5], L64, Insn { rep: true, ..ins(L64, 3, Op::Movs, 8, NONE, r(0)) }),
        // the last of F2/F3 counts
        (&[0xf2, 0xf3, 0xa4], L64, Insn { rep: true, ..ins(L64, 3, Op::Movs, 1, NONE, r(0)) }),
    ]);
}

#[test]
fn prefixes_64bit() {
    check(&[
        // FS, GS count in 64-bit mode
        (&[0x64, 0x89, 0x08], L64, Insn { seg: Seg::Fs, ..ins(L64, 3, ST, 4, b(0), r(1)) }),
        (
            &[0x65, 0x48, 0x8b, 0x04, 0x25, 0x28, 0, 0, 0],
            L64,
            Insn { seg: Seg::Gs, ..ins(L64, 9, ld(8, false), 8, abs(0x28), r(0)) },
        ),
        // ES, CS, SS, DS overrides are ignored: the default stays
        (&[0x26, 0x89, 0x08], L64, ins(L64, 3, ST, 4, b(0), r(1))),
        (&[0x2e, 0x8b, 0x45, 0x00], L64, Insn { seg: Seg::Ss, ..ins(L64, 4, ld(4, false), 4, b(5), r(0)) }),
        (&[0x36, 0x89, 0x08], L64, ins(L64, 3, ST, 4, b(0), r(1))),
        (&[0x64, 0x3e, 0x89, 0x08], L64, Insn { seg: Seg::Fs, ..ins(L64, 4, ST, 4, b(0), r(1)) }),
        // REX must come last: before a legacy prefix it is dropped
        (&[0x48, 0x66, 0x89, 0x08], L64, ins(L64, 4, ST, 2, b(0), r(1))),
        (&[0x41, 0x64, 0x88, 0x20], L64, Insn { seg: Seg::Fs, ..ins(L64, 4, ST, 1, b(0), hi(0)) }),
        // REX.W wins over 66; the last REX counts
        (&[0x66, 0x48, 0x89, 0x08], L64, ins(L64, 4, ST, 8, b(0), r(1))),
        (&[0x48, 0x41, 0x89, 0x08], L64, ins(L64, 4, ST, 4, b(8), r(1))),
        // F3 (XRELEASE) and F2 on a MOV: no REP
        (&[0xf3, 0x89, 0x08], L64, ins(L64, 3, ST, 4, b(0), r(1))),
        (&[0xf2, 0xf0, 0x01, 0x08], L64, ins(L64, 4, am(Alu::Add), 4, b(0), r(1))),
        // 15 bytes is the most
        (
            &[0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x89, 0x08],
            L64,
            ins(L64, 15, ST, 2, b(0), r(1)),
        ),
    ]);
}

#[test]
fn modes_32bit() {
    use Alu::*;
    check(&[
        (&[0x89, 0x08], P32, ins(P32, 2, ST, 4, b(0), r(1))),
        (&[0x66, 0x89, 0x08], P32, ins(P32, 3, ST, 2, b(0), r(1))),
        // disp32 alone is absolute outside 64-bit mode
        (&[0x8b, 0x05, 0x78, 0x56, 0x34, 0x12], P32, ins(P32, 6, ld(4, false), 4, abs(0x1234_5678), r(0))),
        // 67: 16-bit addressing, [bx]
        (&[0x67, 0x89, 0x07], P32, Insn { addr_size: 2, ..ins(P32, 3, ST, 4, b(3), r(0)) }),
        (&[0xa1, 0x78, 0x56, 0x34, 0x12], P32, ins(P32, 5, ld(4, false), 4, abs(0x1234_5678), r(0))),
        (&[0x67, 0xa1, 0x34, 0x12], P32, Insn { addr_size: 2, ..ins(P32, 4, ld(4, false), 4, abs(0x1234), r(0)) }),
        (&[0x26, 0x89, 0x08], P32, Insn { seg: Seg::Es, ..ins(P32, 3, ST, 4, b(0), r(1)) }),
        (&[0x2e, 0x8b, 0x08], P32, Insn { seg: Seg::Cs, ..ins(P32, 3, ld(4, false), 4, b(0), r(1)) }),
        (&[0x36, 0x89, 0x08], P32, Insn { seg: Seg::Ss, ..ins(P32, 3, ST, 4, b(0), r(1)) }),
        (&[0x3e, 0x89, 0x45, 0x00], P32, ins(P32, 4, ST, 4, b(5), r(0))),
        // the last segment prefix counts
        (&[0x26, 0x65, 0x89, 0x08], P32, Insn { seg: Seg::Gs, ..ins(P32, 4, ST, 4, b(0), r(1)) }),
        (&[0x8b, 0x44, 0x24, 0xfc], P32, Insn { seg: Seg::Ss, ..ins(P32, 4, ld(4, false), 4, bd(4, -4), r(0)) }),
        (
            &[0x8b, 0x84, 0xb5, 0x00, 0x01, 0, 0],
            P32,
            Insn { seg: Seg::Ss, ..ins(P32, 7, ld(4, false), 4, sib(Some(5), 6, 4, 0x100), r(0)) },
        ),
        (&[0xf3, 0xab], P32, Insn { seg: Seg::Es, rep: true, ..ins(P32, 2, Op::Stos, 4, NONE, r(0)) }),
        (&[0x0f, 0xb7, 0x03], P32, ins(P32, 3, ld(2, false), 4, b(3), r(0))),
        (&[0x80, 0x3d, 0x00, 0x00, 0xf0, 0xfe, 0x00], P32, ins(P32, 7, ami(Cmp), 1, abs(0xffff_ffff_fef0_0000), r(0))),
        // AH-BH without REX (there is none outside 64-bit mode)
        (&[0x88, 0x3b], P32, ins(P32, 2, ST, 1, b(3), hi(3))),
    ]);
}

#[test]
fn modes_16bit() {
    check(&[
        // Table 2-1: BX+SI BX+DI BP+SI BP+DI SI DI disp16 BX
        (&[0x89, 0x00], R16, ins(R16, 2, ST, 2, sib(Some(3), 6, 1, 0), r(0))),
        (&[0x89, 0x01], R16, ins(R16, 2, ST, 2, sib(Some(3), 7, 1, 0), r(0))),
        (&[0x89, 0x02], R16, Insn { seg: Seg::Ss, ..ins(R16, 2, ST, 2, sib(Some(5), 6, 1, 0), r(0)) }),
        (&[0x89, 0x03], R16, Insn { seg: Seg::Ss, ..ins(R16, 2, ST, 2, sib(Some(5), 7, 1, 0), r(0)) }),
        (&[0x89, 0x04], R16, ins(R16, 2, ST, 2, sib(None, 6, 1, 0), r(0))),
        (&[0x89, 0x05], R16, ins(R16, 2, ST, 2, sib(None, 7, 1, 0), r(0))),
        (&[0x89, 0x06, 0x34, 0x12], R16, ins(R16, 4, ST, 2, abs(0x1234), r(0))),
        (&[0x89, 0x07], R16, ins(R16, 2, ST, 2, b(3), r(0))),
        // [bp-2]: SS; [bx+0x8000]: disp16 sign-extended (the offset wraps at 64K)
        (&[0x89, 0x46, 0xfe], R16, Insn { seg: Seg::Ss, ..ins(R16, 3, ST, 2, bd(5, -2), r(0)) }),
        (&[0x89, 0x87, 0x00, 0x80], R16, ins(R16, 4, ST, 2, bd(3, -0x8000), r(0))),
        (&[0x88, 0x60, 0x01], R16, ins(R16, 3, ST, 1, sib(Some(3), 6, 1, 1), hi(0))),
        (&[0x66, 0x89, 0x00], R16, ins(R16, 3, ST, 4, sib(Some(3), 6, 1, 0), r(0))),
        // 67: 32-bit addressing, SIB
        (&[0x67, 0x89, 0x00], R16, Insn { addr_size: 4, ..ins(R16, 3, ST, 2, b(0), r(0)) }),
        (&[0x67, 0x89, 0x04, 0x58], R16, Insn { addr_size: 4, ..ins(R16, 4, ST, 2, sib(Some(0), 3, 2, 0), r(0)) }),
        (&[0xa0, 0x34, 0x12], R16, ins(R16, 3, ld(1, false), 1, abs(0x1234), r(0))),
        (&[0x3e, 0x8b, 0x46, 0x00], R16, ins(R16, 4, ld(2, false), 2, b(5), r(0))),
        (&[0xf3, 0xa4], R16, Insn { rep: true, ..ins(R16, 2, Op::Movs, 1, NONE, r(0)) }),
        (&[0xc7, 0x06, 0x00, 0x10, 0x34, 0x12], R16, Insn { imm: 0x1234, ..ins(R16, 6, STI, 2, abs(0x1000), r(0)) }),
    ]);
}

#[test]
fn refused() {
    use Undecodable::*;
    let fifteen = [0x66u8; 15];
    let mut sixteen = [0x66u8; 14].to_vec();
    sixteen.extend_from_slice(&[0x89, 0x08]);
    let table: &[(&[u8], Mode, Undecodable)] = &[
        // too few bytes
        (&[], L64, Truncated),
        (&[0x89], L64, Truncated),
        (&[0x0f], L64, Truncated),
        (&[0x8b, 0x05, 0x10, 0], L64, Truncated),
        (&[0xc7, 0x00, 0x78, 0x56], L64, Truncated),
        (&[0x8b, 0x04], L64, Truncated),
        (&[0xa1, 1, 2, 3, 4], L64, Truncated),
        (&fifteen[..14], L64, Truncated),
        (&fifteen, L64, TooLong),
        (&sixteen, L64, TooLong),
        // register operands
        (&[0x89, 0xc8], L64, RegisterOperand),
        (&[0x0f, 0xb6, 0xc1], L64, RegisterOperand),
        (&[0x80, 0xc0, 0x01], L64, RegisterOperand),
        // LOCK where #UD
        (&[0xf0, 0x89, 0x08], L64, Lock),
        (&[0xf0, 0x8b, 0x08], L64, Lock),
        (&[0xf0, 0x39, 0x08], L64, Lock),
        (&[0xf0, 0x80, 0x38, 0x01], L64, Lock),
        (&[0xf0, 0x03, 0x08], L64, Lock),
        (&[0xf0, 0x85, 0x08], L64, Lock),
        (&[0xf0, 0xaa], L64, Lock),
        (&[0xf0, 0xc7, 0x00, 1, 0, 0, 0], L64, Lock),
        // REPNE on MOVS/STOS is reserved
        (&[0xf2, 0xa4], L64, Repne),
        (&[0xf3, 0xf2, 0xab], P32, Repne),
        // not emulated: VEX, EVEX, INC, NOT, TEST /1 (an undocumented
        // alias), MOV /1, SSE, acc-imm forms, 82, POP, LES, ARPL and INC
        // outside 64-bit mode
        (&[0xc5, 0xf9, 0x6f, 0x00], L64, Opcode),
        (&[0xc4, 0xe1, 0x79, 0x6f, 0x00], L64, Opcode),
        (&[0x62, 0xf1, 0x7d, 0x48, 0x6f, 0x00], L64, Opcode),
        (&[0xff, 0x00], L64, Opcode),
        (&[0xf6, 0x10], L64, Opcode),
        (&[0xf7, 0x08, 0, 0, 0, 0], L64, Opcode),
        (&[0xc6, 0x08, 0x01], L64, Opcode),
        (&[0x0f, 0x10, 0x00], L64, Opcode),
        (&[0x04, 0x01], L64, Opcode),
        (&[0x82, 0x00, 0x01], P32, Opcode),
        (&[0x8f, 0x00], L64, Opcode),
        (&[0xc4, 0x00], P32, Opcode),
        (&[0x63, 0x08], P32, Opcode),
        (&[0x40, 0x89, 0x08], P32, Opcode),
        (&[0x48], L64, Truncated),
    ];
    for (bytes, mode, want) in table {
        assert_eq!(decode(bytes, *mode), Err(*want), "{bytes:02x?} in {mode:?}");
    }
}
