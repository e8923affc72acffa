// SPDX-License-Identifier: GPL-2.0
//! VM-exit handlers (pure logic: no `kernel` crate, no unsafe). The run
//! loop (`vmx/run.rs`) reads the exit reason once and calls [`handle`],
//! which dispatches to one handler per exit reason. A handler reads and
//! writes the VMCS through [`VmcsAccess`] and the vCPU's [`CpuState`], and
//! says what happens next ([`Next`]); the run loop does the kernel-bound
//! part (publishing the exit record, pinning pages, handing an NMI over).
//!
//! RIP: the dispatcher advances it past the instruction that exited (for
//! exits that report an instruction length, SDM Vol. 3C 28.2.5) unless the
//! handler keeps it (hvpp's model): injecting a fault, an IN that waits for
//! userland's data, an exit passed to userland raw.

pub mod cr;
pub mod debug;
pub mod event;
mod io;
pub mod mmio;
pub mod strio;
pub mod msr;

use crate::vmcs::field::*;
use crate::vmx::caps::RawCaps;
use crate::vmx::cpuid::{answer, Dynamic};
use crate::vmx::entry_check;
use crate::vmx::exit_info::{interruptibility, reason, EptQual, ExitReason, IntrInfo};
use crate::vmx::msr::{GuestCaps, MsrFilter, Msrs};
use crate::vmx::regs::GuestRegs;
use crate::x86::{cr0, cr4, rflags, vector};
use crate::vmcs::field::Seg as SegReg;

pub use io::complete_in;
pub use msr::{complete_msr, PendingMsr};

/// vCPU state outside the VMCS that exit handlers and register ioctls use.
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuState {
    /// General registers but RSP (the stub loads and saves them).
    pub regs: GuestRegs,
    /// CR2 (VM entry and exit do not switch it: the run loop does).
    pub cr2: u64,
    /// CR8 (the task-priority register; every access exits).
    pub cr8: u64,
    /// PKRU (protection-key rights; switched by the run loop when the host
    /// uses protection keys and the guest turned them on). 0 at reset.
    pub pkru: u32,
    /// STAR, LSTAR, CSTAR, FMASK: what SYSCALL in the guest uses (switched
    /// by the run loop while the guest has EFER.SCE). 0 at reset.
    pub syscall: [u64; 4],
    /// IA32_KERNEL_GS_BASE (switched by the run loop).
    pub kernel_gs_base: u64,
    /// An IN waiting for userland's data.
    pub pending_in: Option<PendingIn>,
    /// An INS batch waiting for userland's data.
    pub pending_str_in: Option<strio::PendingStrIn>,
    /// An MMIO access userland is performing.
    pub pending_mmio: Option<mmio::Mmio>,
    /// Events waiting for delivery.
    pub events: event::Events,
    /// An event is in the VM-entry interruption-information field for the
    /// next entry (every exit clears the field, SDM Vol. 3C 25.8.3: a
    /// handler or redelivery sets it again).
    pub injecting: bool,
    /// Userland asked for an exit when the guest can take an interrupt
    /// (`request_interrupt_window` in the run record, read at RUN).
    pub want_irq_window: bool,
    /// Interrupt- or NMI-window exiting is on.
    pub windows: bool,
    /// DR0-DR3 and DR6 (DR7 is in the VMCS). In the CPU only while the
    /// guest owns them: from a MOV DR until the next exit (then MOV DR
    /// exits again), as KVM does.
    pub db: [u64; 4],
    /// DR6.
    pub dr6: u64,
    /// The guest owns the debug registers until the next exit (MOV DR
    /// runs natively).
    pub debug_owned: bool,
    /// The guest's DR7 enables breakpoints: its DR0-3 go into the CPU
    /// before every entry.
    pub breakpoints_on: bool,
    /// The guest has CR4.OSXSAVE (its XCR0 is loaded for it).
    pub osxsave: bool,
    /// Load the PAE PDPTEs from guest memory into the VMCS before the next
    /// entry (an emulated MOV to CR0/CR4 or SET_SREGS changed paging).
    pub load_pdptes: bool,
    /// XCR0 (the guest's, switched while it has CR4.OSXSAVE).
    pub xcr0: u64,
    /// A filtered RDMSR/WRMSR waiting for userland's answer.
    pub pending_msr: Option<PendingMsr>,
    /// The MSRs kept outside the VMCS (vmx/msr.rs); `Msrs::reset(id)` at
    /// creation (the default is vCPU 0's).
    pub msrs: Msrs,
    /// Drop the translations cached for the vCPU's VPID before the next
    /// entry: the guest's paging state changed without the CPU executing
    /// the instruction that would have flushed them (an emulated MOV to
    /// CR0, SET_SREGS), or the vCPU moved to another CPU.
    pub flush_tlb: bool,
}

impl CpuState {
    /// The state after reset (SDM Vol. 3A 11.1.1, Table 11-1): DR6
    /// 0xffff0ff0, XCR0 1 (x87 only); the rest 0.
    pub fn reset() -> Self {
        CpuState { dr6: crate::x86::dr::DR6_FIXED_1, xcr0: crate::x86::xcr0::X87, ..Default::default() }
    }
}

/// An IN reported to userland, completed on the next entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PendingIn {
    /// Access size: 1, 2 or 4 bytes.
    pub size: u8,
    /// The instruction's length, to step over it once complete.
    pub len: u64,
}

/// What the handlers need to know besides the VMCS and the vCPU state.
pub struct Env<'a> {
    /// The CPU's VMX capabilities.
    pub caps: &'a RawCaps,
    /// The vCPU's id (its initial APIC ID).
    pub vcpu_id: u32,
    /// CPUID on the host: (leaf, subleaf) -> [EAX, EBX, ECX, EDX].
    pub host_cpuid: fn(u32, u32) -> [u32; 4],
    /// The guest's CPUID table.
    pub cpuid: &'a [crate::vmx::cpuid::CpuidEntry],
    /// CR4 bits the guest may not set (its CPUID does not offer them).
    pub cr4_reserved: u64,
    /// XCR0 bits the guest may set (0: no XSAVE for the guest).
    pub xcr0_allowed: u64,
    /// The guest's MAXPHYADDR and 1-GiB page support, for page walks.
    pub maxphyaddr: u8,
    /// 1-GiB pages.
    pub gbpages: bool,
    /// What the guest's CPUID offers, for its MSRs.
    pub guest: GuestCaps,
    /// RDTSC on the host.
    pub rdtsc: fn() -> u64,
    /// The MSRs userland handles (the VM's filter).
    pub msr_filter: &'a MsrFilter,
}

/// What the run loop does after an exit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// Enter the guest again.
    Resume,
    /// Return to userland with this exit record.
    ToUser(UserExit),
    /// An EPT violation at an unmapped `gpa`: map it if it is guest memory
    /// (this may sleep: interrupts on), else report MMIO ([`mmio`]).
    Fault {
        /// The guest-physical address.
        gpa: u64,
        /// The raw EPT-violation qualification.
        qualification: u64,
    },
    /// INS or OUTS: the run loop moves the data (guest memory may only be
    /// touched with interrupts on), RIP stays until it is complete.
    StringIo(strio::StrExit),
    /// An NMI for the host arrived while the guest ran: hand it over, then
    /// enter again.
    HostNmi,
    /// A machine check hit while the guest ran: the host's handler deals
    /// with it (KVM's kvm_machine_check), then the guest runs on.
    HostMachineCheck,
    /// A split-lock #AC (the guest did not enable alignment checks): the
    /// host's policy decides (warn, or SIGBUS to the VMM), then the guest
    /// runs on. `rip` is where it happened.
    SplitLock {
        /// The guest's RIP.
        rip: u64,
    },
}

/// The exit record for userland, before it is put in the ABI's
/// `struct rvmx_run` (uapi/mod.rs does that).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserExit {
    /// INS or OUTS: `count` elements of `size` bytes in the data area.
    StrIo {
        /// INS (true) or OUTS.
        is_in: bool,
        /// 1, 2 or 4 bytes.
        size: u8,
        /// The port.
        port: u16,
        /// Elements.
        count: u32,
    },
    /// IN or OUT; `data` is the value of an OUT.
    Io {
        /// IN (true) or OUT.
        is_in: bool,
        /// 1, 2 or 4 bytes.
        size: u8,
        /// The port.
        port: u16,
        /// OUT: the value written; IN: 0.
        data: u64,
    },
    /// HLT (RIP is past it).
    Hlt,
    /// A RDMSR or WRMSR userland filtered; RIP stays at it until the next
    /// RUN completes it ([`complete_msr`]).
    Msr {
        /// WRMSR (true) or RDMSR.
        write: bool,
        /// The MSR (ECX).
        index: u32,
        /// WRMSR: the value (EDX:EAX); RDMSR: 0.
        data: u64,
    },
    /// An access outside every memory region: `size` bytes at `gpa`
    /// (emulated, `write` says which way), or, with `size` 0, an
    /// instruction rvmx did not decode: its first `insn_len` bytes.
    Mmio {
        /// The guest-physical address.
        gpa: u64,
        /// The raw EPT-violation qualification (0 for the later accesses
        /// of one instruction).
        qualification: u64,
        /// 1 to 8; 0: not decoded.
        size: u8,
        /// A write.
        write: bool,
        /// A write's data.
        data: u64,
        /// The instruction's first bytes (not decoded).
        insn: [u8; 15],
        /// How many.
        insn_len: u8,
    },
    /// Triple fault.
    Shutdown,
    /// The guest can take an external interrupt now (userland asked).
    IrqWindow,
    /// Monitor trap flag: one instruction done.
    Mtf,
    /// PAUSE (RIP is past it).
    Pause,
    /// VM entry failed.
    FailEntry {
        /// Exit reason (bit 31 set), or 0 when the instruction failed.
        reason: u32,
        /// Nonzero when VMLAUNCH/VMRESUME failed as an instruction.
        vm_instruction_error: u32,
        /// The exit qualification.
        qualification: u64,
        /// Which field broke which rule, in words.
        account: Account,
    },
    /// Any other exit, raw (SDM Vol. 3C 28.2).
    Vmx {
        /// Exit reason.
        reason: u32,
        /// VM-exit instruction length.
        instruction_length: u32,
        /// Exit qualification.
        qualification: u64,
        /// Guest-physical address.
        guest_physical_address: u64,
        /// Guest-linear address.
        guest_linear_address: u64,
        /// VM-exit interruption information.
        intr_info: u32,
        /// VM-exit instruction information.
        instruction_info: u32,
    },
}

/// Why a VM entry failed, in words: a subject (the field, or what the
/// VM-instruction error means) and, where known, the rule.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Account {
    /// The field or the error.
    pub subject: &'static str,
    /// The rule broken, with its SDM section; may be empty.
    pub rule: &'static str,
}

impl Account {
    /// Writes "subject: rule" into `out`, cut to fit, NUL-terminated.
    pub fn write_to(&self, out: &mut [u8]) {
        let sep = if self.rule.is_empty() { "" } else { ": " };
        let text = [self.subject, sep, self.rule];
        let mut n = 0;
        for b in text.iter().flat_map(|p| p.bytes()) {
            if n + 1 >= out.len() {
                break;
            }
            out[n] = b;
            n += 1;
        }
        if let Some(end) = out.get_mut(n) {
            *end = 0;
        }
    }
}

/// One exit being handled.
struct Exit<'a, V: VmcsAccess> {
    v: &'a V,
    cpu: &'a mut CpuState,
    env: &'a Env<'a>,
    why: ExitReason,
    /// Advance RIP past the instruction when the handler is done.
    advance: bool,
}

/// Handles the exit that just happened (`why`, read once by the run loop).
pub fn handle<V: VmcsAccess>(v: &V, why: ExitReason, cpu: &mut CpuState, env: &Env<'_>) -> Next {
    if why.entry_failed() {
        return Next::ToUser(entry_failure(v, why, env));
    }
    // The exit cleared the interruption-information field (SDM Vol. 3C
    // 25.8.3): an event whose delivery it interrupted goes in again.
    cpu.injecting = false;
    event::redeliver(v, cpu);
    let mut x = Exit { v, cpu, env, why, advance: why.has_instruction_length() };
    let next = match why.basic() {
        reason::EXCEPTION_NMI => x.exception_or_nmi(),
        reason::EXTERNAL_INTERRUPT | reason::PREEMPTION_TIMER | reason::NMI_WINDOW => Next::Resume,
        reason::INTERRUPT_WINDOW => x.interrupt_window(),
        reason::MTF => Next::ToUser(UserExit::Mtf),
        reason::PAUSE => Next::ToUser(UserExit::Pause),
        reason::MOV_DR => debug::mov_dr(&mut x),
        reason::XSETBV => cr::xsetbv(&mut x),
        reason::TRIPLE_FAULT => Next::ToUser(UserExit::Shutdown),
        reason::CPUID => x.cpuid(),
        reason::HLT => Next::ToUser(UserExit::Hlt),
        // Guest memory is write-back and no device does DMA that bypasses
        // the caches: nothing to write back (KVM skips it too).
        reason::WBINVD => Next::Resume,
        reason::IO => io::handle(&mut x),
        reason::CR_ACCESS => cr::handle(&mut x),
        reason::RDMSR => msr::rdmsr(&mut x),
        reason::WRMSR => msr::wrmsr(&mut x),
        reason::EPT_VIOLATION => x.ept_violation(),
        _ if why.is_vmx_instruction() => x.inject(IntrInfo::exception(vector::UD, false)),
        _ => x.unhandled(),
    };
    if x.advance {
        skip_instruction(v, cpu, v.read(EXIT_INSTRUCTION_LENGTH).into());
    }
    next
}

impl<V: VmcsAccess> Exit<'_, V> {
    /// The handler leaves RIP where it is.
    fn keep_rip(&mut self) {
        self.advance = false;
    }

    /// General register number `n` (RSP from the VMCS).
    fn gpr(&mut self, n: u8) -> u64 {
        match self.cpu.regs.slot(n) {
            Some(r) => *r,
            None => self.v.read(GUEST_RSP),
        }
    }

    /// Sets general register number `n`.
    fn set_gpr(&mut self, n: u8, val: u64) {
        match self.cpu.regs.slot(n) {
            Some(r) => *r = val,
            None => self.v.write(GUEST_RSP, val),
        }
    }

    /// Injects a hardware exception on the next entry (SDM Vol. 3C 27.6),
    /// with error code 0 where the vector has one; RIP stays at the
    /// faulting instruction.
    fn inject(&mut self, info: IntrInfo) -> Next {
        let code = info.has_error_code().then_some(0);
        event::inject_exception(self.v, self.cpu, info.vector(), code);
        self.keep_rip();
        Next::Resume
    }

    /// The guest can take an interrupt: one waiting goes in at the next
    /// entry (`event::prepare`); else userland asked to know.
    fn interrupt_window(&mut self) -> Next {
        if self.cpu.events.interrupt.is_some() || !self.cpu.want_irq_window {
            return Next::Resume;
        }
        Next::ToUser(UserExit::IrqWindow)
    }

    /// The exceptions that exit (`EXCEPTION_BITMAP` in vmcs/setup.rs): #MC
    /// and #AC, always intercepted as KVM does; and NMIs for the host.
    fn exception_or_nmi(&mut self) -> Next {
        let info = IntrInfo(self.v.read(EXIT_INTR_INFO));
        if info.is_nmi() {
            return Next::HostNmi;
        }
        if info.is_hw_exception(vector::MC) {
            return Next::HostMachineCheck;
        }
        if info.vector() == vector::DB && info.valid() {
            return debug::debug_exception(self, info);
        }
        if info.is_hw_exception(vector::AC) {
            // The guest's own alignment check (CR0.AM, RFLAGS.AC, CPL 3;
            // SDM Vol. 3A 6.15, "#AC") goes back to it; any other #AC is a
            // split-lock trap the host set up (KVM's handle_exception_nmi).
            let cpl = (self.v.read(SegReg::Ss.fields().ar) >> 5) & 3;
            let guest_ac = self.v.read(GUEST_CR0) & cr0::AM != 0 && self.v.read(GUEST_RFLAGS) & rflags::AC != 0 && cpl == 3;
            if guest_ac {
                return self.inject(IntrInfo::exception(vector::AC, true));
            }
            return Next::SplitLock { rip: self.v.read(GUEST_RIP) };
        }
        self.unhandled()
    }

    /// CPUID: the vCPU's table, with the fields that follow its state
    /// (OSXSAVE, OSPKE, APIC ID, XSAVE sizes). CPUID writes 32-bit
    /// registers, so the upper halves become zero.
    fn cpuid(&mut self) -> Next {
        let (leaf, sub) = (self.cpu.regs.rax as u32, self.cpu.regs.rcx as u32);
        // Only OSXSAVE (host-owned: tracked) and PKE (leaf 7 only) count.
        let osxsave = if self.cpu.osxsave { cr4::OSXSAVE } else { 0 };
        let pke = if leaf == 7 { self.v.read(GUEST_CR4) & cr4::PKE } else { 0 };
        let d = Dynamic { cr4: osxsave | pke, xcr0: self.cpu.xcr0, apic_id: self.env.vcpu_id, apic_enabled: false };
        let r = &mut self.cpu.regs;
        let out = answer(self.env.cpuid, leaf, sub, &d);
        r.rax = out[0].into();
        r.rbx = out[1].into();
        r.rcx = out[2].into();
        r.rdx = out[3].into();
        Next::Resume
    }

    /// An EPT violation: a missing page (mapped by the run loop, or MMIO),
    /// or a write to a read-only region (emulated as MMIO). rvmx maps
    /// other pages RWX and read-only ones RX, so any other violation on a
    /// mapped page is not one mapping would cure.
    fn ept_violation(&mut self) -> Next {
        let qualification = self.v.read(EXIT_QUALIFICATION);
        let q = EptQual(qualification);
        if q.mapped() && !q.write() {
            return self.unhandled();
        }
        Next::Fault { gpa: self.v.read(GUEST_PHYSICAL_ADDRESS), qualification }
    }

    /// Any other exit: userland gets the raw VMX exit information, with RIP
    /// at the instruction.
    fn unhandled(&mut self) -> Next {
        self.keep_rip();
        let v = self.v;
        Next::ToUser(UserExit::Vmx {
            reason: self.why.0,
            instruction_length: v.read(EXIT_INSTRUCTION_LENGTH),
            qualification: v.read(EXIT_QUALIFICATION),
            guest_physical_address: v.read(GUEST_PHYSICAL_ADDRESS),
            guest_linear_address: v.read(GUEST_LINEAR_ADDRESS),
            intr_info: v.read(EXIT_INTR_INFO),
            instruction_info: v.read(EXIT_INSTRUCTION_INFO),
        })
    }
}

/// Steps over an instruction rvmx completed for the guest: RIP on, and the
/// single-step trap RFLAGS.TF asks for (event::single_step).
pub fn skip_instruction<V: VmcsAccess>(v: &V, cpu: &mut CpuState, len: u64) {
    advance_rip(v, len);
    event::single_step(cpu, v.read(GUEST_RFLAGS));
}

/// RIP `len` bytes on; blocking by STI or MOV SS ends with the instruction
/// (SDM Vol. 3C 25.4.2, interruptibility state bits 1:0).
pub fn advance_rip<V: VmcsAccess>(v: &V, len: u64) {
    v.write(GUEST_RIP, v.read(GUEST_RIP).wrapping_add(len));
    let shadow = interruptibility::STI | interruptibility::MOV_SS;
    let intr = v.read(GUEST_INTERRUPTIBILITY);
    if intr & shadow != 0 {
        v.write(GUEST_INTERRUPTIBILITY, intr & !shadow);
    }
}

/// A guest access outside every memory region, as emulation left it
/// (`mmio::Outcome::Exit` or `Raw`).
pub fn mmio(gpa: u64, qualification: u64, out: &mmio::Outcome) -> Option<UserExit> {
    match *out {
        mmio::Outcome::Exit { gpa, size, write, data } => {
            Some(UserExit::Mmio { gpa, qualification, size, write, data, insn: [0; 15], insn_len: 0 })
        }
        mmio::Outcome::Raw { bytes, len } => {
            Some(UserExit::Mmio { gpa, qualification, size: 0, write: false, data: 0, insn: bytes, insn_len: len })
        }
        _ => None,
    }
}

/// VM entry failed with an exit (reason bit 31): for invalid guest state,
/// which field broke which rule (the auditor in `entry_check.rs`).
fn entry_failure<V: VmcsAccess>(v: &V, why: ExitReason, env: &Env<'_>) -> UserExit {
    let account = if why.basic() == reason::INVALID_GUEST_STATE {
        let width = entry_check::maxphyaddr(env.host_cpuid);
        match entry_check::check(&entry_check::snapshot(v, env.caps, width)) {
            Some(f) => Account { subject: f.field, rule: f.rule },
            None => Account { subject: "invalid guest state; no rule rvmx checks is broken", rule: "" },
        }
    } else if why.basic() == reason::MACHINE_CHECK_ENTRY {
        Account { subject: "a machine-check event during VM entry (handed to the host)", rule: "SDM Vol. 3C 27.9" }
    } else {
        Account::default()
    };
    UserExit::FailEntry { reason: why.0, vm_instruction_error: 0, qualification: v.read(EXIT_QUALIFICATION), account }
}

/// VMLAUNCH/VMRESUME failed as an instruction (VMfailValid) with this
/// VM-instruction error; for invalid control fields (7) or host-state
/// fields (8), which field broke which rule (SDM Vol. 3C 27.2).
pub fn entry_error<V: VmcsAccess>(v: &V, env: &Env<'_>, vm_instruction_error: u32) -> UserExit {
    let err = vm_instruction_error;
    let found = if err == 7 || err == 8 {
        let c = entry_check::snapshot_controls(v, env.caps, entry_check::maxphyaddr(env.host_cpuid));
        if err == 7 {
            entry_check::check_controls(&c, env.caps)
        } else {
            entry_check::check_host(&entry_check::snapshot_host(v, env.caps), &c)
        }
    } else {
        None
    };
    let account = match found {
        Some(f) => Account { subject: f.field, rule: f.rule },
        None if err == 7 || err == 8 => {
            Account { subject: entry_check::vm_instruction_error(err), rule: "no rule rvmx checks is broken" }
        }
        None => Account { subject: entry_check::vm_instruction_error(err), rule: "" },
    };
    UserExit::FailEntry { reason: 0, vm_instruction_error: err, qualification: 0, account }
}
