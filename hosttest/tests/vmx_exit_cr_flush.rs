//! MOV to CR0 exits (reason 28) and `CpuState::flush_tlb`: the emulated
//! write did not flush the vCPU's translations as the CPU would have, so a
//! change of CR0.PG or CR0.WP (KVM's MMU role bits; SDM Vol. 3A 4.10.4.1)
//! asks the run loop to flush. GUEST_CR0 is the guest's real CR0 (NE
//! forced), CR0_READ_SHADOW what it reads.

mod common;

use common::*;
use rvmx_pure::vmcs::field::*;
use rvmx_pure::vmx::exit::{CpuState, Next};

const RIP: u64 = 0x9000;
const PE: u64 = 1 << 0;
const MP: u64 = 1 << 1;
const TS: u64 = 1 << 3;
const ET: u64 = 1 << 4;
const NE: u64 = 1 << 5;
const WP: u64 = 1 << 16;
const AM: u64 = 1 << 18;
const CD: u64 = 1 << 30;
const PG: u64 = 1 << 31;

/// `mov cr0, rax` with GUEST_CR0 = `old | NE` and the shadow = `shadow`;
/// returns the handler's answer and flush_tlb after it, starting from
/// `flush_before`.
fn mov_cr0(old: u64, shadow: u64, new: u64, flush_before: bool) -> (FakeVmcs, Next, bool) {
    let v = FakeVmcs::new();
    v.set(GUEST_RIP, RIP);
    v.set(GUEST_CR0, old | NE);
    v.set(CR0_READ_SHADOW, shadow);
    exit_with(&v, 0, 3); // MOV to CR0 from RAX: bits 3:0 = 0, 5:4 = 0, 11:8 = 0
    let mut cpu = CpuState::default();
    cpu.regs.rax = new;
    cpu.flush_tlb = flush_before;
    let next = handle(&v, 28, &mut cpu);
    (v, next, cpu.flush_tlb)
}

// Paging switched on or off (no EFER.LME: legacy paging) flushes.
#[test]
fn cr0_pg_change_sets_flush_tlb() {
    for (old, new) in [(PE | ET, PG | PE | ET), (PG | PE | ET, PE | ET), (PE, PG | PE | WP)] {
        let (v, next, flush) = mov_cr0(old, old, new, false);
        assert_eq!(next, Next::Resume, "{old:#x} -> {new:#x}");
        assert!(flush, "{old:#x} -> {new:#x}");
        assert_eq!(v.get(GUEST_CR0), new | NE);
        assert_eq!(v.get(GUEST_RIP), RIP + 3);
    }
}

// WP set or cleared with paging on flushes; so does WP with paging off.
#[test]
fn cr0_wp_change_sets_flush_tlb() {
    for (old, new) in [(PG | PE, PG | PE | WP), (PG | PE | WP, PG | PE), (PE, PE | WP)] {
        let (_, next, flush) = mov_cr0(old, old, new, false);
        assert_eq!(next, Next::Resume);
        assert!(flush, "{old:#x} -> {new:#x}");
    }
}

// Only other bits change: NE (the guest clears it in its value, as the
// exit needs NE to differ from the shadow; the real CR0 keeps it), CD, TS,
// AM, MP: no flush.
#[test]
fn cr0_other_bits_do_not_flush() {
    let base = PG | PE | WP | ET;
    let cases = [
        ("NE cleared by the guest", base | NE, base),
        ("NE set by the guest", base, base | NE),
        ("CD", base | NE, base | NE | CD),
        ("TS", base | NE, base | NE | TS),
        ("AM and MP", base | NE, base | NE | AM | MP),
        ("same value", base | NE, base | NE),
    ];
    for (what, shadow, new) in cases {
        let (v, next, flush) = mov_cr0(base, shadow, new, false);
        assert_eq!(next, Next::Resume, "{what}");
        assert!(!flush, "{what}");
        assert_eq!(v.get(CR0_READ_SHADOW), new, "{what}");
        assert_eq!(v.get(GUEST_CR0), (new | NE) & !CD, "{what}");
    }
}

// The comparison is with GUEST_CR0 (the CR0 the CPU used), not with the
// read shadow: a shadow that disagrees on PG/WP does not count.
#[test]
fn cr0_flush_compares_with_guest_cr0_not_shadow() {
    // Real CR0 has PG and WP; the shadow (stale) has neither; the guest
    // writes PG | WP again: no change to what the CPU uses.
    let (_, _, flush) = mov_cr0(PG | PE | WP, PE, PG | PE | WP, false);
    assert!(!flush);
    // Real CR0 has no PG; the shadow says PG: writing PG is a change.
    let (_, _, flush) = mov_cr0(PE, PG | PE, PG | PE, false);
    assert!(flush);
}

// A flush already asked for (vCPU moved, SET_SREGS) is not cancelled by a
// CR0 write that needs none.
#[test]
fn cr0_write_keeps_pending_flush() {
    let (_, next, flush) = mov_cr0(PG | PE, PG | PE, PG | PE | CD, true);
    assert_eq!(next, Next::Resume);
    assert!(flush);
}

// A write refused with #GP (PG without PE; bits 63:32 set) changes
// nothing, so no flush, though the value differs in PG.
#[test]
fn cr0_refused_write_does_not_flush() {
    for (old, new) in [(ET, PG | ET), (PG | PE, (1 << 32) | PE), (PE, (1 << 63) | PG | PE)] {
        let (v, next, flush) = mov_cr0(old, old, new, false);
        assert_eq!(next, Next::Resume);
        assert!(!flush, "{old:#x} -> {new:#x}");
        // #GP(0); in real mode (PE = 0) without an error code (SDM Vol.
        // 3C 27.2.1.3: VM entry refuses one there).
        let want = if old & PE != 0 { 0x8000_0b0d } else { 0x8000_030d };
        assert_eq!(v.get(ENTRY_INTR_INFO), want, "#GP(0) pending");
        assert_eq!(v.get(GUEST_CR0), old | NE);
        assert_eq!(v.get(GUEST_RIP), RIP);
    }
}

// CR4 writes that change no paging bit (OSFXSR, OSXMMEXCPT here) and CR8
// writes do not ask for a flush; CR4 writes that change PGE, PAE, PSE,
// SMEP, SMAP, PCIDE or LA57 do (SDM Vol. 3A 4.10.4.1).
#[test]
fn cr4_and_cr8_writes_flush_only_for_paging_bits() {
    for (q, val, flush) in [(4u64, 0x600u64, false), (8, 5, false), (4, 0x6a0, true), (4, 0x610, true), (4, 1 << 20, true)] {
        let v = FakeVmcs::new();
        v.set(GUEST_RIP, RIP);
        exit_with(&v, q, 3);
        let mut cpu = CpuState::default();
        cpu.regs.rax = val;
        assert_eq!(handle(&v, 28, &mut cpu), Next::Resume);
        assert_eq!(cpu.flush_tlb, flush, "cr{q} = {val:#x}");
    }
}

// PCIDE needs IA-32e mode and CR3[11:0] = 0 (SDM Vol. 3A 4.10.1): #GP.
#[test]
fn cr4_pcide_rules() {
    let v = FakeVmcs::new();
    v.set(GUEST_RIP, RIP);
    v.set(GUEST_CR0, 0x31);
    exit_with(&v, 4, 3);
    let mut cpu = CpuState::default();
    cpu.regs.rax = (1 << 17) | 0x20;
    handle(&v, 28, &mut cpu);
    assert_eq!(v.get(ENTRY_INTR_INFO), 0x8000_0b0d);
    assert_eq!(v.get(GUEST_RIP), RIP);
}

// A paging change under PAE paging asks for the PDPTEs to be loaded.
#[test]
fn pae_paging_change_loads_pdptes() {
    let v = FakeVmcs::new();
    v.set(GUEST_RIP, RIP);
    v.set(GUEST_CR0, 0x31);
    v.set(CR0_READ_SHADOW, 0x11);
    v.set(GUEST_CR4, 0x20 | (1 << 13));
    exit_with(&v, 0, 3);
    let mut cpu = CpuState::default();
    cpu.regs.rax = (1 << 31) | 0x11;
    handle(&v, 28, &mut cpu);
    assert!(cpu.load_pdptes);
}
