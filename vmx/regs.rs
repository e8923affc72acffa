// SPDX-License-Identifier: GPL-2.0
//! The guest's general registers as the entry/exit stub saves them (pure
//! logic). `vmx.S` takes every offset from this struct (`global_asm!`
//! const operands in `insn.rs`); RSP lives in the VMCS (GUEST_RSP).

/// General registers other than RSP, named; `#[repr(C)]` because the stub
/// (vmx/vmx.S) loads and saves them by offset.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GuestRegs {
    /// RAX.
    pub rax: u64,
    /// RCX.
    pub rcx: u64,
    /// RDX.
    pub rdx: u64,
    /// RBX.
    pub rbx: u64,
    /// RBP.
    pub rbp: u64,
    /// RSI.
    pub rsi: u64,
    /// RDI.
    pub rdi: u64,
    /// R8.
    pub r8: u64,
    /// R9.
    pub r9: u64,
    /// R10.
    pub r10: u64,
    /// R11.
    pub r11: u64,
    /// R12.
    pub r12: u64,
    /// R13.
    pub r13: u64,
    /// R14.
    pub r14: u64,
    /// R15.
    pub r15: u64,
}

impl GuestRegs {
    /// The register with number `n` in instruction encodings and exit
    /// qualifications (SDM Vol. 3C Table 28-3: 0 = RAX ... 15 = R15, bits
    /// above 3 ignored); `None` for 4, RSP, which is in the VMCS.
    pub fn slot(&mut self, n: u8) -> Option<&mut u64> {
        Some(match n & 15 {
            0 => &mut self.rax,
            1 => &mut self.rcx,
            2 => &mut self.rdx,
            3 => &mut self.rbx,
            4 => return None,
            5 => &mut self.rbp,
            6 => &mut self.rsi,
            7 => &mut self.rdi,
            8 => &mut self.r8,
            9 => &mut self.r9,
            10 => &mut self.r10,
            11 => &mut self.r11,
            12 => &mut self.r12,
            13 => &mut self.r13,
            14 => &mut self.r14,
            _ => &mut self.r15,
        })
    }
}
