//! The exit dispatcher (`vmx::exit::handle`): CPUID, HLT, RIP advance,
//! exits that resume or go to userland, VMX instructions, EPT violations
//! and failed entries. Run against a fake VMCS.

mod common;

use common::*;
use rvmx_pure::vmcs::field::*;
use rvmx_pure::vmx::exit::{self, Account, CpuState, Next, UserExit};

const RIP: u64 = 0x7c00;

/// A fake at RIP 0x7c00 for an exit with this qualification and length.
fn fake(qualification: u64, len: u32) -> FakeVmcs {
    let v = FakeVmcs::new();
    v.set(GUEST_RIP, RIP);
    exit_with(&v, qualification, len);
    v
}

// CPUID (SDM Vol. 2A CPUID; Vol. 3C 26.1.2: CPUID always exits): the
// guest gets the vCPU's table's answer (the host's leaf filtered), the upper halves of
// RAX/RBX/RCX/RDX are zeroed (32-bit results, SDM Vol. 1 3.4.1.1), RIP
// moves past the instruction.
#[test]
fn cpuid_fills_registers_from_filtered_host_leaf() {
    let v = fake(0, 2);
    let mut cpu = CpuState::default();
    cpu.regs.rax = 0xdead_beef_0000_0001; // leaf 1
    cpu.regs.rcx = 0xffff_ffff_0000_0000; // subleaf 0
    cpu.regs.rbx = 0x1111_1111_2222_2222;
    cpu.regs.rdx = 0x3333_3333_4444_4444;
    cpu.regs.rsi = 0x5555;
    assert_eq!(handle(&v, 10, &mut cpu), Next::Resume);
    let d = rvmx_pure::vmx::cpuid::Dynamic { cr4: 0, xcr0: 0, apic_id: VCPU_ID, apic_enabled: false };
    let want = rvmx_pure::vmx::cpuid::answer(test_cpuid(), 1, 0, &d);
    let got = [cpu.regs.rax, cpu.regs.rbx, cpu.regs.rcx, cpu.regs.rdx];
    assert_eq!(got, want.map(u64::from));
    // Concretely: VMX (ECX bit 5) hidden, hypervisor (bit 31) shown, the
    // APIC ID in EBX[31:24] is the vCPU's, not the host's 0x3c.
    assert_eq!(cpu.regs.rcx & (1 << 5), 0);
    assert_ne!(cpu.regs.rcx & (1 << 31), 0);
    assert_eq!(cpu.regs.rbx >> 24, u64::from(VCPU_ID));
    assert_eq!(cpu.regs.rbx & 0xff_ffff, 0x10_0800);
    for r in got {
        assert_eq!(r >> 32, 0, "upper half not zeroed: {r:#x}");
    }
    assert_eq!(cpu.regs.rsi, 0x5555, "other registers untouched");
    assert_eq!(v.get(GUEST_RIP), RIP + 2);
}

// CPUID leaf 0x4000_0000: the hypervisor vendor leaf, built from nothing
// the host says; the subleaf in ECX reaches host_cpuid.
#[test]
fn cpuid_hypervisor_leaf_and_subleaf_passthrough() {
    let v = fake(0, 2);
    let mut cpu = CpuState::default();
    cpu.regs.rax = 0x4000_0000;
    handle(&v, 10, &mut cpu);
    let sig = |r: u64| (r as u32).to_le_bytes();
    assert_eq!(cpu.regs.rax, 0x4000_0000);
    assert_eq!((&sig(cpu.regs.rbx), &sig(cpu.regs.rcx), &sig(cpu.regs.rdx)), (b"rvmx", b"rvmx", b"rvmx"));

    // A leaf passed as is (deterministic cache parameters): exactly the
    // host's answer for (leaf, subleaf).
    let v = fake(0, 2);
    let mut cpu = CpuState::default();
    cpu.regs.rax = 4;
    cpu.regs.rcx = 0x0000_0001_0000_0003;
    handle(&v, 10, &mut cpu);
    let host = fake_host_cpuid(4, 3);
    assert_eq!([cpu.regs.rax, cpu.regs.rbx, cpu.regs.rcx, cpu.regs.rdx], host.map(u64::from));
}

// Advancing RIP ends blocking by STI and by MOV SS (interruptibility bits
// 1:0, SDM Vol. 3C 25.4.2) but not blocking by SMI (bit 2) or NMI (bit 3).
#[test]
fn rip_advance_clears_sti_and_mov_ss_blocking_only() {
    for (before, after) in [(0b1101u32, 0b1100u32), (0b1010, 0b1000), (0b0001, 0)] {
        let v = fake(0, 3);
        v.set(GUEST_INTERRUPTIBILITY, before);
        handle(&v, 12, &mut CpuState::default());
        assert_eq!(v.get(GUEST_INTERRUPTIBILITY), u64::from(after), "{before:#b}");
        assert_eq!(v.get(GUEST_RIP), RIP + 3);
    }
}

// RIP is a 64-bit register: the advance wraps instead of overflowing.
#[test]
fn rip_advance_wraps() {
    let v = fake(0, 3);
    v.set(GUEST_RIP, u64::MAX - 1);
    assert_eq!(handle(&v, 12, &mut CpuState::default()), Next::ToUser(UserExit::Hlt));
    assert_eq!(v.get(GUEST_RIP), 1);
    // The public helper the run loop also uses.
    exit::advance_rip(&v, u64::MAX);
    assert_eq!(v.get(GUEST_RIP), 0);
}

// HLT (reason 12) goes to userland with RIP already past the instruction.
#[test]
fn hlt_goes_to_user_with_rip_advanced() {
    let v = fake(0, 1);
    assert_eq!(handle(&v, 12, &mut CpuState::default()), Next::ToUser(UserExit::Hlt));
    assert_eq!(v.get(GUEST_RIP), RIP + 1);
}

// Triple fault (reason 2) is a shutdown; no instruction to step over
// (SDM Vol. 3C 28.2.5: no instruction length for it).
#[test]
fn triple_fault_is_shutdown_without_rip_advance() {
    let v = fake(0, 5);
    assert_eq!(handle(&v, 2, &mut CpuState::default()), Next::ToUser(UserExit::Shutdown));
    assert_eq!(v.get(GUEST_RIP), RIP);
    assert!(v.all_writes().is_empty(), "{:x?}", v.all_writes());
}

// External interrupts (1) and the preemption timer (52) only give the host
// a chance to run: resume, nothing in the guest changes.
#[test]
fn external_interrupt_and_preemption_timer_resume() {
    for reason in [1, 52] {
        let v = fake(0, 4);
        let mut cpu = CpuState::default();
        cpu.regs.rax = 0x42;
        assert_eq!(handle(&v, reason, &mut cpu), Next::Resume, "reason {reason}");
        assert_eq!(v.get(GUEST_RIP), RIP, "reason {reason}");
        assert!(v.all_writes().is_empty(), "reason {reason}: {:x?}", v.all_writes());
        assert_eq!(cpu.regs.rax, 0x42);
    }
}

// Exit reason 0 with an NMI in the exit interruption information (valid,
// type 2, SDM Vol. 3C 25.9.2) is the host's NMI.
#[test]
fn nmi_goes_to_host() {
    let v = fake(0, 0);
    v.set_info(EXIT_INTR_INFO, (1 << 31) | (2 << 8) | 2);
    assert_eq!(handle(&v, 0, &mut CpuState::default()), Next::HostNmi);
    assert_eq!(v.get(GUEST_RIP), RIP);
    // The same vector and type without the valid bit is not an NMI.
    let v = fake(0, 0);
    v.set_info(EXIT_INTR_INFO, (2 << 8) | 2);
    assert!(matches!(handle(&v, 0, &mut CpuState::default()), Next::ToUser(UserExit::Vmx { .. })));
}

// Any other exception exit goes to userland raw, every exit-information
// field copied, RIP at the faulting instruction.
#[test]
fn other_exception_goes_to_user_raw() {
    let v = fake(0xdead_b000, 7);
    let pf = (1 << 31) | (1 << 11) | (3 << 8) | 14;
    v.set_info(EXIT_INTR_INFO, pf);
    v.set_info(GUEST_PHYSICAL_ADDRESS, 0x1234_5000);
    v.set_info(GUEST_LINEAR_ADDRESS, 0xffff_8000_dead_b000);
    v.set_info(EXIT_INSTRUCTION_INFO, 0x55aa);
    let next = handle(&v, 0, &mut CpuState::default());
    assert_eq!(
        next,
        Next::ToUser(UserExit::Vmx {
            reason: 0,
            instruction_length: 7,
            qualification: 0xdead_b000,
            guest_physical_address: 0x1234_5000,
            guest_linear_address: 0xffff_8000_dead_b000,
            intr_info: pf,
            instruction_info: 0x55aa,
        })
    );
    assert_eq!(v.get(GUEST_RIP), RIP);
}

// VMX instructions are not virtualized: the guest gets #UD (vector 6,
// hardware exception, no error code; SDM Vol. 3C 27.6.1) at the
// instruction, as on a CPU without VMX.
#[test]
fn vmx_instructions_get_ud() {
    for reason in [18, 19, 24, 27, 50, 53, 59] {
        let v = fake(0, 3);
        assert_eq!(handle(&v, reason, &mut CpuState::default()), Next::Resume, "reason {reason}");
        // Bit 31 valid, bits 10:8 type, bit 11 error code, bits 7:0 vector.
        let info = v.get(ENTRY_INTR_INFO);
        assert_eq!(info >> 31, 1, "reason {reason}");
        assert_eq!(((info >> 8) & 7, info & 0xff, (info >> 11) & 1), (3, 6, 0), "reason {reason}");
        assert!(!v.written(ENTRY_EXCEPTION_ERROR_CODE), "reason {reason}");
        assert_eq!(v.get(GUEST_RIP), RIP, "reason {reason}");
    }
}

// An unhandled instruction exit (MWAIT, 36) goes raw to userland, RIP kept.
#[test]
fn unhandled_instruction_exit_keeps_rip() {
    let v = fake(0, 2);
    match handle(&v, 36, &mut CpuState::default()) {
        Next::ToUser(UserExit::Vmx { reason, instruction_length, .. }) => {
            assert_eq!((reason, instruction_length), (36, 2));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(v.get(GUEST_RIP), RIP);
}

// EPT violation (48) with bits 5:3 of the qualification zero: the address
// was not mapped at all (SDM Vol. 3C Table 28-7): a fault to map.
#[test]
fn ept_violation_on_unmapped_page_is_fault() {
    let v = fake(0x182, 0); // write access, nothing allowed
    v.set_info(GUEST_PHYSICAL_ADDRESS, 0xfee0_0030);
    let next = handle(&v, 48, &mut CpuState::default());
    assert_eq!(next, Next::Fault { gpa: 0xfee0_0030, qualification: 0x182 });
    assert_eq!(v.get(GUEST_RIP), RIP);
    assert!(v.all_writes().is_empty());
}

// EPT violation on a mapped page (some of bits 5:3 set) by a read or a
// fetch: mapping would not help, so userland gets it raw. A write to a
// mapped page goes to the run loop (a read-only region: MMIO).
#[test]
fn ept_violation_on_mapped_page_is_raw() {
    let v = fake(0x0a, 0);
    v.set_info(GUEST_PHYSICAL_ADDRESS, 0x1000);
    assert_eq!(handle(&v, 48, &mut CpuState::default()), Next::Fault { gpa: 0x1000, qualification: 0x0a });
    for q in [0x09, 0x11, 0x24] {
        let v = fake(q, 0);
        v.set_info(GUEST_PHYSICAL_ADDRESS, 0x1000);
        match handle(&v, 48, &mut CpuState::default()) {
            Next::ToUser(UserExit::Vmx { reason, qualification, guest_physical_address, .. }) => {
                assert_eq!((reason, qualification, guest_physical_address), (48, q, 0x1000));
            }
            other => panic!("qualification {q:#x}: {other:?}"),
        }
    }
}

/// The reset state, unrestricted guest on, then `cr0` in GUEST_CR0.
fn broken_guest(cr0: u64) -> FakeVmcs {
    let v = FakeVmcs::new();
    rvmx_pure::vmcs::reset::reset_guest(&v);
    v.set(PROC_BASED_CONTROLS, rvmx_pure::vmx::caps::proc::SECONDARY);
    v.set(PROC_BASED_CONTROLS2, rvmx_pure::vmx::caps::proc2::UNRESTRICTED_GUEST);
    v.set(GUEST_CR0, cr0);
    v.clear_log();
    exit_with(&v, 3, 4);
    v
}

// A VM entry failing with invalid guest state (reason 33 | bit 31, SDM
// Vol. 3C 27.8) reports the field and the rule it broke (27.3.1.1: PG
// needs PE), and nothing in the VMCS changes: no RIP advance.
#[test]
fn failed_entry_names_field_and_rule() {
    let v = broken_guest(0x8000_0030); // PG | NE, PE clear
    let rip = v.get(GUEST_RIP);
    let reason = 33 | (1 << 31);
    let next = handle(&v, reason, &mut CpuState::default());
    let Next::ToUser(UserExit::FailEntry { reason: r, vm_instruction_error, qualification, account }) = next else {
        panic!("{next:?}");
    };
    assert_eq!((r, vm_instruction_error, qualification), (reason, 0, 3));
    assert_eq!(account.subject, "GUEST_CR0");
    assert!(account.rule.contains("PG") && account.rule.contains("PE"), "{}", account.rule);
    assert!(account.rule.contains("27.3.1.1"), "{}", account.rule);
    assert_eq!(v.get(GUEST_RIP), rip);
    assert!(v.all_writes().is_empty(), "{:x?}", v.all_writes());
}

// A guest state that breaks none of the checked rules still gets an
// account saying so; other failure reasons (34: MSR loading) get none.
#[test]
fn failed_entry_without_known_rule() {
    let v = broken_guest(0x6000_0030); // the valid reset CR0
    let Next::ToUser(UserExit::FailEntry { account, .. }) = handle(&v, 33 | (1 << 31), &mut CpuState::default()) else {
        panic!()
    };
    assert!(account.subject.contains("no rule"), "{account:?}");
    assert_eq!(account.rule, "");
    let v = broken_guest(0x8000_0030);
    let Next::ToUser(UserExit::FailEntry { reason, account, .. }) = handle(&v, 34 | (1 << 31), &mut CpuState::default()) else {
        panic!()
    };
    assert_eq!(reason, 34 | (1 << 31));
    assert_eq!(account, Account::default());
}

// Account::write_to: "subject: rule", cut to the buffer, always
// NUL-terminated (a C string for the ABI).
#[test]
fn account_write_to_truncates_and_terminates() {
    let a = Account { subject: "GUEST_CR0", rule: "PG without PE" };
    let mut buf = [0xffu8; 16];
    a.write_to(&mut buf);
    assert_eq!(&buf, b"GUEST_CR0: PG w\0");

    let mut big = [0xffu8; 64];
    a.write_to(&mut big);
    let end = big.iter().position(|&b| b == 0).unwrap();
    assert_eq!(&big[..end], b"GUEST_CR0: PG without PE");

    // No rule: no separator.
    let mut big = [0xffu8; 64];
    Account { subject: "only", rule: "" }.write_to(&mut big);
    assert_eq!(&big[..5], b"only\0");

    // Degenerate buffers: one byte holds just the NUL; none is left alone.
    let mut one = [0xffu8; 1];
    a.write_to(&mut one);
    assert_eq!(one, [0]);
    a.write_to(&mut []);
}

// VMLAUNCH/VMRESUME failing as an instruction (VMfailValid, SDM Vol. 3C
// 31.4): errors 7 and 8 name the broken control or host field (an empty
// VMCS lacks the primary controls' default1 bits and the host CR0's
// fixed bits); other errors are named in words.
#[test]
fn entry_error_names_the_vm_instruction_error() {
    let v = FakeVmcs::new();
    let UserExit::FailEntry { reason, vm_instruction_error, qualification, account } = exit::entry_error(&v, &env(), 7) else {
        panic!()
    };
    assert_eq!((reason, vm_instruction_error, qualification), (0, 7, 0));
    assert_eq!(account.subject, "CPU_BASED_VM_EXEC_CONTROL", "{account:?}");
    let UserExit::FailEntry { account, .. } = exit::entry_error(&v, &env(), 8) else { panic!() };
    assert_eq!(account.subject, "HOST_CR0", "{account:?}");
    let UserExit::FailEntry { account, .. } = exit::entry_error(&v, &env(), 5) else { panic!() };
    assert_eq!(account, Account { subject: "VMRESUME with non-launched VMCS", rule: "" });
}

// The fake refuses writes to VM-exit information fields (read-only to
// VMWRITE, SDM Vol. 3C 25.11.2): the guard the other tests rely on.
#[test]
#[should_panic(expected = "VM-exit information")]
fn fake_rejects_exit_information_writes() {
    let v = FakeVmcs::new();
    v.write_raw(EXIT_QUALIFICATION.field(), 1);
}
