//! Events (vmx/exit/event.rs), debug registers and #DB (debug.rs), XSETBV
//! and the CR0 rules added for mode switches (cr.rs).

mod common;

use common::*;
use rvmx_pure::vmcs::field::*;
use rvmx_pure::vmx::exit::event::{self, merge_dr6, Exception};
use rvmx_pure::vmx::exit::{CpuState, Next, UserExit};

const RIP: u64 = 0x1000;
const IF: u64 = 1 << 9;
const VALID: u64 = 1 << 31;
const IRQ_WINDOW: u64 = 1 << 2;
const NMI_WINDOW: u64 = 1 << 22;
const MOV_DR: u64 = 1 << 23;
const VIRTUAL_NMI: u64 = 1 << 5;

/// A protected-mode guest (CR0.PE) with IF set.
fn fake() -> FakeVmcs {
    let v = FakeVmcs::new();
    v.set(GUEST_RIP, RIP);
    v.set(GUEST_RFLAGS, 2 | IF);
    v.set(GUEST_CR0, 0x31);
    v
}

// An exit clears the injection field; an event whose delivery it
// interrupted (IDT-vectoring info) goes in again with its error code (SDM
// Vol. 3C 28.2.4, 27.6).
#[test]
fn interrupted_exception_is_redelivered_with_error_code() {
    let v = fake();
    v.set_info(IDT_VECTORING_INFO, 0x8000_0b0e); // #PF, error code, hw exception
    v.set_info(IDT_VECTORING_ERROR_CODE, 0x6);
    exit_with(&v, 0, 0);
    v.set_info(GUEST_PHYSICAL_ADDRESS, 0x5000);
    let mut cpu = CpuState::default();
    let next = handle(&v, 48, &mut cpu); // EPT violation (page not mapped)
    assert_eq!(next, Next::Fault { gpa: 0x5000, qualification: 0 });
    assert_eq!(v.get(ENTRY_INTR_INFO), 0x8000_0b0e);
    assert_eq!(v.get(ENTRY_EXCEPTION_ERROR_CODE), 6);
    assert!(cpu.injecting);
    // Nothing else is injected over it at the next entry.
    cpu.events.interrupt = Some(0x30);
    event::prepare(&v, &mut cpu);
    assert_eq!(v.get(ENTRY_INTR_INFO), 0x8000_0b0e);
    assert_eq!(v.get(PROC_BASED_CONTROLS) & IRQ_WINDOW, IRQ_WINDOW);
}

// A software interrupt needs the instruction length again; an NMI needs
// blocking by NMI lifted to be injected (SDM Vol. 3C 27.3.1.5).
#[test]
fn redelivery_of_soft_interrupt_and_nmi() {
    let v = fake();
    v.set_info(IDT_VECTORING_INFO, 0x8000_0480); // INT 0x80
    exit_with(&v, 0, 2);
    let mut cpu = CpuState::default();
    handle(&v, 48, &mut cpu);
    assert_eq!(v.get(ENTRY_INSTRUCTION_LENGTH), 2);
    assert_eq!(v.get(ENTRY_INTR_INFO), 0x8000_0480);

    let v = fake();
    v.set_info(IDT_VECTORING_INFO, 0x8000_0202 | (1 << 12));
    v.set(GUEST_INTERRUPTIBILITY, 1u32 << 3);
    exit_with(&v, 0, 0);
    handle(&v, 48, &mut cpu);
    assert_eq!(v.get(ENTRY_INTR_INFO), 0x8000_0202);
    assert_eq!(v.get(GUEST_INTERRUPTIBILITY), 0);
}

// No IDT-vectoring info: nothing is written.
#[test]
fn no_redelivery_without_vectoring_info() {
    let v = fake();
    exit_with(&v, 0, 2);
    let mut cpu = CpuState::default();
    cpu.regs.rax = 0;
    handle(&v, 10, &mut cpu); // CPUID
    assert!(!v.written(ENTRY_INTR_INFO));
    assert!(!cpu.injecting);
}

// Order: exception, then NMI, then interrupt (SDM Vol. 3A 6.9); one per entry.
#[test]
fn prepare_delivers_exception_first_with_payload() {
    let v = fake();
    let mut cpu = CpuState::default();
    cpu.events.exception = Some(Exception { vector: 14, error_code: Some(2), payload: Some(0xdead_b000) });
    cpu.events.nmi = true;
    cpu.events.interrupt = Some(0x40);
    v.set(PIN_BASED_CONTROLS, VIRTUAL_NMI as u32);
    event::prepare(&v, &mut cpu);
    assert_eq!(v.get(ENTRY_INTR_INFO), VALID | (1 << 11) | (3 << 8) | 14);
    assert_eq!(v.get(ENTRY_EXCEPTION_ERROR_CODE), 2);
    assert_eq!(cpu.cr2, 0xdead_b000);
    assert!(cpu.events.nmi && cpu.events.interrupt == Some(0x40));
    // The waiting NMI and interrupt ask for their windows.
    assert_eq!(v.get(PROC_BASED_CONTROLS) & (IRQ_WINDOW | NMI_WINDOW), IRQ_WINDOW | NMI_WINDOW);
}

#[test]
fn prepare_injects_nmi_unless_blocked() {
    for (blocking, injected) in [(0u64, true), (1, false), (2, false), (8, false)] {
        let v = fake();
        v.set(GUEST_INTERRUPTIBILITY, blocking as u32);
        let mut cpu = CpuState::default();
        cpu.events.nmi = true;
        event::prepare(&v, &mut cpu);
        assert_eq!(v.written(ENTRY_INTR_INFO), injected, "blocking {blocking}");
        if injected {
            assert_eq!(v.get(ENTRY_INTR_INFO), VALID | (2 << 8) | 2);
            assert!(!cpu.events.nmi);
        }
    }
}

// An external interrupt goes in only with IF=1 and no STI/MOV-SS blocking;
// otherwise interrupt-window exiting is turned on, and off again once done.
#[test]
fn interrupt_waits_for_the_window() {
    let v = fake();
    v.set(GUEST_RFLAGS, 2);
    let mut cpu = CpuState::default();
    cpu.events.interrupt = Some(0x21);
    event::prepare(&v, &mut cpu);
    assert!(!v.written(ENTRY_INTR_INFO));
    assert_eq!(v.get(PROC_BASED_CONTROLS) & IRQ_WINDOW, IRQ_WINDOW);
    // The window opens: the exit resumes, the next entry injects.
    v.set(GUEST_RFLAGS, 2 | IF);
    exit_with(&v, 0, 0);
    assert_eq!(handle(&v, 7, &mut cpu), Next::Resume);
    assert_eq!(v.get(GUEST_RIP), RIP);
    event::prepare(&v, &mut cpu);
    assert_eq!(v.get(ENTRY_INTR_INFO), VALID | 0x21);
    assert_eq!(v.get(PROC_BASED_CONTROLS) & IRQ_WINDOW, 0);
    assert_eq!(cpu.events.interrupt, None);

    let v = fake();
    v.set(GUEST_INTERRUPTIBILITY, 1); // STI blocking
    let mut cpu = CpuState::default();
    cpu.events.interrupt = Some(0x21);
    event::prepare(&v, &mut cpu);
    assert!(!v.written(ENTRY_INTR_INFO));
}

// Userland's window request: the exit goes to userland; without a request
// (or with an interrupt waiting) the guest just runs on.
#[test]
fn requested_window_exits_to_userland() {
    let v = fake();
    let mut cpu = CpuState::default();
    cpu.want_irq_window = true;
    event::prepare(&v, &mut cpu);
    assert_eq!(v.get(PROC_BASED_CONTROLS) & IRQ_WINDOW, IRQ_WINDOW);
    exit_with(&v, 0, 0);
    assert_eq!(handle(&v, 7, &mut cpu), Next::ToUser(UserExit::IrqWindow));
    cpu.want_irq_window = false;
    assert_eq!(handle(&v, 7, &mut cpu), Next::Resume);
    event::prepare(&v, &mut cpu);
    assert_eq!(v.get(PROC_BASED_CONTROLS) & IRQ_WINDOW, 0);
}

// DR6 after a #DB: B0-B3 replaced, BS/BD accumulate, RTM active low, bit
// 12 clear (SDM Vol. 3B 18.2.3).
#[test]
fn dr6_merge() {
    assert_eq!(merge_dr6(0xffff_0ff0, 1 << 14), 0xffff_4ff0);
    assert_eq!(merge_dr6(0xffff_0ff1, 0x2), 0xffff_0ff2);
    assert_eq!(merge_dr6(0xffff_4ff0, 1 << 16), 0xfffe_4ff0);
    assert_eq!(merge_dr6(0xffff_1ff0, 0), 0xffff_0ff0);
}

// #DB exits: the qualification's bits go to the guest's DR6 and #DB is
// injected at the same RIP (a trap: RIP is already past the instruction).
#[test]
fn debug_exception_is_reflected_with_dr6() {
    let v = fake();
    v.set_info(EXIT_INTR_INFO, 0x8000_0301);
    exit_with(&v, 1 << 14, 0);
    let mut cpu = CpuState { dr6: 0xffff_0ff0, ..Default::default() };
    assert_eq!(handle(&v, 0, &mut cpu), Next::Resume);
    assert_eq!(cpu.dr6, 0xffff_4ff0);
    assert_eq!(v.get(ENTRY_INTR_INFO), VALID | (3 << 8) | 1);
    assert_eq!(v.get(GUEST_RIP), RIP);
}

// ICEBP exits on the instruction (privileged software exception): RIP
// steps over it, then #DB is delivered as a hardware exception.
#[test]
fn icebp_steps_over_then_reflects() {
    let v = fake();
    v.set_info(EXIT_INTR_INFO, 0x8000_0501);
    exit_with(&v, 0, 1);
    let mut cpu = CpuState::default();
    assert_eq!(handle(&v, 0, &mut cpu), Next::Resume);
    assert_eq!(v.get(GUEST_RIP), RIP + 1);
    assert_eq!(v.get(ENTRY_INTR_INFO), VALID | (3 << 8) | 1);
}

// Single step under STI blocking: BS pending (SDM Vol. 3C 27.3.1.5).
#[test]
fn single_step_under_sti_blocking_stays_pending() {
    let v = fake();
    v.set(GUEST_RFLAGS, 2 | IF | (1 << 8));
    v.set(GUEST_INTERRUPTIBILITY, 1);
    v.set_info(EXIT_INTR_INFO, 0x8000_0301);
    exit_with(&v, 1 << 14, 0);
    let mut cpu = CpuState::default();
    handle(&v, 0, &mut cpu);
    assert_eq!(v.get(GUEST_PENDING_DBG_EXCEPTIONS), 1 << 14);
}

// MOV DR: the guest takes the debug registers over and the instruction
// runs again natively.
#[test]
fn mov_dr_hands_the_registers_over() {
    let v = fake();
    v.set(PROC_BASED_CONTROLS, (MOV_DR | (1 << 7)) as u32);
    exit_with(&v, 0x16, 3); // mov dr6, ...
    let mut cpu = CpuState::default();
    assert_eq!(handle(&v, 29, &mut cpu), Next::Resume);
    assert!(cpu.debug_owned);
    assert_eq!(v.get(PROC_BASED_CONTROLS), 1 << 7);
    assert_eq!(v.get(GUEST_RIP), RIP);
    rvmx_pure::vmx::exit::debug::reclaim(&v);
    assert_eq!(v.get(PROC_BASED_CONTROLS), MOV_DR | (1 << 7));
}

// XSETBV: valid values go to the vCPU's XCR0 and RIP moves on; the rest
// is #GP (SDM Vol. 1 13.3). The test environment allows x87|SSE|AVX.
#[test]
fn xsetbv_rules() {
    for (rcx, val, ok) in [
        (0u64, 0x7u64, true),
        (0, 0x3, true),
        (0, 0x1, true),
        (0, 0x2, false),  // no x87
        (0, 0x5, false),  // AVX without SSE
        (0, 0xf, false),  // not allowed (MPX)
        (1, 0x7, false),  // XCR1 is not writable
        (0, 1 << 40, false),
    ] {
        let v = fake();
        exit_with(&v, 0, 3);
        let mut cpu = CpuState { xcr0: 1, ..Default::default() };
        cpu.regs.rcx = rcx;
        cpu.regs.rax = val & 0xffff_ffff;
        cpu.regs.rdx = val >> 32;
        handle(&v, 55, &mut cpu);
        if ok {
            assert_eq!(cpu.xcr0, val);
            assert_eq!(v.get(GUEST_RIP), RIP + 3);
        } else {
            assert_eq!(cpu.xcr0, 1, "{rcx} {val:#x}");
            assert_eq!(v.get(ENTRY_INTR_INFO), VALID | (1 << 11) | (3 << 8) | 13);
            assert_eq!(v.get(GUEST_RIP), RIP);
        }
    }
    assert!(rvmx_pure::vmx::exit::cr::xcr0_valid(0xe7, 0xff));
    assert!(!rvmx_pure::vmx::exit::cr::xcr0_valid(0x67, 0xff)); // AVX-512 partial
    assert!(!rvmx_pure::vmx::exit::cr::xcr0_valid(0xe3, 0xff)); // AVX-512 without AVX
    assert!(!rvmx_pure::vmx::exit::cr::xcr0_valid(0x0b, 0xff)); // BNDREGS without BNDCSR
}

// CR0: NW without CD, paging with LME but no PAE, and paging off in
// 64-bit mode are #GP (SDM Vol. 3A 2.5, 10.8.5).
#[test]
fn cr0_mode_switch_faults() {
    let cases: [(u64, u64, u64, u32, u64); 3] = [
        // (old shadow/cr0, efer, cr4, cs ar, new)
        (0x11, 0, 0, 0x9b, (1 << 29) | 0x11),
        (0x11, 1 << 8, 0, 0x9b, (1 << 31) | 0x11),
        ((1 << 31) | 0x11, (1 << 8) | (1 << 10), 0x20, 0xa09b, 0x11),
    ];
    for (old, efer, cr4, ar, new) in cases {
        let v = fake();
        exit_with(&v, 0, 3); // mov cr0, rax
        v.set(GUEST_CR0, old | 0x20);
        v.set(CR0_READ_SHADOW, old);
        v.set(GUEST_IA32_EFER, efer);
        v.set(GUEST_CR4, cr4 | (1 << 13));
        v.set(Seg::Cs.fields().ar, ar);
        let mut cpu = CpuState::default();
        cpu.regs.rax = new;
        handle(&v, 28, &mut cpu);
        assert_eq!(v.get(ENTRY_INTR_INFO), VALID | (1 << 11) | (3 << 8) | 13, "{new:#x}");
        assert_eq!(v.get(CR0_READ_SHADOW), old);
    }
}

// In real mode an exception carries no error code (real-mode delivery
// pushes none; VM entry refuses one with CR0.PE = 0, SDM Vol. 3C 27.2.1.3),
// and a code has 16 bits in protected mode.
#[test]
fn error_code_only_in_protected_mode_and_16_bits() {
    let v = fake();
    v.set(GUEST_CR0, 0x30);
    let mut cpu = CpuState::default();
    event::inject_exception(&v, &mut cpu, 13, Some(0x1234));
    assert_eq!(v.get(ENTRY_INTR_INFO), VALID | (3 << 8) | 13);
    assert!(!v.written(ENTRY_EXCEPTION_ERROR_CODE));
    let v = fake();
    event::inject_exception(&v, &mut cpu, 13, Some(0xabcd_1234));
    assert_eq!(v.get(ENTRY_INTR_INFO), VALID | (1 << 11) | (3 << 8) | 13);
    assert_eq!(v.get(ENTRY_EXCEPTION_ERROR_CODE), 0x1234);
}

// #DB delivery clears DR7.GD (SDM Vol. 3B 18.2.4); a halted guest wakes to
// take a queued event (VM entry refuses most injections in HLT).
#[test]
fn debug_clears_gd_and_events_wake_a_halted_guest() {
    let v = fake();
    v.set(GUEST_DR7, 0x400 | (1 << 13) | 1);
    v.set(GUEST_ACTIVITY_STATE, 1);
    let mut cpu = CpuState::default();
    cpu.events.exception = Some(Exception { vector: 1, error_code: None, payload: Some(1) });
    event::prepare(&v, &mut cpu);
    assert_eq!(v.get(GUEST_DR7), 0x401);
    assert_eq!(v.get(GUEST_ACTIVITY_STATE), 0);
    assert_eq!(cpu.dr6 & 0xf, 1);
}

// After an instruction rvmx completes with RFLAGS.TF set, a single-step
// #DB (BS) waits (the CPU did not execute it: KVM does the same).
#[test]
fn single_step_after_emulated_instruction() {
    let v = fake();
    v.set(GUEST_RFLAGS, 2 | (1 << 8));
    exit_with(&v, 0, 2);
    let mut cpu = CpuState::default();
    cpu.regs.rax = 0;
    assert_eq!(handle(&v, 10, &mut cpu), Next::Resume); // CPUID
    assert_eq!(v.get(GUEST_RIP), RIP + 2);
    assert_eq!(cpu.events.exception, Some(Exception { vector: 1, error_code: None, payload: Some(1 << 14) }));
}

// A #DB payload keeps DR6's reporting bits only: nothing above bit 31 can
// reach MOV to DR6 (it would fault in the host).
#[test]
fn dr6_payload_is_masked() {
    assert_eq!(merge_dr6(0xffff_0ff0, (1 << 40) | 1) >> 32, 0);
    assert_eq!(merge_dr6(u64::MAX, 0) >> 32, 0);
}

// A waiting NMI under STI blocking asks for the interrupt window, not the
// NMI window (the CPU may take an NMI-window exit it cannot inject into).
#[test]
fn nmi_under_sti_uses_the_interrupt_window() {
    let v = fake();
    v.set(PIN_BASED_CONTROLS, VIRTUAL_NMI as u32);
    v.set(GUEST_INTERRUPTIBILITY, 1);
    let mut cpu = CpuState::default();
    cpu.events.nmi = true;
    event::prepare(&v, &mut cpu);
    assert_eq!(v.get(PROC_BASED_CONTROLS) & (IRQ_WINDOW | NMI_WINDOW), IRQ_WINDOW);
    v.set(GUEST_INTERRUPTIBILITY, 0u32);
    v.set(GUEST_RFLAGS, 2);
    event::prepare(&v, &mut cpu);
    assert_eq!(v.get(ENTRY_INTR_INFO), VALID | (2 << 8) | 2);
}
