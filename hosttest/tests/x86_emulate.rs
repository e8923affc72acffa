//! The MMIO emulator (x86/emulate.rs) against a fake vCPU and device:
//! register merging and extension, addressing and segments, ALU flags
//! against a reference computed here with wide arithmetic, TEST/CMP,
//! XCHG, CMPXCHG, STOS/MOVS with DF, address sizes and REP counts.

use std::collections::HashMap;

use rvmx_pure::vmcs::field::Seg;
use rvmx_pure::x86::decode::{decode, Alu, Mode};
use rvmx_pure::x86::emulate::{Access, Cpu, Emulation, NotRam, Step, Unsupported};
use rvmx_pure::x86::rflags::{AF, CF, DF, OF, PF, SF, ZF};

const L64: Mode = Mode { long64: true, default32: false };
const P32: Mode = Mode { long64: false, default32: true };
const R16: Mode = Mode { long64: false, default32: false };

const RAX: usize = 0;
const RCX: usize = 1;
const RDX: usize = 2;
const RBX: usize = 3;
const RSP: usize = 4;
const RBP: usize = 5;
const RSI: usize = 6;
const RDI: usize = 7;

/// RFLAGS bit 1 and IF: must survive every flag update.
const KEEP: u64 = 1 << 1 | 1 << 9;
const ARITH: u64 = CF | PF | AF | ZF | SF | OF;

/// A vCPU: registers, segment bases (ES CS SS DS FS GS) and one RAM range
/// at linear addresses [ram_at, ram_at + ram.len()).
struct Fake {
    regs: [u64; 16],
    rip: u64,
    rflags: u64,
    bases: [u64; 6],
    ram_at: u64,
    ram: Vec<u8>,
}

impl Fake {
    fn new() -> Fake {
        Fake { regs: [0; 16], rip: 0x1000, rflags: KEEP, bases: [0; 6], ram_at: 0x10_0000, ram: vec![0; 0x1000] }
    }

    fn ram_range(&self, linear: u64, n: usize) -> Result<std::ops::Range<usize>, NotRam> {
        let off = linear.checked_sub(self.ram_at).ok_or(NotRam)? as usize;
        if off + n <= self.ram.len() {
            Ok(off..off + n)
        } else {
            Err(NotRam)
        }
    }
}

impl Cpu for Fake {
    fn gpr(&self, n: u8) -> u64 {
        self.regs[usize::from(n)]
    }
    fn set_gpr(&mut self, n: u8, v: u64) {
        self.regs[usize::from(n)] = v;
    }
    fn rip(&self) -> u64 {
        self.rip
    }
    fn rflags(&self) -> u64 {
        self.rflags
    }
    fn set_rflags(&mut self, v: u64) {
        self.rflags = v;
    }
    fn seg_base(&self, seg: Seg) -> u64 {
        self.bases[seg as usize]
    }
    fn read_mem(&mut self, linear: u64, buf: &mut [u8]) -> Result<(), NotRam> {
        let r = self.ram_range(linear, buf.len())?;
        buf.copy_from_slice(&self.ram[r]);
        Ok(())
    }
    fn write_mem(&mut self, linear: u64, buf: &[u8]) -> Result<(), NotRam> {
        let r = self.ram_range(linear, buf.len())?;
        self.ram[r].copy_from_slice(buf);
        Ok(())
    }
}

/// An MMIO device: bytes by linear address, 0 where never written.
#[derive(Default)]
struct Dev {
    mem: HashMap<u64, u8>,
}

impl Dev {
    fn with(linear: u64, size: u8, v: u64) -> Dev {
        let mut d = Dev::default();
        d.store(linear, size, v);
        d
    }
    fn store(&mut self, linear: u64, size: u8, v: u64) {
        for i in 0..u64::from(size) {
            self.mem.insert(linear.wrapping_add(i), (v >> (8 * i)) as u8);
        }
    }
    fn load(&self, linear: u64, size: u8) -> u64 {
        (0..u64::from(size)).map(|i| u64::from(*self.mem.get(&linear.wrapping_add(i)).unwrap_or(&0)) << (8 * i)).sum()
    }
}

/// Decodes and emulates `bytes` to the end against `dev`; returns every
/// access and the last step. Reads return junk above the access size and
/// writes complete with junk data: the emulator must ignore both.
fn run(bytes: &[u8], mode: Mode, cpu: &mut Fake, fault_write: bool, dev: &mut Dev) -> (Vec<Access>, Step) {
    let insn = decode(bytes, mode).unwrap_or_else(|e| panic!("{bytes:02x?}: {e:?}"));
    assert_eq!(usize::from(insn.len), bytes.len(), "{bytes:02x?}");
    let (mut e, mut step) = Emulation::start(insn, cpu, fault_write).expect("start");
    assert_eq!(usize::from(e.insn_len()), bytes.len());
    let mut log = Vec::new();
    while let Step::Access(a) = step {
        assert!(log.len() < 3, "too many accesses: {log:x?}");
        log.push(a);
        let data = if a.write {
            assert_eq!(a.data & !mask(a.size), 0, "write data wider than the access: {a:x?}");
            dev.store(a.linear, a.size, a.data);
            0xbad0_bad0_bad0_bad0
        } else {
            assert_eq!(a.data, 0);
            dev.load(a.linear, a.size) | (0xdead_beef_dead_beef & !mask(a.size))
        };
        step = e.complete(cpu, data);
    }
    // Once done, it stays done.
    assert_eq!(e.complete(cpu, 0), Step::Done);
    (log, step)
}

fn mask(size: u8) -> u64 {
    if size == 8 {
        u64::MAX
    } else {
        (1 << (8 * size)) - 1
    }
}

fn read(linear: u64, size: u8) -> Access {
    Access { linear, size, write: false, data: 0 }
}
fn write(linear: u64, size: u8, data: u64) -> Access {
    Access { linear, size, write: true, data }
}

const MMIO: u64 = 0xfee0_0000;

/// Loads into a register from [rbx] = MMIO: (bytes, register, value the
/// device holds, access size, the register after; all start as `all`).
#[test]
fn loads_merge_and_extend() {
    let all = 0x1111_2222_3333_4444u64;
    let table: &[(&[u8], usize, u64, u8, u64)] = &[
        // mov al / ah / spl (REX) / r9b from [rbx]: 8-bit writes merge
        (&[0x8a, 0x03], RAX, 0xab, 1, 0x1111_2222_3333_44ab),
        (&[0x8a, 0x23], RAX, 0xab, 1, 0x1111_2222_3333_ab44),
        (&[0x8a, 0x3b], RBX, 0xab, 1, MMIO | 0xab00),
        (&[0x40, 0x8a, 0x23], RSP, 0xab, 1, 0x1111_2222_3333_44ab),
        (&[0x44, 0x8a, 0x0b], 9, 0xab, 1, 0x1111_2222_3333_44ab),
        // 16-bit merges, 32-bit zero-extends, 64-bit replaces
        (&[0x66, 0x8b, 0x03], RAX, 0xbeef, 2, 0x1111_2222_3333_beef),
        (&[0x8b, 0x03], RAX, 0xdead_beef, 4, 0xdead_beef),
        (&[0x48, 0x8b, 0x03], RAX, 0x0123_4567_89ab_cdef, 8, 0x0123_4567_89ab_cdef),
        // MOVZX
        (&[0x0f, 0xb6, 0x03], RAX, 0x80, 1, 0x80),
        (&[0x66, 0x0f, 0xb6, 0x03], RAX, 0x80, 1, 0x1111_2222_3333_0080),
        (&[0x48, 0x0f, 0xb7, 0x03], RAX, 0x8000, 2, 0x8000),
        (&[0x0f, 0xb7, 0x0b], RCX, 0xffff, 2, 0xffff),
        // MOVSX: to 32 bits then zero-extended to 64; to 64; to 16 (merge)
        (&[0x0f, 0xbe, 0x03], RAX, 0x80, 1, 0xffff_ff80),
        (&[0x0f, 0xbe, 0x03], RAX, 0x7f, 1, 0x7f),
        (&[0x48, 0x0f, 0xbf, 0x03], RAX, 0x8000, 2, 0xffff_ffff_ffff_8000),
        (&[0x66, 0x0f, 0xbe, 0x03], RAX, 0xfe, 1, 0x1111_2222_3333_fffe),
        (&[0x4c, 0x0f, 0xbe, 0x03], 8, 0x81, 1, 0xffff_ffff_ffff_ff81),
        // MOVSXD: 64 from 32; without REX.W a 32-bit load; with 66 a 16-bit one
        (&[0x48, 0x63, 0x03], RAX, 0x8000_0000, 4, 0xffff_ffff_8000_0000),
        (&[0x48, 0x63, 0x03], RAX, 0x7fff_ffff, 4, 0x7fff_ffff),
        (&[0x63, 0x03], RAX, 0x8000_0000, 4, 0x8000_0000),
        (&[0x66, 0x63, 0x03], RAX, 0x8001, 2, 0x1111_2222_3333_8001),
    ];
    for &(bytes, reg, value, size, after) in table {
        let mut cpu = Fake::new();
        cpu.regs = [all; 16];
        cpu.regs[RBX] = MMIO;
        let mut dev = Dev::with(MMIO, size, value);
        let (log, step) = run(bytes, L64, &mut cpu, false, &mut dev);
        assert_eq!(log, [read(MMIO, size)], "{bytes:02x?}");
        assert_eq!(step, Step::Done);
        let mut want = [all; 16];
        want[RBX] = MMIO;
        want[reg] = after;
        assert_eq!(cpu.regs, want, "{bytes:02x?}");
        assert_eq!(cpu.rflags, KEEP, "a load changes no flag");
    }
}

/// Stores to [rbx] = MMIO: (bytes, access size, data written).
#[test]
fn stores() {
    let table: &[(&[u8], u8, u64)] = &[
        (&[0x88, 0x03], 1, 0x88),
        (&[0x88, 0x23], 1, 0x77),
        (&[0x40, 0x88, 0x23], 1, 0x11),
        (&[0x88, 0x3b], 1, 0xaa),
        (&[0x44, 0x88, 0x03], 1, 0x08),
        (&[0x66, 0x89, 0x0b], 2, 0x1122),
        (&[0x89, 0x0b], 4, 0x3344_1122),
        (&[0x48, 0x89, 0x0b], 8, 0xcccc_dddd_3344_1122),
        (&[0x4c, 0x89, 0x3b], 8, 0xf0f0_f0f0_f0f0_f00f),
        (&[0xc6, 0x03, 0xfe], 1, 0xfe),
        (&[0x66, 0xc7, 0x03, 0x34, 0x12], 2, 0x1234),
        (&[0xc7, 0x03, 0x00, 0x00, 0x00, 0x80], 4, 0x8000_0000),
        (&[0x48, 0xc7, 0x03, 0x00, 0x00, 0x00, 0x80], 8, 0xffff_ffff_8000_0000),
        (&[0x48, 0xc7, 0x03, 0xff, 0xff, 0xff, 0x7f], 8, 0x7fff_ffff),
    ];
    for &(bytes, size, data) in table {
        let mut cpu = Fake::new();
        cpu.regs[RAX] = 0x5555_6666_9999_7788;
        cpu.regs[RCX] = 0xcccc_dddd_3344_1122;
        cpu.regs[RSP] = 0x1234_5678_9abc_de11;
        cpu.regs[RBX] = MMIO | 0xaa00;
        cpu.regs[8] = 0x0807_0605_0403_0208;
        cpu.regs[15] = 0xf0f0_f0f0_f0f0_f00f;
        let before = cpu.regs;
        let (log, step) = run(bytes, L64, &mut cpu, true, &mut Dev::default());
        assert_eq!(log, [write(MMIO | 0xaa00, size, data)], "{bytes:02x?}");
        assert_eq!(step, Step::Done);
        assert_eq!(cpu.regs, before, "a store changes no register");
    }
}

#[test]
fn moffs() {
    let mut cpu = Fake::new();
    cpu.regs[RAX] = 0xffff_ffff_ffff_ffff;
    cpu.bases[Seg::Fs as usize] = 0x1000;
    // mov eax, fs:[0xfee00010]; mov [0x100000020], ax (64-bit offset)
    let mut dev = Dev::with(0xfee0_1010, 4, 0x1234_5678);
    let (log, _) = run(&[0x64, 0xa1, 0x10, 0x00, 0xe0, 0xfe, 0, 0, 0, 0], L64, &mut cpu, false, &mut dev);
    assert_eq!(log, [read(0xfee0_1010, 4)]);
    assert_eq!(cpu.regs[RAX], 0x1234_5678);
    let (log, _) = run(&[0x66, 0xa3, 0x20, 0, 0, 0, 1, 0, 0, 0], L64, &mut cpu, true, &mut dev);
    assert_eq!(log, [write(0x1_0000_0020, 2, 0x5678)]);
    // 32-bit mode: DS base + offset; 67: a 16-bit offset
    let mut cpu = Fake::new();
    cpu.bases[Seg::Ds as usize] = 0xf000_0000;
    cpu.regs[RAX] = 0xab;
    let (log, _) = run(&[0xa2, 0x00, 0x00, 0xe0, 0x0e], P32, &mut cpu, true, &mut dev);
    assert_eq!(log, [write(0xfee0_0000, 1, 0xab)]);
    let (log, _) = run(&[0x67, 0xa0, 0x34, 0x12], P32, &mut cpu, false, &mut dev);
    assert_eq!(log, [read(0xf000_1234, 1)]);
}

/// The linear address of `mov eax, <operand>` for each addressing form.
#[test]
fn addressing() {
    // (The load's own register write is undone.)
    let load = |bytes: &[u8], mode: Mode, cpu: &mut Fake| -> u64 {
        let regs = cpu.regs;
        let (log, _) = run(bytes, mode, cpu, false, &mut Dev::default());
        cpu.regs = regs;
        log[0].linear
    };
    let mut c = Fake::new();
    c.regs[RBX] = 0x10_0000;
    c.regs[RCX] = 0x10;
    c.regs[RBP] = 0x20_0000;
    c.regs[RSP] = 0x30_0000;
    c.regs[12] = 0x40;
    c.regs[13] = 0x50_0000;
    c.regs[RAX] = 0x1_0000_0010;
    // Bases of ES CS SS DS: ignored in 64-bit mode; FS and GS count.
    c.bases = [0x1000, 0x2000, 0x3000, 0x4000, 0x7000_0000, 0xffff_8000_0000_0000];
    c.rip = 0xffff_ffff_ffff_ff00;
    // [rbx+rcx*4+0x100]
    assert_eq!(load(&[0x8b, 0x84, 0x8b, 0x00, 0x01, 0, 0], L64, &mut c), 0x10_0140);
    // [rbp-8] (SS, base ignored), [rsp+r12*2]
    assert_eq!(load(&[0x8b, 0x45, 0xf8], L64, &mut c), 0x1f_fff8);
    assert_eq!(load(&[0x42, 0x8b, 0x04, 0x64], L64, &mut c), 0x30_0080);
    // [r13+0], [rcx*8+disp32]
    assert_eq!(load(&[0x41, 0x8b, 0x45, 0x00], L64, &mut c), 0x50_0000);
    assert_eq!(load(&[0x8b, 0x04, 0xcd, 0x00, 0x00, 0xe0, 0xfe], L64, &mut c), 0xffff_ffff_fee0_0080);
    // RIP-relative: from the next instruction (RIP + 6), wrapping at 2^64
    assert_eq!(load(&[0x8b, 0x05, 0x00, 0x01, 0, 0], L64, &mut c), 6);
    assert_eq!(load(&[0x8b, 0x05, 0xf0, 0xff, 0xff, 0xff], L64, &mut c), 0xffff_ffff_ffff_fef6);
    // ... also with an immediate after the displacement (RIP + 10)
    let (log, _) = run(&[0xc7, 0x05, 0x00, 0x02, 0, 0, 1, 0, 0, 0], L64, &mut c, true, &mut Dev::default());
    assert_eq!(log, [write(0x10a, 4, 1)]);
    // 67: [eax] and EIP-relative cut to 32 bits
    assert_eq!(load(&[0x67, 0x8b, 0x00], L64, &mut c), 0x10);
    assert_eq!(load(&[0x67, 0x8b, 0x05, 0x00, 0x01, 0, 0], L64, &mut c), 0x7);
    // ES/DS overrides ignored, FS/GS added
    assert_eq!(load(&[0x26, 0x8b, 0x03], L64, &mut c), 0x10_0000);
    assert_eq!(load(&[0x64, 0x8b, 0x03], L64, &mut c), 0x7010_0000);
    assert_eq!(load(&[0x65, 0x8b, 0x04, 0x25, 0x10, 0, 0, 0], L64, &mut c), 0xffff_8000_0000_0010);

    // 32-bit: DS, SS (ESP/EBP), overrides, 4 GiB wrap; register bits 63:32 ignored
    c.regs[RBX] = 0xffff_ffff_0000_2000;
    assert_eq!(load(&[0x8b, 0x03], P32, &mut c), 0x6000);
    assert_eq!(load(&[0x8b, 0x45, 0x10], P32, &mut c), 0x20_3010);
    assert_eq!(load(&[0x8b, 0x04, 0x24], P32, &mut c), 0x30_3000);
    assert_eq!(load(&[0x26, 0x8b, 0x03], P32, &mut c), 0x3000);
    assert_eq!(load(&[0x2e, 0x8b, 0x03], P32, &mut c), 0x4000);
    assert_eq!(load(&[0x3e, 0x8b, 0x45, 0x10], P32, &mut c), 0x20_4010);
    assert_eq!(load(&[0x8b, 0x83, 0x00, 0xe0, 0xff, 0xff], P32, &mut c), 0x4000);
    c.bases[Seg::Ds as usize] = 0xffff_f000;
    assert_eq!(load(&[0x8b, 0x03], P32, &mut c), 0x1000);
    assert_eq!(load(&[0x8b, 0x05, 0x00, 0x00, 0xe0, 0xfe], P32, &mut c), 0xfedf_f000);
    // [ebx+ecx*8+0x10]
    assert_eq!(load(&[0x8b, 0x44, 0xcb, 0x10], P32, &mut c), 0x1090);

    // 16-bit: selector << 4 bases, 64 KiB offset wrap, SS for BP
    let mut c = Fake::new();
    c.bases = [0x1_0000, 0xf_0000, 0x2_0000, 0x3_0000, 0x4_0000, 0x5_0000];
    c.regs[RBX] = 0xdead_0000_0000_fff0;
    c.regs[RSI] = 0x20;
    c.regs[RDI] = 0x2;
    c.regs[RBP] = 0x0;
    assert_eq!(load(&[0x8b, 0x00], R16, &mut c), 0x3_0010); // [bx+si]
    assert_eq!(load(&[0x8b, 0x01], R16, &mut c), 0x3_fff2); // [bx+di]
    assert_eq!(load(&[0x8b, 0x02], R16, &mut c), 0x2_0020); // [bp+si]
    assert_eq!(load(&[0x8b, 0x43, 0xff], R16, &mut c), 0x2_0001); // [bp+di-1]
    assert_eq!(load(&[0x8b, 0x04], R16, &mut c), 0x3_0020); // [si]
    assert_eq!(load(&[0x8b, 0x45, 0xfe], R16, &mut c), 0x3_0000); // [di-2]
    assert_eq!(load(&[0x8b, 0x06, 0xcd, 0xab], R16, &mut c), 0x3_abcd); // [disp16]
    assert_eq!(load(&[0x8b, 0x46, 0xfe], R16, &mut c), 0x2_fffe); // [bp-2]
    assert_eq!(load(&[0x8b, 0x87, 0x20, 0x00], R16, &mut c), 0x3_0010); // [bx+0x20]
    assert_eq!(load(&[0x26, 0x8b, 0x07], R16, &mut c), 0x1_fff0); // es:[bx]
    assert_eq!(load(&[0x3e, 0x8b, 0x46, 0x00], R16, &mut c), 0x3_0000); // ds:[bp]
    // 67: 32-bit offsets in 16-bit code
    assert_eq!(load(&[0x67, 0x8b, 0x03], R16, &mut c), 0x3_fff0);
}

/// Reference ALU: unsigned and signed results in i128, CF and OF from
/// range checks, AF from the low nibbles (SDM Vol. 1 3.4.3.1).
fn reference(op: Alu, a: u64, b: u64, cf: bool, size: u8) -> (u64, u64) {
    let bits = 8 * u32::from(size);
    let m = mask(size);
    let (a, b) = (a & m, b & m);
    let sx = |v: u64| -> i128 { i128::from(((v << (64 - bits)) as i64) >> (64 - bits)) };
    let c = i128::from(cf);
    let (wide, signed, af) = match op {
        Alu::Add => (i128::from(a) + i128::from(b), sx(a) + sx(b), (a & 15) + (b & 15) > 15),
        Alu::Adc => (i128::from(a) + i128::from(b) + c, sx(a) + sx(b) + c, (a & 15) + (b & 15) + cf as u64 > 15),
        Alu::Sub | Alu::Cmp => (i128::from(a) - i128::from(b), sx(a) - sx(b), (a & 15) < (b & 15)),
        Alu::Sbb => (i128::from(a) - i128::from(b) - c, sx(a) - sx(b) - c, (a & 15) < (b & 15) + cf as u64),
        Alu::And => (i128::from(a & b), 0, false),
        Alu::Or => (i128::from(a | b), 0, false),
        Alu::Xor => (i128::from(a ^ b), 0, false),
    };
    let res = (wide as u64) & m;
    let min = -(1i128 << (bits - 1));
    let max = (1i128 << (bits - 1)) - 1;
    let arith = !matches!(op, Alu::And | Alu::Or | Alu::Xor);
    let mut f = 0;
    if arith && (wide < 0 || wide > i128::from(m)) {
        f |= CF;
    }
    if arith && (signed < min || signed > max) {
        f |= OF;
    }
    if arith && af {
        f |= AF;
    }
    if res == 0 {
        f |= ZF;
    }
    if res >> (bits - 1) & 1 == 1 {
        f |= SF;
    }
    if (res & 0xff).count_ones() & 1 == 0 {
        f |= PF;
    }
    (res, f)
}

const ALUS: [Alu; 8] = [Alu::Add, Alu::Or, Alu::Adc, Alu::Sbb, Alu::And, Alu::Sub, Alu::Xor, Alu::Cmp];

/// Operands worth trying at every size: edges around 0, the sign bit, the
/// nibble carry and all ones, plus a few arbitrary.
fn operands(size: u8) -> Vec<u64> {
    let m = mask(size);
    let sign = 1u64 << (8 * u32::from(size) - 1);
    let mut v = vec![0, 1, 2, 0xf, 0x10, 0x7f, 0x80, 0xff, sign - 1, sign, sign + 1, m - 1, m, 0x1234_5678_9abc_def1 & m];
    v.extend([0x8000_0000, 0xffff_ffff, 0x7fff, 0x8000, 0x0f0f_f0f0_5a5a_a5a5, 0xdead_beef_0000_0001].map(|x| x & m));
    v
}

/// `op [rbx], rcx` (memory destination) and `op rcx, [rbx]` (register
/// destination) at every size, with CF in 0 and 1, checked against the
/// reference: result, write or no write, RFLAGS.
#[test]
fn alu_flags_and_results() {
    let mut cases = 0;
    for (i, &op) in ALUS.iter().enumerate() {
        for (size, prefix) in [(1u8, None), (2, Some(0x66u8)), (4, None), (8, Some(0x48))] {
            let code = (i as u8) << 3 | u8::from(size != 1);
            for &a in &operands(size) {
                for &b in &operands(size) {
                    for cf_in in [false, true] {
                        let (res, flags) = reference(op, a, b, cf_in, size);
                        let other = 0x5a5a_5a5a_5a5a_5a5au64 & !mask(size);
                        // Before: the other arithmetic flags inverted, so each must be written.
                        let before = KEEP | DF | (!flags & ARITH & !CF) | if cf_in { CF } else { 0 };

                        // op [rbx], rcx: mem = a, reg = b
                        let mut cpu = Fake::new();
                        cpu.regs[RBX] = MMIO;
                        cpu.regs[RCX] = other | b;
                        cpu.rflags = before;
                        let mut dev = Dev::with(MMIO, size, a);
                        let bytes: Vec<u8> = prefix.into_iter().chain([code, 0x0b]).collect();
                        let (log, step) = run(&bytes, L64, &mut cpu, false, &mut dev);
                        let what = format!("{op:?} size {size} a {a:#x} b {b:#x} cf {cf_in}");
                        assert_eq!(step, Step::Done);
                        if op == Alu::Cmp {
                            assert_eq!(log, [read(MMIO, size)], "{what}");
                        } else {
                            assert_eq!(log, [read(MMIO, size), write(MMIO, size, res)], "{what}");
                        }
                        assert_eq!(cpu.rflags, KEEP | DF | flags, "{what}: {:#x}", cpu.rflags);
                        assert_eq!(cpu.regs[RCX], other | b, "{what}");

                        // op rcx, [rbx]: reg = a, mem = b
                        let mut cpu = Fake::new();
                        cpu.regs[RBX] = MMIO;
                        cpu.regs[RCX] = other | a;
                        cpu.rflags = before;
                        let mut dev = Dev::with(MMIO, size, b);
                        let bytes: Vec<u8> = prefix.into_iter().chain([code | 2, 0x0b]).collect();
                        let (log, _) = run(&bytes, L64, &mut cpu, false, &mut dev);
                        assert_eq!(log, [read(MMIO, size)], "{what}");
                        assert_eq!(cpu.rflags, KEEP | DF | flags, "{what}: {:#x}", cpu.rflags);
                        let want = match (op, size) {
                            (Alu::Cmp, _) => other | a,
                            (_, 4) => res,
                            _ => other | res,
                        };
                        assert_eq!(cpu.regs[RCX], want, "{what}");
                        cases += 1;
                    }
                }
            }
        }
    }
    assert!(cases > 10_000);
}

/// The immediate forms 80/81/83 (imm8 sign-extended in 83) and the 8-bit
/// high-register form.
#[test]
fn alu_immediates_and_high_bytes() {
    let table: &[(&[u8], u64, u8, Alu, u64)] = &[
        // (bytes, memory before, size, op, the other operand as used)
        (&[0x83, 0x03, 0xff], 5, 4, Alu::Add, 0xffff_ffff),
        (&[0x48, 0x83, 0x2b, 0x80], 5, 8, Alu::Sub, 0xffff_ffff_ffff_ff80),
        (&[0x66, 0x83, 0x33, 0x01], 0x8001, 2, Alu::Xor, 1),
        (&[0x80, 0x0b, 0x80], 0x01, 1, Alu::Or, 0x80),
        (&[0x81, 0x23, 0xf0, 0xff, 0x00, 0x00], 0x1234_5678, 4, Alu::And, 0xfff0),
        (&[0x48, 0x81, 0x3b, 0x00, 0x00, 0x00, 0x80], 0xffff_ffff_8000_0000, 8, Alu::Cmp, 0xffff_ffff_8000_0000),
        (&[0x66, 0x81, 0x1b, 0x00, 0x80], 0x7fff, 2, Alu::Sbb, 0x8000),
        (&[0x80, 0x13, 0xff], 0x01, 1, Alu::Adc, 0xff),
        // add [rbx], ah / sub [rbx], bh
        (&[0x00, 0x23], 0x10, 1, Alu::Add, 0x77),
        (&[0x28, 0x3b], 0x10, 1, Alu::Sub, 0xaa),
    ];
    for &(bytes, mem, size, op, other) in table {
        let mut cpu = Fake::new();
        cpu.regs[RAX] = 0x7788;
        cpu.regs[RBX] = MMIO | 0xaa00;
        cpu.rflags = KEEP | CF;
        let mut dev = Dev::with(MMIO | 0xaa00, size, mem);
        let (log, _) = run(bytes, L64, &mut cpu, false, &mut dev);
        let (res, flags) = reference(op, mem, other, true, size);
        assert_eq!(cpu.rflags, KEEP | flags, "{bytes:02x?}");
        if op == Alu::Cmp {
            assert_eq!(log.len(), 1);
        } else {
            assert_eq!(log[1], write(MMIO | 0xaa00, size, res), "{bytes:02x?}");
        }
    }
    // cmp ah, [rbx] sets flags only; add bh, [rbx] merges into bits 15:8
    let mut cpu = Fake::new();
    cpu.regs[RAX] = 0x1111_0500;
    cpu.regs[RBX] = MMIO;
    let (_, _) = run(&[0x3a, 0x23], L64, &mut cpu, false, &mut Dev::with(MMIO, 1, 6));
    assert_eq!(cpu.regs[RAX], 0x1111_0500);
    assert_eq!(cpu.rflags, KEEP | reference(Alu::Cmp, 5, 6, false, 1).1);
    let (_, _) = run(&[0x02, 0x3b], L64, &mut cpu, false, &mut Dev::with(MMIO, 1, 0x11));
    assert_eq!(cpu.regs[RBX], MMIO | 0x1100);
}

#[test]
fn test_only_reads() {
    let mut cpu = Fake::new();
    cpu.regs[RBX] = MMIO;
    cpu.regs[RCX] = 0xf0;
    cpu.rflags = KEEP | ARITH;
    // test [rbx], cl with 0x0f: zero, parity even
    let (log, _) = run(&[0x84, 0x0b], L64, &mut cpu, false, &mut Dev::with(MMIO, 1, 0x0f));
    assert_eq!(log, [read(MMIO, 1)]);
    assert_eq!(cpu.rflags, KEEP | ZF | PF);
    // test dword [rbx], 0x80000000: sign
    let (log, _) = run(&[0xf7, 0x03, 0, 0, 0, 0x80], L64, &mut cpu, false, &mut Dev::with(MMIO, 4, 0x8000_0001));
    assert_eq!(log, [read(MMIO, 4)]);
    assert_eq!(cpu.rflags, KEEP | SF | PF);
    // test qword [rbx], imm32 sign-extended: bit 63 tested
    let (_, _) = run(&[0x48, 0xf7, 0x03, 0, 0, 0, 0x80], L64, &mut cpu, false, &mut Dev::with(MMIO, 8, 1 << 63));
    assert_eq!(cpu.rflags, KEEP | SF | PF);
    // test byte [rbx], 0x03 with 0x01: one bit set, parity odd
    let (_, _) = run(&[0xf6, 0x03, 0x03], L64, &mut cpu, false, &mut Dev::with(MMIO, 1, 0x01));
    assert_eq!(cpu.rflags, KEEP);
}

#[test]
fn xchg() {
    let mut cpu = Fake::new();
    cpu.regs[RBX] = MMIO;
    cpu.regs[RCX] = 0xffff_ffff_1122_3344;
    cpu.rflags = KEEP | ZF;
    let mut dev = Dev::with(MMIO, 8, 0x5566_7788_99aa_bbcc);
    let (log, step) = run(&[0x87, 0x0b], L64, &mut cpu, false, &mut dev);
    assert_eq!(log, [read(MMIO, 4), write(MMIO, 4, 0x1122_3344)]);
    assert_eq!(step, Step::Done);
    assert_eq!(cpu.regs[RCX], 0x99aa_bbcc, "32-bit: zero-extended");
    assert_eq!(cpu.rflags, KEEP | ZF, "no flags");
    // xchg [rbx], ch: bits 15:8
    let (log, _) = run(&[0x86, 0x2b], L64, &mut cpu, true, &mut dev);
    assert_eq!(log, [read(MMIO, 1), write(MMIO, 1, 0xbb)]);
    assert_eq!(cpu.regs[RCX], 0x99aa_44cc);
    assert_eq!(dev.load(MMIO, 4), 0x1122_33bb);
    // lock xchg [rbx], rcx
    let (log, _) = run(&[0xf0, 0x48, 0x87, 0x0b], L64, &mut cpu, true, &mut dev);
    assert_eq!(log, [read(MMIO, 8), write(MMIO, 8, 0x99aa_44cc)]);
    assert_eq!(cpu.regs[RCX], 0x5566_7788_1122_33bb);
}

#[test]
fn cmpxchg_equal_and_not() {
    // lock cmpxchg [rbx], ecx with EAX equal: ZF, ECX written, RAX untouched
    let mut cpu = Fake::new();
    cpu.regs[RAX] = 0xffff_ffff_0000_0005;
    cpu.regs[RBX] = MMIO;
    cpu.regs[RCX] = 0x77;
    cpu.rflags = KEEP | CF | SF | OF;
    let mut dev = Dev::with(MMIO, 4, 5);
    let (log, step) = run(&[0xf0, 0x0f, 0xb1, 0x0b], L64, &mut cpu, true, &mut dev);
    assert_eq!(log, [read(MMIO, 4), write(MMIO, 4, 0x77)]);
    assert_eq!(step, Step::Done);
    assert_eq!(cpu.regs[RAX], 0xffff_ffff_0000_0005);
    assert_eq!(cpu.rflags, KEEP | ZF | PF);
    // not equal (EAX 5 < 6): the old value is written back, EAX loaded
    // (zero-extended), flags of CMP EAX, [mem]: CF SF AF PF
    let mut dev = Dev::with(MMIO, 4, 6);
    let (log, _) = run(&[0x0f, 0xb1, 0x0b], L64, &mut cpu, false, &mut dev);
    assert_eq!(log, [read(MMIO, 4), write(MMIO, 4, 6)]);
    assert_eq!(cpu.regs[RAX], 6);
    assert_eq!(cpu.rflags, KEEP | reference(Alu::Cmp, 5, 6, false, 4).1);
    assert_eq!(cpu.rflags & ZF, 0);
    // 8-bit: AL compared, AL merged on failure; source AH
    cpu.regs[RAX] = 0x1234_5601;
    let mut dev = Dev::with(MMIO, 1, 0x80);
    let (log, _) = run(&[0x0f, 0xb0, 0x23], L64, &mut cpu, false, &mut dev);
    assert_eq!(log, [read(MMIO, 1), write(MMIO, 1, 0x80)]);
    assert_eq!(cpu.regs[RAX], 0x1234_5680);
    assert_eq!(cpu.rflags, KEEP | reference(Alu::Cmp, 1, 0x80, false, 1).1);
    let (log, _) = run(&[0x0f, 0xb0, 0x23], L64, &mut cpu, false, &mut dev);
    assert_eq!(log, [read(MMIO, 1), write(MMIO, 1, 0x56)]);
    assert_eq!(cpu.regs[RAX], 0x1234_5680);
    assert_eq!(cpu.rflags & ZF, ZF);
    // 64-bit, not equal
    cpu.regs[RAX] = 1 << 63;
    let mut dev = Dev::with(MMIO, 8, 1);
    let (_, _) = run(&[0x48, 0x0f, 0xb1, 0x0b], L64, &mut cpu, true, &mut dev);
    assert_eq!(cpu.regs[RAX], 1);
    assert_eq!(cpu.rflags, KEEP | reference(Alu::Cmp, 1 << 63, 1, false, 8).1);
    assert_eq!(cpu.rflags & OF, OF);
}

/// STOS: (mode, bytes, address size in bytes, element size).
#[test]
fn stos_direction_and_address_sizes() {
    let cases: &[(Mode, &[u8], u8, u8)] = &[
        (L64, &[0xaa], 8, 1),
        (L64, &[0x48, 0xab], 8, 8),
        (L64, &[0x67, 0x66, 0xab], 4, 2),
        (P32, &[0xab], 4, 4),
        (P32, &[0x67, 0xaa], 2, 1),
        (R16, &[0xab], 2, 2),
        (R16, &[0x66, 0x67, 0xab], 4, 4),
    ];
    for &(mode, bytes, a, size) in cases {
        for df in [false, true] {
            let mut cpu = Fake::new();
            cpu.regs[RAX] = 0x8877_6655_4433_2211;
            cpu.regs[RCX] = 0x5555;
            // rDI at the top (DF 0) or bottom (DF 1) of the address size:
            // it wraps within it, and bits above are kept only for 16 bits.
            let di = if df { 0 } else { mask(a) - 1 };
            cpu.regs[RDI] = 0xabcd_ef01_0000_0000 & !mask(a) | di;
            cpu.bases[Seg::Es as usize] = 0x2_0000;
            cpu.bases[Seg::Ds as usize] = 0x9_0000;
            if df {
                cpu.rflags |= DF;
            }
            let (log, step) = run(bytes, mode, &mut cpu, true, &mut Dev::default());
            let base = if mode.long64 { 0 } else { 0x2_0000 };
            let linear = (base + di) & if mode.long64 { u64::MAX } else { 0xffff_ffff };
            let what = format!("{bytes:02x?} df {df}");
            assert_eq!(log, [write(linear, size, 0x8877_6655_4433_2211 & mask(size))], "{what}");
            assert_eq!(step, Step::Done);
            let new = if df { di.wrapping_sub(u64::from(size)) } else { di.wrapping_add(u64::from(size)) } & mask(a);
            let high = match a {
                2 => 0xabcd_ef01_0000_0000,
                _ => 0,
            };
            assert_eq!(cpu.regs[RDI], high | new, "{what}: {:#x}", cpu.regs[RDI]);
            assert_eq!(cpu.regs[RCX], 0x5555, "no REP: rCX unchanged");
            assert_eq!(cpu.regs[RSI], 0);
        }
    }
}

/// REP STOS counts down one element per exit; the guest re-executes.
#[test]
fn rep_stos_counts() {
    for (mode, bytes, a) in [(L64, &[0xf3, 0xab][..], 8u8), (L64, &[0x67, 0xf3, 0xab], 4), (P32, &[0xf3, 0xab], 4), (R16, &[0xf3, 0x66, 0xab], 2)] {
        let mut cpu = Fake::new();
        let high = 0x7777_0000_0000_0000u64 & !mask(a);
        cpu.regs[RCX] = high | 3;
        cpu.regs[RDI] = 0x100;
        cpu.regs[RAX] = 0xdead_beef;
        let mut dev = Dev::default();
        let mut steps = vec![];
        for _ in 0..3 {
            let (log, step) = run(bytes, mode, &mut cpu, true, &mut dev);
            assert_eq!(log.len(), 1);
            steps.push(step);
        }
        assert_eq!(steps, [Step::Repeat, Step::Repeat, Step::Done], "{bytes:02x?}");
        let kept = if a == 2 { high } else { 0 };
        assert_eq!(cpu.regs[RCX], kept, "{bytes:02x?}");
        assert_eq!(cpu.regs[RDI], 0x10c);
        assert_eq!(dev.load(0x100, 4) ^ dev.load(0x104, 4) ^ dev.load(0x108, 4), 0xdead_beef);
    }
    // rCX 0 at the address size: done, no access, nothing changed
    for (mode, bytes, rcx) in [(L64, &[0xf3, 0xaa][..], 0u64), (L64, &[0x67, 0xf3, 0xaa], 0x1_0000_0000), (R16, &[0xf3, 0xaa], 0xffff_0000)] {
        let mut cpu = Fake::new();
        cpu.regs[RCX] = rcx;
        cpu.regs[RDI] = 0x100;
        let insn = decode(bytes, mode).unwrap();
        let (mut e, step) = Emulation::start(insn, &mut cpu, true).unwrap();
        assert_eq!(step, Step::Done, "{bytes:02x?}");
        assert_eq!(e.complete(&mut cpu, 0), Step::Done);
        assert_eq!((cpu.regs[RCX], cpu.regs[RDI]), (rcx, 0x100));
    }
    // a count of 1 ends it: rCX becomes 0
    let mut cpu = Fake::new();
    cpu.regs[RCX] = 1;
    assert_eq!(run(&[0xf3, 0x48, 0xab], L64, &mut cpu, true, &mut Dev::default()).1, Step::Done);
    assert_eq!(cpu.regs[RCX], 0);
}

/// MOVS: RAM to MMIO (a write fault), MMIO to RAM (a read fault), MMIO to
/// MMIO; DF; the source segment override; REP.
#[test]
fn movs() {
    let ram = 0x10_0000u64;
    // RAM -> MMIO, movsd, DF 0: no read access, RAM data written
    let mut cpu = Fake::new();
    cpu.ram[0x10..0x14].copy_from_slice(&[1, 2, 3, 4]);
    cpu.regs[RSI] = ram + 0x10;
    cpu.regs[RDI] = MMIO;
    let mut dev = Dev::default();
    let (log, step) = run(&[0xa5], L64, &mut cpu, true, &mut dev);
    assert_eq!(log, [write(MMIO, 4, 0x0403_0201)]);
    assert_eq!(step, Step::Done);
    assert_eq!((cpu.regs[RSI], cpu.regs[RDI]), (ram + 0x14, MMIO + 4));

    // MMIO -> RAM, rep movsw, DF 1: one read, RAM written by write_mem
    let mut cpu = Fake::new();
    cpu.rflags |= DF;
    cpu.regs[RSI] = MMIO + 0x20;
    cpu.regs[RDI] = ram + 0x40;
    cpu.regs[RCX] = 2;
    let mut dev = Dev::with(MMIO + 0x1e, 4, 0xaaaa_bbbb);
    let (log, step) = run(&[0xf3, 0x66, 0xa5], L64, &mut cpu, false, &mut dev);
    assert_eq!(log, [read(MMIO + 0x20, 2)]);
    assert_eq!(step, Step::Repeat);
    assert_eq!(cpu.ram[0x40..0x42], [0xaa, 0xaa]);
    let (log, step) = run(&[0xf3, 0x66, 0xa5], L64, &mut cpu, false, &mut dev);
    assert_eq!(log, [read(MMIO + 0x1e, 2)]);
    assert_eq!(step, Step::Done);
    assert_eq!(cpu.ram[0x3e..0x40], [0xbb, 0xbb]);
    assert_eq!((cpu.regs[RSI], cpu.regs[RDI], cpu.regs[RCX]), (MMIO + 0x1c, ram + 0x3c, 0));

    // MMIO -> MMIO: a read then a write, whichever side faulted
    for fault_write in [false, true] {
        let mut cpu = Fake::new();
        cpu.regs[RSI] = MMIO;
        cpu.regs[RDI] = MMIO + 0x100;
        let mut dev = Dev::with(MMIO, 8, 0x0102_0304_0506_0708);
        let (log, _) = run(&[0x48, 0xa5], L64, &mut cpu, fault_write, &mut dev);
        assert_eq!(log, [read(MMIO, 8), write(MMIO + 0x100, 8, 0x0102_0304_0506_0708)]);
        assert_eq!((cpu.regs[RSI], cpu.regs[RDI]), (MMIO + 8, MMIO + 0x108));
    }

    // a read fault never reads the source as RAM, even if it looks like RAM
    let mut cpu = Fake::new();
    cpu.regs[RSI] = ram;
    cpu.regs[RDI] = ram + 0x10;
    let (log, _) = run(&[0xa4], L64, &mut cpu, false, &mut Dev::with(ram, 1, 0x42));
    assert_eq!(log, [read(ram, 1)]);
    assert_eq!(cpu.ram[0x10], 0x42);

    // 32-bit: FS:ESI source, ES:EDI destination, 16-bit addresses with 67
    let mut cpu = Fake::new();
    cpu.bases[Seg::Fs as usize] = 0x1000;
    cpu.bases[Seg::Es as usize] = ram;
    cpu.bases[Seg::Ds as usize] = 0xdead_0000;
    cpu.regs[RSI] = 0xfedf_f000;
    cpu.regs[RDI] = 0x8;
    let (log, _) = run(&[0x64, 0xa4], P32, &mut cpu, false, &mut Dev::with(MMIO, 1, 0x99));
    assert_eq!(log, [read(MMIO, 1)]);
    assert_eq!(cpu.ram[8], 0x99);
    assert_eq!((cpu.regs[RSI], cpu.regs[RDI]), (0xfedf_f001, 9));
    cpu.regs[RSI] = 0x1234_ffff;
    cpu.regs[RDI] = 0x5678_0010;
    cpu.regs[RCX] = 0x9999_0001;
    let (log, step) = run(&[0x67, 0xf3, 0x64, 0xa4], P32, &mut cpu, false, &mut Dev::default());
    assert_eq!(log, [read(0x1000 + 0xffff, 1)]);
    assert_eq!(step, Step::Done);
    assert_eq!((cpu.regs[RSI], cpu.regs[RDI], cpu.regs[RCX]), (0x1234_0000, 0x5678_0011, 0x9999_0000));
}

/// A fault direction that the instruction cannot make is refused.
#[test]
fn direction_mismatch() {
    let cases: &[(&[u8], bool)] = &[
        (&[0x8b, 0x03], true),
        (&[0x0f, 0xb6, 0x03], true),
        (&[0x39, 0x03], true),
        (&[0x84, 0x03], true),
        (&[0x03, 0x03], true),
        (&[0x89, 0x03], false),
        (&[0xc6, 0x03, 0x01], false),
        (&[0xaa], false),
    ];
    for &(bytes, fault_write) in cases {
        let insn = decode(bytes, L64).unwrap();
        let r = Emulation::start(insn, &mut Fake::new(), fault_write).map(|_| ());
        assert_eq!(r, Err(Unsupported::Direction), "{bytes:02x?}");
    }
    // RMW forms take either
    for bytes in [&[0x01, 0x03][..], &[0x87, 0x03], &[0x0f, 0xb1, 0x03], &[0xa5]] {
        for fault_write in [false, true] {
            assert!(Emulation::start(decode(bytes, L64).unwrap(), &mut Fake::new(), fault_write).is_ok());
        }
    }
}

#[test]
fn rdx_untouched_and_rip_not_moved() {
    // The emulator never moves RIP (the caller does on Done) and only
    // touches the registers the instruction names.
    let mut cpu = Fake::new();
    cpu.regs = [0x4242_4242_4242_4242; 16];
    cpu.regs[RBX] = MMIO;
    let (_, _) = run(&[0x48, 0x8b, 0x13], L64, &mut cpu, false, &mut Dev::with(MMIO, 8, 7));
    assert_eq!(cpu.rip, 0x1000);
    assert_eq!(cpu.regs[RDX], 7);
    for (n, &v) in cpu.regs.iter().enumerate() {
        if n != RDX && n != RBX {
            assert_eq!(v, 0x4242_4242_4242_4242, "register {n}");
        }
    }
}
