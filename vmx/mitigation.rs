// SPDX-License-Identifier: GPL-2.0
//! Which speculative-execution defences the run loop applies (pure logic),
//! decided from what the kernel found and chose, as KVM decides. The stub
//! (vmx.S) takes the others straight from the kernel's feature bits.

/// IA32_ARCH_CAPABILITIES bit 3: the CPU needs no L1D flush on VM entry
/// (SDM Vol. 4 Table 2-2).
pub const ARCH_CAP_SKIP_VMENTRY_L1DFLUSH: u64 = 1 << 3;

/// What the kernel's `l1tf=` choice means for VM entry (kapi/cpu.rs maps
/// the kernel's own enum l1tf_mitigations onto it, by name).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum L1tf {
    /// `l1tf=off`.
    Off,
    /// `l1tf=flush`, `flush,nowarn`, `flush,nosmt` (the default).
    Flush,
    /// `l1tf=full`, `full,force`.
    Full,
}

/// When to flush the L1D cache before VM entry (L1 Terminal Fault).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum L1dFlush {
    /// Never: the CPU is not affected, or the flush was turned off.
    Never,
    /// After the host ran code that may have left secrets in L1D since the
    /// last entry: the first entry of a RUN, and entries after a host
    /// interrupt, NMI, reschedule or page fault-in (KVM's "cond").
    Cond,
    /// Before every entry.
    Always,
}

/// KVM's vmx_setup_l1d_flush with its module parameter left at "auto":
/// from the L1TF bug bit, IA32_ARCH_CAPABILITIES and `l1tf=`.
pub fn l1d_flush(has_l1tf_bug: bool, arch_capabilities: u64, choice: L1tf) -> L1dFlush {
    if !has_l1tf_bug || arch_capabilities & ARCH_CAP_SKIP_VMENTRY_L1DFLUSH != 0 {
        return L1dFlush::Never;
    }
    match choice {
        L1tf::Off => L1dFlush::Never,
        L1tf::Flush => L1dFlush::Cond,
        L1tf::Full => L1dFlush::Always,
    }
}
