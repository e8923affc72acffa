// SPDX-License-Identifier: GPL-2.0
//! Decoding the instructions a guest uses on MMIO (pure logic): the MOV
//! forms, MOVZX/MOVSX/MOVSXD, the ALU, TEST, XCHG and CMPXCHG forms with a
//! memory operand, and STOS/MOVS. Anything else is `Undecodable`, never a
//! guess. Encodings from SDM Vol. 2A chapter 2 and Vol. 2D Appendix A.
//!
//! The result, [`Insn`], names the memory operand symbolically (registers,
//! scale, displacement); `emulate.rs` turns it into a linear address with
//! the guest's registers.

use crate::vmcs::field::Seg;

/// The CPU mode that sets the default operand and address sizes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mode {
    /// 64-bit mode: CS.L with EFER.LMA (SDM Vol. 3A 5.2.1).
    pub long64: bool,
    /// Otherwise: CS.D (32-bit defaults); false in real and virtual-8086
    /// mode (SDM Vol. 2A 2.2.1.2 for 64-bit mode, Vol. 1 3.6 otherwise).
    pub default32: bool,
}

/// An ALU operation, numbered as in opcode bits 5:3 of 00-3F and ModRM.reg
/// of 80/81/83 (SDM Vol. 2D Table A-6, group 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Alu {
    /// ADD.
    Add,
    /// OR.
    Or,
    /// ADC (adds CF).
    Adc,
    /// SBB (subtracts CF).
    Sbb,
    /// AND.
    And,
    /// SUB.
    Sub,
    /// XOR.
    Xor,
    /// CMP: SUB that only sets flags.
    Cmp,
}

impl Alu {
    const ALL: [Alu; 8] = [Alu::Add, Alu::Or, Alu::Adc, Alu::Sbb, Alu::And, Alu::Sub, Alu::Xor, Alu::Cmp];
}

/// Where the non-memory source of an instruction comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Src {
    /// The register operand, [`Insn::reg`].
    Reg,
    /// The immediate, [`Insn::imm`].
    Imm,
}

/// What the instruction does with its memory operand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// MOV to memory: 88/89 and A2/A3 (from the register), C6/0 and C7/0
    /// (from the immediate).
    Store(Src),
    /// MOV from memory into the register (8A/8B, A0/A1), MOVZX (0F B6/B7),
    /// MOVSX (0F BE/BF), MOVSXD (63): `src_size` bytes are read and zero-
    /// or sign-extended to the operand size.
    Load {
        /// Bytes read from memory.
        src_size: u8,
        /// Sign-extend (MOVSX, MOVSXD), else zero-extend.
        sign: bool,
    },
    /// r/m op= reg or imm (00/01, 08/09, ... 38/39, 80/81/83): the memory
    /// operand is the destination (CMP only reads it).
    AluMem(Alu, Src),
    /// reg op= r/m (02/03, 0A/0B, ... 3A/3B): the register is the
    /// destination (CMP only sets flags).
    AluReg(Alu),
    /// TEST r/m, reg (84/85) or imm (F6/0, F7/0): flags only.
    Test(Src),
    /// XCHG r/m, reg (86/87).
    Xchg,
    /// CMPXCHG r/m, reg (0F B0/B1), with the accumulator.
    Cmpxchg,
    /// STOS (AA/AB): store the accumulator at ES:rDI.
    Stos,
    /// MOVS (A4/A5): copy from seg:rSI to ES:rDI.
    Movs,
}

/// A general register operand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reg {
    /// 0 = RAX ... 15 = R15 (SDM Vol. 2A Table 2-2 with REX.R).
    pub num: u8,
    /// AH, CH, DH, BH: bits 15:8 of register `num` (0-3); only 8-bit
    /// operands without a REX prefix (SDM Vol. 2A 2.2.1.2, Vol. 1 3.7.2.1).
    pub high: bool,
}

/// The memory operand from ModRM/SIB/displacement (or moffs): its offset
/// is `base + index * scale + disp` (+ the next RIP when `rip_rel`), cut to
/// the address size. Unused (all empty) for STOS and MOVS, whose operands
/// are rSI and rDI.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Mem {
    /// Base register.
    pub base: Option<u8>,
    /// Index register.
    pub index: Option<u8>,
    /// 1, 2, 4 or 8 (1 without an index).
    pub scale: u8,
    /// Displacement, sign-extended (moffs: the offset, zero-extended).
    pub disp: u64,
    /// Relative to the next instruction's RIP (64-bit mode, SDM Vol. 2A
    /// 2.2.1.6).
    pub rip_rel: bool,
}

/// One decoded instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Insn {
    /// Length in bytes, prefixes included (at most 15).
    pub len: u8,
    /// The operation.
    pub op: Op,
    /// Operand size in bytes (1, 2, 4, 8): of the memory operand, or for
    /// `Op::Load` of the destination register; for STOS/MOVS the element.
    pub size: u8,
    /// Address size in bytes (2, 4, 8).
    pub addr_size: u8,
    /// Segment of the memory operand (for MOVS: of the source; the
    /// destination is always ES).
    pub seg: Seg,
    /// The memory operand.
    pub mem: Mem,
    /// The register operand: ModRM.reg, or the accumulator (register 0)
    /// for moffs, STOS and MOVS; register 0, unused, for the immediate
    /// forms. CMPXCHG's implicit accumulator is always register 0.
    pub reg: Reg,
    /// The immediate, sign-extended to 64 bits (8-bit ones as encoded).
    pub imm: u64,
    /// REP (F3) on STOS/MOVS.
    pub rep: bool,
    /// Decoded in 64-bit mode (only FS and GS bases count there).
    pub long64: bool,
}

/// Why bytes were not decoded. The caller reports them raw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Undecodable {
    /// The instruction goes on past the bytes given (fewer than 15).
    Truncated,
    /// Longer than 15 bytes (#GP, SDM Vol. 3A 6.15).
    TooLong,
    /// An opcode (or VEX/EVEX/XOP, or a group member) rvmx does not emulate.
    Opcode,
    /// LOCK on a form that does not allow it (#UD, SDM Vol. 2A 3.2 LOCK).
    Lock,
    /// REPNE (F2) on STOS/MOVS: reserved (SDM Vol. 2A 2.1.1).
    Repne,
    /// ModRM names a register where the instruction needs memory.
    RegisterOperand,
}

/// Architectural instruction length limit (SDM Vol. 2A 2.1).
const MAX_LEN: usize = 15;

/// A cursor over the fetched bytes.
struct Bytes<'a> {
    b: &'a [u8],
    at: usize,
}

impl Bytes<'_> {
    fn next(&mut self) -> Result<u8, Undecodable> {
        if self.at >= MAX_LEN {
            return Err(Undecodable::TooLong);
        }
        let v = *self.b.get(self.at).ok_or(Undecodable::Truncated)?;
        self.at += 1;
        Ok(v)
    }

    /// `n` bytes little-endian, zero-extended.
    fn le(&mut self, n: u8) -> Result<u64, Undecodable> {
        let mut v = 0;
        for i in 0..n {
            v |= u64::from(self.next()?) << (8 * i);
        }
        Ok(v)
    }

    /// `n` bytes little-endian, sign-extended.
    fn signed(&mut self, n: u8) -> Result<u64, Undecodable> {
        let v = self.le(n)?;
        let shift = 64 - 8 * u32::from(n);
        Ok((((v << shift) as i64) >> shift) as u64)
    }
}

/// The REX bits (SDM Vol. 2A 2.2.1.2); all clear without REX.
#[derive(Clone, Copy, Default)]
struct Rex {
    present: bool,
    w: bool,
    r: u8,
    x: u8,
    b: u8,
}

/// Decodes the instruction at the start of `bytes` (up to 15 bytes fetched
/// at CS:RIP) in `mode`.
pub fn decode(bytes: &[u8], mode: Mode) -> Result<Insn, Undecodable> {
    let mut c = Bytes { b: bytes, at: 0 };
    let (mut opsize_prefix, mut addr_prefix, mut lock) = (false, false, false);
    let mut last_rep = None;
    let mut seg_override = None;
    let mut rex = Rex::default();
    // Legacy prefixes in any order (SDM Vol. 2A 2.1.1); REX only counts
    // right before the opcode (2.2.1), so a legacy prefix drops it.
    let op = loop {
        let b = c.next()?;
        match b {
            0x66 => opsize_prefix = true,
            0x67 => addr_prefix = true,
            0xf0 => lock = true,
            0xf2 | 0xf3 => last_rep = Some(b),
            // ES CS SS DS overrides: ignored in 64-bit mode (SDM Vol. 1 3.4.2.1).
            0x26 | 0x2e | 0x36 | 0x3e if mode.long64 => {}
            0x26 => seg_override = Some(Seg::Es),
            0x2e => seg_override = Some(Seg::Cs),
            0x36 => seg_override = Some(Seg::Ss),
            0x3e => seg_override = Some(Seg::Ds),
            0x64 => seg_override = Some(Seg::Fs),
            0x65 => seg_override = Some(Seg::Gs),
            0x40..=0x4f if mode.long64 => {
                rex = Rex {
                    present: true,
                    w: b & 8 != 0,
                    r: (b >> 2 & 1) << 3,
                    x: (b >> 1 & 1) << 3,
                    b: (b & 1) << 3,
                };
                continue;
            }
            _ => break b,
        }
        rex = Rex::default();
    };

    // Operand and address sizes (SDM Vol. 1 3.6, Vol. 2A Table 2-4 and 2.2.1.2).
    let osize = if mode.long64 && rex.w {
        8
    } else if (mode.long64 || mode.default32) != opsize_prefix {
        4
    } else {
        2
    };
    let addr_size = match (mode.long64, mode.default32 != addr_prefix) {
        (true, _) => if addr_prefix { 4 } else { 8 },
        (false, true) => 4,
        (false, false) => 2,
    };

    let mut insn = Insn {
        len: 0,
        op: Op::Stos,
        size: osize,
        addr_size,
        seg: seg_override.unwrap_or(Seg::Ds),
        mem: Mem::default(),
        reg: Reg { num: 0, high: false },
        imm: 0,
        rep: false,
        long64: mode.long64,
    };
    // Byte-sized forms have an even opcode (bit 0 = w, SDM Vol. 2D A.2.4.2).
    let byte_if_even = |op: u8| if op & 1 == 0 { 1 } else { osize };
    // Immediate bytes after ModRM (sign-extended; 16/32-bit operands take
    // imm16/imm32, 64-bit ones imm32: SDM Vol. 2A 2.2.1.5).
    let mut imm_size = 0;
    // ModRM.reg when it names a register (None: register 0 stands).
    let modrm_reg: Option<u8>;
    match op {
        0x00..=0x3f if op & 7 < 4 => {
            let alu = Alu::ALL[usize::from(op >> 3)];
            insn.size = byte_if_even(op);
            insn.op = if op & 2 == 0 { Op::AluMem(alu, Src::Reg) } else { Op::AluReg(alu) };
            modrm_reg = Some(modrm(&mut c, &mut insn, rex, seg_override)?);
        }
        0x63 if mode.long64 => {
            // MOVSXD: r64 from m32 with REX.W, else a plain 16/32-bit load.
            insn.op = Op::Load { src_size: osize.min(4), sign: true };
            modrm_reg = Some(modrm(&mut c, &mut insn, rex, seg_override)?);
        }
        0x80 | 0x81 | 0x83 => {
            insn.size = byte_if_even(op);
            imm_size = if op == 0x81 { osize.min(4) } else { 1 };
            let r = modrm(&mut c, &mut insn, rex, seg_override)?;
            insn.op = Op::AluMem(Alu::ALL[usize::from(r)], Src::Imm);
            modrm_reg = None;
        }
        0x84 | 0x85 => {
            insn.size = byte_if_even(op);
            insn.op = Op::Test(Src::Reg);
            modrm_reg = Some(modrm(&mut c, &mut insn, rex, seg_override)?);
        }
        0x86 | 0x87 => {
            insn.size = byte_if_even(op);
            insn.op = Op::Xchg;
            modrm_reg = Some(modrm(&mut c, &mut insn, rex, seg_override)?);
        }
        0x88..=0x8b => {
            insn.size = byte_if_even(op);
            insn.op = if op & 2 == 0 { Op::Store(Src::Reg) } else { Op::Load { src_size: insn.size, sign: false } };
            modrm_reg = Some(modrm(&mut c, &mut insn, rex, seg_override)?);
        }
        0xa0..=0xa3 => {
            // moffs: an address-size-wide offset, no ModRM (SDM Vol. 2B MOV).
            insn.size = byte_if_even(op);
            insn.op = if op & 2 == 0 { Op::Load { src_size: insn.size, sign: false } } else { Op::Store(Src::Reg) };
            insn.mem = Mem { scale: 1, disp: c.le(addr_size)?, ..Mem::default() };
            modrm_reg = None;
        }
        0xa4 | 0xa5 | 0xaa | 0xab => {
            insn.size = byte_if_even(op);
            insn.op = if op < 0xaa { Op::Movs } else { Op::Stos };
            match last_rep {
                Some(0xf2) => return Err(Undecodable::Repne),
                Some(_) => insn.rep = true,
                None => {}
            }
            if insn.op == Op::Stos {
                // ES:rDI, not overridable (SDM Vol. 2B STOS).
                insn.seg = Seg::Es;
            }
            modrm_reg = None;
        }
        0xc6 | 0xc7 | 0xf6 | 0xf7 => {
            insn.size = byte_if_even(op);
            imm_size = insn.size.min(4);
            insn.op = if op < 0xf6 { Op::Store(Src::Imm) } else { Op::Test(Src::Imm) };
            let r = modrm(&mut c, &mut insn, rex, seg_override)?;
            // Only /0: MOV and TEST (C6/C7 /7 are XABORT/XBEGIN; F6/F7 /2-/7
            // are NOT NEG MUL IMUL DIV IDIV, not emulated).
            if r != 0 {
                return Err(Undecodable::Opcode);
            }
            modrm_reg = None;
        }
        0x0f => {
            let op2 = c.next()?;
            match op2 {
                0xb0 | 0xb1 => {
                    insn.size = byte_if_even(op2);
                    insn.op = Op::Cmpxchg;
                }
                0xb6 | 0xb7 | 0xbe | 0xbf => {
                    let src_size = if op2 & 1 == 0 { 1 } else { 2 };
                    insn.op = Op::Load { src_size, sign: op2 >= 0xbe };
                }
                _ => return Err(Undecodable::Opcode),
            }
            modrm_reg = Some(modrm(&mut c, &mut insn, rex, seg_override)?);
        }
        _ => return Err(Undecodable::Opcode),
    }

    // The register operand (ModRM.reg with REX.R); AH-BH for 8-bit operands
    // without any REX prefix, SPL-DIL with one (SDM Vol. 2A 2.2.1.2).
    if let Some(r) = modrm_reg {
        let n = r | rex.r;
        insn.reg = if insn.size == 1 && !rex.present && (4..8).contains(&n) {
            Reg { num: n - 4, high: true }
        } else {
            Reg { num: n, high: false }
        };
    }
    if imm_size != 0 {
        insn.imm = c.signed(imm_size)?;
    }

    // LOCK only on read-modify-write forms with a memory destination (SDM
    // Vol. 2A 3.2, LOCK): the ALU ops but CMP, XCHG, CMPXCHG.
    let lockable = matches!(insn.op, Op::Xchg | Op::Cmpxchg | Op::AluMem(Alu::Add | Alu::Or | Alu::Adc | Alu::Sbb | Alu::And | Alu::Sub | Alu::Xor, _));
    if lock && !lockable {
        return Err(Undecodable::Lock);
    }

    insn.len = c.at as u8;
    Ok(insn)
}

/// Decodes ModRM, SIB and displacement into `insn.mem` and `insn.seg`
/// (SDM Vol. 2A 2.1.5, Tables 2-1 to 2-3; 2.2.1.6 for RIP-relative);
/// returns ModRM.reg (3 bits). A register r/m operand is refused.
fn modrm(c: &mut Bytes<'_>, insn: &mut Insn, rex: Rex, seg_override: Option<Seg>) -> Result<u8, Undecodable> {
    let m = c.next()?;
    let (md, reg, rm) = (m >> 6, m >> 3 & 7, m & 7);
    if md == 3 {
        return Err(Undecodable::RegisterOperand);
    }
    let mut mem = Mem { scale: 1, ..Mem::default() };
    // Default segment: SS when the base is rBP or rSP, else DS (SDM Vol. 1
    // 3.7.4, Table 3-5).
    let mut stack = false;
    if insn.addr_size == 2 {
        // Table 2-1: BX+SI BX+DI BP+SI BP+DI SI DI BP/disp16 BX.
        const BASE: [Option<u8>; 8] = [Some(3), Some(3), Some(5), Some(5), None, None, Some(5), Some(3)];
        const INDEX: [Option<u8>; 8] = [Some(6), Some(7), Some(6), Some(7), Some(6), Some(7), None, None];
        let r = usize::from(rm);
        if md == 0 && rm == 6 {
            mem.disp = c.signed(2)?;
        } else {
            mem.base = BASE[r];
            mem.index = INDEX[r];
            stack = BASE[r] == Some(5);
            mem.disp = match md {
                1 => c.signed(1)?,
                2 => c.signed(2)?,
                _ => 0,
            };
        }
    } else {
        if rm == 4 {
            // SIB (Table 2-3): index 100 without REX.X is none.
            let sib = c.next()?;
            mem.scale = 1 << (sib >> 6);
            let index = (sib >> 3 & 7) | rex.x;
            mem.index = if index == 4 { None } else { Some(index) };
            let base = sib & 7;
            if md == 0 && base == 5 {
                // No base, disp32 (whatever REX.B says).
                mem.disp = c.signed(4)?;
            } else {
                mem.base = Some(base | rex.b);
            }
            if mem.index.is_none() {
                mem.scale = 1;
            }
        } else if md == 0 && rm == 5 {
            // disp32 alone; RIP-relative in 64-bit mode (Table 2-7).
            mem.disp = c.signed(4)?;
            mem.rip_rel = insn.long64;
        } else {
            mem.base = Some(rm | rex.b);
        }
        stack = matches!(mem.base, Some(4 | 5));
        mem.disp = mem.disp.wrapping_add(match md {
            1 => c.signed(1)?,
            2 => c.signed(4)?,
            _ => 0,
        });
    }
    insn.mem = mem;
    insn.seg = seg_override.unwrap_or(if stack { Seg::Ss } else { Seg::Ds });
    Ok(reg)
}
