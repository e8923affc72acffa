// SPDX-License-Identifier: GPL-2.0
//! Events for the guest (pure logic): exceptions, NMIs and external
//! interrupts queued by userland or by exit handlers, delivered through the
//! VM-entry interruption-information field when the guest can take them
//! (SDM Vol. 3C 27.6), with interrupt- and NMI-window exiting when it cannot
//! yet (25.6.2); and the event whose delivery an exit interrupted
//! (IDT-vectoring information, 28.2.4), delivered again, never lost.

use super::CpuState;
use crate::vmcs::field::*;
use crate::vmx::caps::{pin, proc};
use crate::vmx::exit_info::{interruptibility as blocking, IntrInfo, INTR_TYPE_EXTERNAL, INTR_TYPE_HW_EXCEPTION, INTR_TYPE_NMI};
use crate::x86::{cr0, dr, rflags, vector};

/// An exception waiting for delivery.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Exception {
    /// The vector (0..=31).
    pub vector: u8,
    /// The error code, for the vectors that push one.
    pub error_code: Option<u32>,
    /// #PF: the faulting address (CR2); #DB: DR6 bits in the format of the
    /// pending-debug-exceptions field (B0-B3, BD, BS, RTM set when active).
    pub payload: Option<u64>,
}

/// Events not delivered yet.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Events {
    /// One exception (a second one while it waits is refused: userland
    /// gets EBUSY).
    pub exception: Option<Exception>,
    /// An NMI.
    pub nmi: bool,
    /// An external interrupt's vector.
    pub interrupt: Option<u8>,
}

/// Whether `vector` pushes an error code (SDM Vol. 3A 6.15): #DF, #TS, #NP,
/// #SS, #GP, #PF, #AC, #CP.
pub const fn has_error_code(vector: u8) -> bool {
    matches!(vector, 8 | 10..=14 | 17 | 21)
}

/// Whether the guest can take an external interrupt now: RFLAGS.IF set,
/// no STI or MOV-SS blocking (SDM Vol. 3C 25.4.2, 27.3.1.5).
pub fn interrupt_allowed<V: VmcsAccess>(v: &V) -> bool {
    v.read(GUEST_RFLAGS) & rflags::IF != 0 && v.read(GUEST_INTERRUPTIBILITY) & (blocking::STI | blocking::MOV_SS) == 0
}

/// Puts a #DB payload into the guest's DR6 as delivery would (SDM Vol. 3B
/// 18.2.3: B0-B3 are replaced, the other bits accumulate; RTM and BLD read
/// as 1 when inactive; bit 12 is reserved in DR6).
pub fn merge_dr6(dr6: u64, payload: u64) -> u64 {
    // DR6 has 32 bits: a 1 above makes MOV to DR6 fault (SDM Vol. 2A MOV DR).
    let payload = payload & dr::DB_PAYLOAD;
    let mut d = ((dr6 & 0xffff_ffff) & !dr::DR6_TRAP_BITS) | dr::DR6_FIXED_1 | payload;
    d ^= payload & dr::DR6_ACTIVE_LOW;
    d & !(1 << 12)
}

/// Before an entry: delivers the most urgent event the guest can take now
/// (exception, then NMI, then interrupt), unless an event is already being
/// injected, and turns interrupt- and NMI-window exiting on for what must
/// wait or for userland's request (`cpu.want_irq_window`).
pub fn prepare<V: VmcsAccess>(v: &V, cpu: &mut CpuState) {
    let want_window = cpu.want_irq_window;
    let pending = cpu.events.exception.is_some() || cpu.events.nmi || cpu.events.interrupt.is_some();
    if !pending && !want_window && !cpu.windows {
        return;
    }
    if !cpu.injecting {
        if let Some(e) = cpu.events.exception.take() {
            wake(v);
            deliver_exception(v, cpu, e);
        } else if cpu.events.nmi && nmi_allowed(v) {
            cpu.events.nmi = false;
            wake(v);
            v.write(ENTRY_INTR_INFO, IntrInfo::event(INTR_TYPE_NMI, vector::NMI, false).0);
            cpu.injecting = true;
        } else if let Some(vec) = cpu.events.interrupt {
            if interrupt_allowed(v) {
                cpu.events.interrupt = None;
                wake(v);
                v.write(ENTRY_INTR_INFO, IntrInfo::event(INTR_TYPE_EXTERNAL, vec, false).0);
                cpu.injecting = true;
            }
        }
    }
    // Windows: an exit as soon as the guest can take what waits (or what
    // userland will inject).
    let mut want = 0;
    if cpu.events.interrupt.is_some() || want_window {
        want |= proc::IRQ_WINDOW;
    }
    if cpu.events.nmi {
        // Under STI blocking the CPU may take an NMI-window exit it cannot
        // inject into (SDM Vol. 3C 26.7.6): wait for the interrupt window
        // instead (KVM's vmx_enable_nmi_window); without virtual NMIs there
        // is no NMI window.
        let sti = v.read(GUEST_INTERRUPTIBILITY) & blocking::STI != 0;
        if sti || v.read(PIN_BASED_CONTROLS) & pin::VIRTUAL_NMI == 0 {
            want |= proc::IRQ_WINDOW;
        } else {
            want |= proc::NMI_WINDOW;
        }
    }
    let ctl = v.read(PROC_BASED_CONTROLS);
    let new = (ctl & !(proc::IRQ_WINDOW | proc::NMI_WINDOW)) | want;
    if new != ctl {
        v.write(PROC_BASED_CONTROLS, new);
    }
    cpu.windows = want != 0;
}

/// Puts hardware exception `vector` in the VM-entry interruption-information
/// field for the next entry. The error code goes only in protected mode (a
/// real-mode delivery pushes none, and VM entry refuses one with CR0.PE = 0:
/// SDM Vol. 3C 27.2.1.3) and with 16 bits (KVM too); a #DB clears DR7.GD
/// as its delivery does (SDM Vol. 3B 18.2.4; KVM).
pub fn inject_exception<V: VmcsAccess>(v: &V, cpu: &mut CpuState, vector: u8, error_code: Option<u32>) {
    let code = error_code.filter(|_| v.read(GUEST_CR0) & cr0::PE != 0);
    v.write(ENTRY_INTR_INFO, IntrInfo::event(INTR_TYPE_HW_EXCEPTION, vector, code.is_some()).0);
    if let Some(c) = code {
        v.write(ENTRY_EXCEPTION_ERROR_CODE, c & 0xffff);
    }
    if vector == crate::x86::vector::DB {
        let d = v.read(GUEST_DR7);
        if d & dr::DR7_GD != 0 {
            v.write(GUEST_DR7, d & !dr::DR7_GD);
        }
    }
    cpu.injecting = true;
}

/// A halted guest (HLT exiting off) becomes active to take an event: VM
/// entry refuses most injections in the HLT state (SDM Vol. 3C 27.3.1.5;
/// KVM's vmx_clear_hlt).
fn wake<V: VmcsAccess>(v: &V) {
    if v.read(GUEST_ACTIVITY_STATE) == ACTIVITY_HLT {
        v.write(GUEST_ACTIVITY_STATE, 0);
    }
}

/// The HLT activity state (SDM Vol. 3C 25.4.2).
const ACTIVITY_HLT: u32 = 1;

/// A single-step trap is due after an instruction rvmx completed for the
/// guest with RFLAGS.TF set (the CPU did not execute it, so it did not
/// raise it: KVM's kvm_skip_emulated_instruction): a #DB with BS, unless
/// an exception already waits.
pub fn single_step(cpu: &mut CpuState, rflags: u64) {
    if rflags & rflags::TF != 0 && cpu.events.exception.is_none() {
        cpu.events.exception = Some(Exception { vector: crate::x86::vector::DB, error_code: None, payload: Some(dr::DR6_BS) });
    }
}

/// NMIs are blocked by NMI, STI and MOV-SS blocking (SDM Vol. 3C 27.3.1.5;
/// KVM treats STI blocking as blocking NMIs too).
fn nmi_allowed<V: VmcsAccess>(v: &V) -> bool {
    v.read(GUEST_INTERRUPTIBILITY) & (blocking::STI | blocking::MOV_SS | blocking::NMI) == 0
}

/// Injects exception `e`, with its payload applied: CR2 for #PF, DR6 for
/// #DB (SDM Vol. 3A 6.15).
fn deliver_exception<V: VmcsAccess>(v: &V, cpu: &mut CpuState, e: Exception) {
    match (e.vector, e.payload) {
        (vector::PF, Some(addr)) => cpu.cr2 = addr,
        (vector::DB, Some(bits)) => cpu.dr6 = merge_dr6(cpu.dr6, bits),
        _ => {}
    }
    inject_exception(v, cpu, e.vector, e.error_code);
}

/// After an exit: the event being delivered when it hit goes in again at
/// the next entry, as it was (SDM Vol. 3C 28.2.4, 27.6); for an NMI,
/// blocking by NMI is lifted so that it can be injected (27.3.1.5).
pub fn redeliver<V: VmcsAccess>(v: &V, cpu: &mut CpuState) {
    let idt = IntrInfo(v.read(IDT_VECTORING_INFO));
    if !idt.valid() {
        return;
    }
    // Bits 31, 11, 10:8, 7:0; 12 (undefined here) and the rest cleared.
    let info = IntrInfo(idt.0 & 0x8000_0fff);
    v.write(ENTRY_INTR_INFO, info.0);
    if info.has_error_code() {
        v.write(ENTRY_EXCEPTION_ERROR_CODE, v.read(IDT_VECTORING_ERROR_CODE));
    }
    if info.needs_length() {
        v.write(ENTRY_INSTRUCTION_LENGTH, v.read(EXIT_INSTRUCTION_LENGTH));
    }
    if info.kind() == INTR_TYPE_NMI {
        let b = v.read(GUEST_INTERRUPTIBILITY);
        if b & blocking::NMI != 0 {
            v.write(GUEST_INTERRUPTIBILITY, b & !blocking::NMI);
        }
    }
    cpu.injecting = true;
}
