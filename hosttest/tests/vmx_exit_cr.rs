//! Control-register-access exits (reason 28). Qualification per SDM Vol.
//! 3C Table 28-3: bits 3:0 CR number, bits 5:4 access type (0 MOV to CR,
//! 1 MOV from CR, 2 CLTS, 3 LMSW), bits 11:8 the GPR.

mod common;

use common::*;
use rvmx_pure::vmcs::field::*;
use rvmx_pure::vmx::exit::cr::cr0_visible;
use rvmx_pure::vmx::exit::{CpuState, Next, UserExit};

const RIP: u64 = 0x8000;
const LEN: u32 = 3;
const NE: u64 = 1 << 5;
const PE: u64 = 1;
const PG: u64 = 1 << 31;
const LME: u64 = 1 << 8;
const LMA: u64 = 1 << 10;
const IA32E_GUEST: u64 = 1 << 9;

fn mov_to(cr: u64, gpr: u64) -> u64 {
    cr | (gpr << 8)
}
fn mov_from(cr: u64, gpr: u64) -> u64 {
    cr | (1 << 4) | (gpr << 8)
}

/// A protected-mode guest (CR0 = PE | NE | ET) at an exit with
/// qualification `q`.
fn fake(q: u64) -> FakeVmcs {
    let v = FakeVmcs::new();
    v.set(GUEST_RIP, RIP);
    v.set(GUEST_CR0, 0x31);
    v.set(CR0_READ_SHADOW, 0x11);
    exit_with(&v, q, LEN);
    v
}

/// Asserts that #GP(0) is pending for the next entry (SDM Vol. 3C 27.6:
/// ENTRY_INTR_INFO valid, type 3 hardware exception, vector 13, bit 11
/// deliver error code; error code 0) and RIP is at the faulting MOV.
fn assert_gp(v: &FakeVmcs, next: Next) {
    assert_eq!(next, Next::Resume);
    let info = v.get(ENTRY_INTR_INFO);
    assert_eq!(info >> 31, 1, "valid: {info:#x}");
    assert_eq!((info >> 8) & 7, 3, "type: {info:#x}");
    assert_eq!(info & 0xff, 13, "vector: {info:#x}");
    assert_eq!((info >> 11) & 1, 1, "error code: {info:#x}");
    assert_eq!(v.writes_to(ENTRY_EXCEPTION_ERROR_CODE), [0]);
    assert_eq!(v.get(GUEST_RIP), RIP);
}

// MOV to CR0: the guest's value goes to the read shadow, what the CPU
// uses gets the host-owned NE forced (SDM Vol. 3C 25.6.6; CR0_FIXED0).
#[test]
fn mov_to_cr0_writes_shadow_and_forces_ne() {
    let v = fake(mov_to(0, 3)); // mov cr0, rbx
    let mut cpu = CpuState::default();
    cpu.regs.rbx = 0x6000_0011; // CD NW ET PE, NE clear
    assert_eq!(handle(&v, 28, &mut cpu), Next::Resume);
    assert_eq!(v.get(CR0_READ_SHADOW), 0x6000_0011);
    // CD and NW are the host's in the CPU (VM entry does not load them):
    // the guest reads its own from the shadow.
    assert_eq!(v.get(GUEST_CR0), 0x11 | NE);
    assert_eq!(cr0_visible(&v), 0x6000_0011);
    assert_eq!(v.get(GUEST_RIP), RIP + u64::from(LEN));
    assert!(!v.written(ENTRY_INTR_INFO));
}

// MOV to CR0 with PG but not PE, or with bits 63:32 set, is #GP(0) (SDM
// Vol. 2B MOV CR; Vol. 3A 2.5); CR0 and its shadow stay as they were.
#[test]
fn mov_to_cr0_invalid_values_inject_gp() {
    for bad in [PG | NE, (1u64 << 32) | PE | NE, (1u64 << 63) | 0x11] {
        let v = fake(mov_to(0, 0));
        v.set(GUEST_CR0, 0x31);
        v.set(CR0_READ_SHADOW, 0x11);
        let mut cpu = CpuState::default();
        cpu.regs.rax = bad;
        let next = handle(&v, 28, &mut cpu);
        assert_gp(&v, next);
        assert_eq!((v.get(GUEST_CR0), v.get(CR0_READ_SHADOW)), (0x31, 0x11), "{bad:#x}");
        assert!(!v.written(GUEST_CR0) && !v.written(CR0_READ_SHADOW), "{bad:#x}");
    }
}

// Setting CR0.PG with EFER.LME = 1 activates IA-32e mode: EFER.LMA = 1
// (SDM Vol. 3A 10.8.5), and the "IA-32e mode guest" entry control (bit 9)
// must follow LMA (SDM Vol. 3C 27.3.1.1). Other entry controls stay.
#[test]
fn mov_to_cr0_pg_with_lme_enters_ia32e() {
    let v = fake(mov_to(0, 1)); // mov cr0, rcx
    v.set(GUEST_CR0, PE | NE | 0x10);
    v.set(GUEST_IA32_EFER, LME | 1); // SCE too
    v.set(GUEST_CR4, 0x20 | (1 << 13)); // PAE
    v.set(ENTRY_CONTROLS, 1 << 15); // load EFER
    let mut cpu = CpuState::default();
    cpu.regs.rcx = PG | PE | 0x10;
    assert_eq!(handle(&v, 28, &mut cpu), Next::Resume);
    assert_eq!(v.get(GUEST_IA32_EFER), LME | LMA | 1);
    assert_eq!(v.get(ENTRY_CONTROLS), (1 << 15) | IA32E_GUEST);
    assert_eq!(v.get(GUEST_CR0), PG | PE | 0x10 | NE);
}

// Clearing CR0.PG with LME = 1 leaves IA-32e mode: LMA and the entry
// control go back to 0.
#[test]
fn mov_to_cr0_clearing_pg_leaves_ia32e() {
    let v = fake(mov_to(0, 1));
    v.set(GUEST_CR0, PG | PE | NE);
    v.set(GUEST_IA32_EFER, LME | LMA);
    v.set(ENTRY_CONTROLS, ((1 << 15) | IA32E_GUEST) as u32);
    let mut cpu = CpuState::default();
    cpu.regs.rcx = PE;
    assert_eq!(handle(&v, 28, &mut cpu), Next::Resume);
    assert_eq!(v.get(GUEST_IA32_EFER), LME);
    assert_eq!(v.get(ENTRY_CONTROLS), 1 << 15);
    assert_eq!(v.get(GUEST_CR0), PE | NE);
}

// Without EFER.LME, paging on or off is legacy paging: EFER and the entry
// controls are not touched.
#[test]
fn mov_to_cr0_pg_without_lme_leaves_efer() {
    for (old, new) in [(PE | NE, PG | PE), (PG | PE | NE, PE)] {
        let v = fake(mov_to(0, 2));
        v.set(GUEST_CR0, old);
        v.set(GUEST_IA32_EFER, 1 << 11); // NXE only
        v.set(ENTRY_CONTROLS, 1 << 15);
        let mut cpu = CpuState::default();
        cpu.regs.rdx = new;
        assert_eq!(handle(&v, 28, &mut cpu), Next::Resume);
        assert_eq!(v.get(GUEST_CR0), new | NE);
        assert!(!v.written(GUEST_IA32_EFER) && !v.written(ENTRY_CONTROLS), "{:x?}", v.all_writes());
        assert_eq!((v.get(GUEST_IA32_EFER), v.get(ENTRY_CONTROLS)), (1 << 11, 1 << 15));
    }
}

// With LME = 1 but PG unchanged (already on, or staying off), no mode
// switch happens: LMA is not touched.
#[test]
fn mov_to_cr0_without_pg_change_keeps_lma() {
    let v = fake(mov_to(0, 0));
    v.set(GUEST_CR0, PG | PE | NE);
    v.set(GUEST_IA32_EFER, LME | LMA);
    let mut cpu = CpuState::default();
    cpu.regs.rax = PG | PE | (1 << 16); // set WP
    handle(&v, 28, &mut cpu);
    assert!(!v.written(GUEST_IA32_EFER) && !v.written(ENTRY_CONTROLS));
    assert_eq!(v.get(CR0_READ_SHADOW), PG | PE | (1 << 16));
}

// MOV to CR0 from GPR 4 takes RSP, which lives in the VMCS (GUEST_RSP),
// not in GuestRegs.
#[test]
fn mov_to_cr0_from_rsp_reads_guest_rsp() {
    let v = fake(mov_to(0, 4));
    v.set(GUEST_RSP, 0x33);
    let mut cpu = CpuState::default();
    cpu.regs.rbp = 0x6000_0010; // slot 5: must not be used
    assert_eq!(handle(&v, 28, &mut cpu), Next::Resume);
    assert_eq!(v.get(CR0_READ_SHADOW), 0x33);
    assert_eq!(v.get(GUEST_CR0), 0x33);
}

// MOV to CR4 setting VMXE: #GP, as for a CPU without VMX (the guest's
// CPUID hides VMX).
#[test]
fn mov_to_cr4_with_vmxe_injects_gp() {
    let v = fake(mov_to(4, 9)); // mov cr4, r9
    v.set(GUEST_CR4, 0x2020);
    v.set(CR4_READ_SHADOW, 0x20);
    let mut cpu = CpuState::default();
    cpu.regs.r9 = 0x2020;
    let next = handle(&v, 28, &mut cpu);
    assert_gp(&v, next);
    assert_eq!((v.get(GUEST_CR4), v.get(CR4_READ_SHADOW)), (0x2020, 0x20));
}

// MOV to CR4 otherwise: shadow = the guest's value, CR4 = it with VMXE
// forced (CR4_FIXED0).
#[test]
fn mov_to_cr4_writes_shadow_and_forces_vmxe() {
    let v = fake(mov_to(4, 9));
    let mut cpu = CpuState::default();
    cpu.regs.r9 = 0x6a0; // PAE PGE OSFXSR OSXMMEXCPT
    assert_eq!(handle(&v, 28, &mut cpu), Next::Resume);
    assert_eq!(v.get(CR4_READ_SHADOW), 0x6a0);
    assert_eq!(v.get(GUEST_CR4), 0x6a0 | (1 << 13));
    assert_ne!(v.get(GUEST_CR4) & (1 << 13), 0);
    assert_eq!(v.get(GUEST_RIP), RIP + u64::from(LEN));
}

// MOV to CR8: bits 63:4 are reserved, a value above 15 is #GP (SDM Vol.
// 3A 2.5); else the TPR is stored in the vCPU state, not the VMCS.
#[test]
fn mov_to_cr8_stores_tpr_or_injects_gp() {
    let v = fake(mov_to(8, 10)); // mov cr8, r10
    let mut cpu = CpuState::default();
    cpu.cr8 = 3;
    cpu.regs.r10 = 16;
    let next = handle(&v, 28, &mut cpu);
    assert_gp(&v, next);
    assert_eq!(cpu.cr8, 3);

    let v = fake(mov_to(8, 10));
    cpu.regs.r10 = 15;
    assert_eq!(handle(&v, 28, &mut cpu), Next::Resume);
    assert_eq!(cpu.cr8, 15);
    assert_eq!(v.get(GUEST_RIP), RIP + u64::from(LEN));
    assert!(!v.written(ENTRY_INTR_INFO));
}

// MOV from CR8 into a GPR: the stored TPR, zero-extended, into that
// register only.
#[test]
fn mov_from_cr8_into_gpr() {
    let v = fake(mov_from(8, 12)); // mov r12, cr8
    let mut cpu = CpuState::default();
    cpu.cr8 = 7;
    cpu.regs.r12 = u64::MAX;
    cpu.regs.r13 = 0x13;
    assert_eq!(handle(&v, 28, &mut cpu), Next::Resume);
    assert_eq!(cpu.regs.r12, 7);
    assert_eq!(cpu.regs.r13, 0x13);
    assert_eq!(v.get(GUEST_RIP), RIP + u64::from(LEN));
}

// MOV from CR8 into RSP (GPR 4) writes GUEST_RSP; GuestRegs stays.
#[test]
fn mov_from_cr8_into_rsp_writes_guest_rsp() {
    let v = fake(mov_from(8, 4));
    v.set(GUEST_RSP, 0xffff);
    let mut cpu = CpuState::default();
    cpu.cr8 = 9;
    let before = cpu.regs;
    assert_eq!(handle(&v, 28, &mut cpu), Next::Resume);
    assert_eq!(v.get(GUEST_RSP), 9);
    assert_eq!(cpu.regs, before);
}

// CR3 access (EPT makes it exit only if the CPU insists), CLTS and LMSW
// are not emulated: raw exit to userland, RIP kept, nothing written.
#[test]
fn cr3_clts_lmsw_go_raw() {
    let lmsw = 3 << 4 | (0x1234 << 16);
    for q in [mov_to(3, 0), mov_from(3, 1), 2 << 4, lmsw, mov_to(2, 0), mov_from(0, 0)] {
        let v = fake(q);
        let mut cpu = CpuState::default();
        match handle(&v, 28, &mut cpu) {
            Next::ToUser(UserExit::Vmx { reason, qualification, instruction_length, .. }) => {
                assert_eq!((reason, qualification, instruction_length), (28, q, LEN));
            }
            other => panic!("{q:#x}: {other:?}"),
        }
        assert_eq!(v.get(GUEST_RIP), RIP, "{q:#x}");
        assert!(v.all_writes().is_empty(), "{q:#x}: {:x?}", v.all_writes());
    }
}
