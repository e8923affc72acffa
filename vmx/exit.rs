// SPDX-License-Identifier: GPL-2.0
//! VM-exit handlers: one small function per exit reason. Each either
//! resumes the guest or fills the exit record for userland. They run right
//! after the exit, interrupts off, with the vCPU's VMCS current.

use super::cpuid::guest_cpuid;
use super::entry_check;
use super::exit_info::{self, reason, CrAccess, EptQual, ExitReason, IntrInfo, IoQual};
use super::insn;
use crate::uapi;
use crate::vm::vcpu::{State, Vcpu};
use crate::vmcs::field::*;
use crate::vmcs::setup::{CR0_HOST_OWNED, CR4_HOST_OWNED};
use crate::vmcs::Loaded;
use crate::vmx::caps::entry;
use kernel::prelude::*;

/// What the run loop does next.
pub(crate) enum Step {
    /// Enter the guest again.
    Resume,
    /// Return to userland; the exit record is filled.
    ToUser,
    /// An EPT violation: map the page (with interrupts on) or report MMIO.
    EptViolation { gpa: u64, qualification: u64 },
}

/// Handles the exit that just happened.
pub(crate) fn handle(v: &Loaded<'_>, vcpu: &Vcpu, st: &mut State, launched: &mut bool) -> Result<Step> {
    let why = ExitReason(v.read32(EXIT_REASON)?);
    if why.entry_failed() {
        // The launch state is unchanged by a failed entry (SDM Vol. 3C 27.8).
        let qualification = v.read(EXIT_QUALIFICATION)?;
        let mut fail = uapi::rvmx_run__bindgen_ty_1__bindgen_ty_3 {
            reason: why.0,
            qualification,
            ..Default::default()
        };
        if why.basic() == reason::INVALID_GUEST_STATE {
            match entry_check::check(&guest_state(v)?) {
                Some(f) => write_account(&mut fail.account, &[f.field, ": ", f.rule]),
                None => write_account(&mut fail.account, &["invalid guest state; no rule rvmx checks is broken"]),
            }
        }
        let mut run = uapi::rvmx_run { exit_reason: uapi::RVMX_EXIT_FAIL_ENTRY, ..Default::default() };
        run.__bindgen_anon_1.fail_entry = fail;
        publish(vcpu, &run);
        return Ok(Step::ToUser);
    }
    *launched = true;
    match why.basic() {
        reason::EXCEPTION_NMI => nmi(v, vcpu),
        reason::EXTERNAL_INTERRUPT | reason::PREEMPTION_TIMER => Ok(Step::Resume),
        reason::TRIPLE_FAULT => {
            publish(vcpu, &uapi::rvmx_run { exit_reason: uapi::RVMX_EXIT_SHUTDOWN, ..Default::default() });
            Ok(Step::ToUser)
        }
        reason::CPUID => cpuid(v, vcpu, st),
        reason::HLT => {
            skip_instruction(v)?;
            publish(vcpu, &uapi::rvmx_run { exit_reason: uapi::RVMX_EXIT_HLT, ..Default::default() });
            Ok(Step::ToUser)
        }
        reason::IO => io(v, vcpu, st),
        reason::CR_ACCESS => cr_access(v, vcpu, st),
        reason::EPT_VIOLATION => {
            let qualification = v.read(EXIT_QUALIFICATION)?;
            // rvmx maps pages RWX: a violation on a mapped page is not a
            // missing page, and mapping would not cure it.
            if EptQual(qualification).mapped() {
                return unhandled(v, vcpu);
            }
            Ok(Step::EptViolation { gpa: v.read(GUEST_PHYSICAL_ADDRESS)?, qualification })
        }
        _ if why.is_vmx_instruction() => inject(v, IntrInfo::exception(exit_info::VECTOR_UD, false)),
        _ => unhandled(v, vcpu),
    }
}

/// Publishes an exit record in the page shared with userland.
fn publish(vcpu: &Vcpu, run: &uapi::rvmx_run) {
    // SAFETY: the page is ours for the vCPU's lifetime and sized for the
    // record; userland may write it concurrently, so we only ever store the
    // whole record with a volatile write (plain data, no invariants).
    unsafe { vcpu.run_page().write_volatile(*run) };
}

/// RIP past the instruction that exited.
fn skip_instruction(v: &Loaded<'_>) -> Result {
    advance_rip(v, v.read(EXIT_INSTRUCTION_LENGTH)?)
}

/// RIP `len` bytes on; an interrupt shadow (STI, MOV SS) ends with the
/// instruction (SDM Vol. 3C 25.4.2, interruptibility state bits 1:0).
fn advance_rip(v: &Loaded<'_>, len: u64) -> Result {
    v.write(GUEST_RIP, v.read(GUEST_RIP)?.wrapping_add(len))?;
    let intr = v.read(GUEST_INTERRUPTIBILITY)?;
    if intr & 3 != 0 {
        v.write(GUEST_INTERRUPTIBILITY, intr & !3)?;
    }
    Ok(())
}

/// Injects a hardware exception on the next entry (SDM Vol. 3C 27.6).
fn inject(v: &Loaded<'_>, info: IntrInfo) -> Result<Step> {
    v.write(ENTRY_INTR_INFO, info.0.into())?;
    if info.0 & (1 << 11) != 0 {
        v.write(ENTRY_EXCEPTION_ERROR_CODE, 0)?;
    }
    Ok(Step::Resume)
}

/// An NMI meant for the host arrived while the guest ran: hand it over.
fn nmi(v: &Loaded<'_>, vcpu: &Vcpu) -> Result<Step> {
    if IntrInfo(v.read32(EXIT_INTR_INFO)?).is_nmi() {
        insn::raise_nmi();
        return Ok(Step::Resume);
    }
    // The exception bitmap is empty, so no other exception exits.
    unhandled(v, vcpu)
}

/// CPUID: the host's answer, less what rvmx does not virtualize (cpuid.rs).
fn cpuid(v: &Loaded<'_>, vcpu: &Vcpu, st: &mut State) -> Result<Step> {
    let (leaf, sub) = (st.gprs[0] as u32, st.gprs[1] as u32);
    let r = insn::cpuid(leaf, sub);
    let out = guest_cpuid(leaf, sub, [r.eax, r.ebx, r.ecx, r.edx], vcpu.id.id as u8);
    // CPUID writes 32-bit registers: the upper halves become zero.
    st.gprs[0] = out[0].into();
    st.gprs[3] = out[1].into();
    st.gprs[1] = out[2].into();
    st.gprs[2] = out[3].into();
    skip_instruction(v)?;
    Ok(Step::Resume)
}

/// IN/OUT: to userland. OUT is complete when reported; IN completes on the
/// next RUN with the data userland left in the record (`complete_in`).
fn io(v: &Loaded<'_>, vcpu: &Vcpu, st: &mut State) -> Result<Step> {
    let Some(q) = IoQual::decode(v.read(EXIT_QUALIFICATION)?) else { return unhandled(v, vcpu) };
    if q.string || q.rep {
        // INS/OUTS and REP: not emulated yet; userland sees the raw exit.
        return unhandled(v, vcpu);
    }
    let data = if q.is_in {
        st.pending_in = Some((q.size, v.read(EXIT_INSTRUCTION_LENGTH)?));
        0
    } else {
        skip_instruction(v)?;
        st.gprs[0] & q.mask()
    };
    let mut run = uapi::rvmx_run { exit_reason: uapi::RVMX_EXIT_IO, ..Default::default() };
    run.__bindgen_anon_1.io = uapi::rvmx_run__bindgen_ty_1__bindgen_ty_1 {
        direction: if q.is_in { uapi::RVMX_IO_IN } else { uapi::RVMX_IO_OUT } as u8,
        size: q.size,
        port: q.port,
        reserved: 0,
        data,
    };
    publish(vcpu, &run);
    Ok(Step::ToUser)
}

/// Finishes an IN with the data userland put in the exit record.
pub(crate) fn complete_in(v: &Loaded<'_>, vcpu: &Vcpu, st: &mut State, size: u8, len: u64) -> Result {
    // SAFETY: see `publish`; a volatile read of the whole record, whatever
    // userland wrote into it.
    let run = unsafe { vcpu.run_page().read_volatile() };
    // SAFETY: every member of the union is plain integers.
    let data = unsafe { run.__bindgen_anon_1.io.data };
    st.gprs[0] = exit_info::in_result(st.gprs[0], size, data);
    advance_rip(v, len)
}

const CR0_PE: u64 = 1 << 0;
const CR0_PG: u64 = 1 << 31;
const EFER_LME: u64 = 1 << 8;
const EFER_LMA: u64 = 1 << 10;

fn gpr(v: &Loaded<'_>, st: &State, n: u8) -> Result<u64> {
    if n == 4 { v.read(GUEST_RSP) } else { Ok(st.gprs[usize::from(n & 15)]) }
}

fn set_gpr(v: &Loaded<'_>, st: &mut State, n: u8, val: u64) -> Result {
    if n == 4 { v.write(GUEST_RSP, val) } else { st.gprs[usize::from(n & 15)] = val; Ok(()) }
}

/// MOV to/from control registers that exit: writes to CR0/CR4 that touch
/// host-owned bits (NE, VMXE) and every CR8 access (SDM Vol. 3C 26.1.3).
fn cr_access(v: &Loaded<'_>, vcpu: &Vcpu, st: &mut State) -> Result<Step> {
    let gp = IntrInfo::exception(exit_info::VECTOR_GP, true);
    match CrAccess::decode(v.read(EXIT_QUALIFICATION)?) {
        CrAccess::MovTo { cr: 0, gpr: n } => {
            let new = gpr(v, st, n)?;
            if new >> 32 != 0 || (new & CR0_PG != 0 && new & CR0_PE == 0) {
                return inject(v, gp);
            }
            let old = v.read(GUEST_CR0)?;
            // Paging on or off with EFER.LME: the CPU would switch IA-32e
            // mode (EFER.LMA and the entry control follow; SDM Vol. 3A 10.8.5).
            let efer = v.read(GUEST_IA32_EFER)?;
            if efer & EFER_LME != 0 && (old ^ new) & CR0_PG != 0 {
                let on = new & CR0_PG != 0;
                v.write(GUEST_IA32_EFER, if on { efer | EFER_LMA } else { efer & !EFER_LMA })?;
                let ctl = v.read(ENTRY_CONTROLS)?;
                let bit = u64::from(entry::IA32E_GUEST);
                v.write(ENTRY_CONTROLS, if on { ctl | bit } else { ctl & !bit })?;
            }
            v.write(CR0_READ_SHADOW, new)?;
            v.write(GUEST_CR0, new | CR0_HOST_OWNED)?;
        }
        CrAccess::MovTo { cr: 4, gpr: n } => {
            let new = gpr(v, st, n)?;
            if new & CR4_HOST_OWNED != 0 {
                // VMXE: no VMX for guests (CPUID says so too).
                return inject(v, gp);
            }
            v.write(CR4_READ_SHADOW, new)?;
            v.write(GUEST_CR4, new | CR4_HOST_OWNED)?;
        }
        CrAccess::MovTo { cr: 8, gpr: n } => {
            let new = gpr(v, st, n)?;
            if new > 15 {
                return inject(v, gp);
            }
            st.cr8 = new;
        }
        CrAccess::MovFrom { cr: 8, gpr: n } => set_gpr(v, st, n, st.cr8)?,
        _ => return unhandled(v, vcpu),
    }
    skip_instruction(v)?;
    Ok(Step::Resume)
}

/// A guest access outside every memory region.
pub(crate) fn report_mmio(vcpu: &Vcpu, gpa: u64, qualification: u64) {
    let q = EptQual(qualification);
    let bit = |on: bool, b: u32| if on { b } else { 0 };
    let access = bit(q.read(), uapi::RVMX_MMIO_READ)
        | bit(q.write(), uapi::RVMX_MMIO_WRITE)
        | bit(q.fetch(), uapi::RVMX_MMIO_FETCH);
    let mut run = uapi::rvmx_run { exit_reason: uapi::RVMX_EXIT_MMIO, ..Default::default() };
    run.__bindgen_anon_1.mmio = uapi::rvmx_run__bindgen_ty_1__bindgen_ty_2 { gpa, qualification, access, reserved: 0 };
    publish(vcpu, &run);
}

/// VMLAUNCH/VMRESUME failed as an instruction (VMfailValid).
pub(crate) fn report_entry_error(vcpu: &Vcpu, vm_instruction_error: u32) {
    let mut fail = uapi::rvmx_run__bindgen_ty_1__bindgen_ty_3 { vm_instruction_error, ..Default::default() };
    write_account(&mut fail.account, &[entry_check::vm_instruction_error(vm_instruction_error)]);
    let mut run = uapi::rvmx_run { exit_reason: uapi::RVMX_EXIT_FAIL_ENTRY, ..Default::default() };
    run.__bindgen_anon_1.fail_entry = fail;
    publish(vcpu, &run);
}

/// Joins `parts` into `out`, cut to fit, NUL-terminated.
fn write_account(out: &mut [u8], parts: &[&str]) {
    let mut n = 0;
    for b in parts.iter().flat_map(|p| p.bytes()) {
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

/// The guest state and controls that `entry_check` examines.
fn guest_state(v: &Loaded<'_>) -> Result<entry_check::GuestState> {
    let caps = crate::vmx::cpu::loaded_caps()?;
    let seg = |sel, base, limit, ar| -> Result<entry_check::Seg> {
        Ok(entry_check::Seg { selector: v.read(sel)? as u16, base: v.read(base)?, limit: v.read32(limit)?, ar: v.read32(ar)? })
    };
    let entry_ctl = v.read32(ENTRY_CONTROLS)?;
    Ok(entry_check::GuestState {
        cr0: v.read(GUEST_CR0)?,
        cr4: v.read(GUEST_CR4)?,
        efer: v.read(GUEST_IA32_EFER)?,
        rflags: v.read(GUEST_RFLAGS)?,
        rip: v.read(GUEST_RIP)?,
        cr0_fixed: (caps.cr0_fixed0, caps.cr0_fixed1),
        cr4_fixed: (caps.cr4_fixed0, caps.cr4_fixed1),
        unrestricted: v.read32(PROC_BASED_CONTROLS2)? & crate::vmx::caps::proc2::UNRESTRICTED_GUEST != 0,
        ia32e: entry_ctl & entry::IA32E_GUEST != 0,
        load_efer: entry_ctl & entry::LOAD_EFER != 0,
        cs: seg(GUEST_CS_SELECTOR, GUEST_CS_BASE, GUEST_CS_LIMIT, GUEST_CS_AR)?,
        ss: seg(GUEST_SS_SELECTOR, GUEST_SS_BASE, GUEST_SS_LIMIT, GUEST_SS_AR)?,
        ds: seg(GUEST_DS_SELECTOR, GUEST_DS_BASE, GUEST_DS_LIMIT, GUEST_DS_AR)?,
        es: seg(GUEST_ES_SELECTOR, GUEST_ES_BASE, GUEST_ES_LIMIT, GUEST_ES_AR)?,
        fs: seg(GUEST_FS_SELECTOR, GUEST_FS_BASE, GUEST_FS_LIMIT, GUEST_FS_AR)?,
        gs: seg(GUEST_GS_SELECTOR, GUEST_GS_BASE, GUEST_GS_LIMIT, GUEST_GS_AR)?,
        tr: seg(GUEST_TR_SELECTOR, GUEST_TR_BASE, GUEST_TR_LIMIT, GUEST_TR_AR)?,
        ldtr: seg(GUEST_LDTR_SELECTOR, GUEST_LDTR_BASE, GUEST_LDTR_LIMIT, GUEST_LDTR_AR)?,
        gdtr: (v.read(GUEST_GDTR_BASE)?, v.read32(GUEST_GDTR_LIMIT)?),
        idtr: (v.read(GUEST_IDTR_BASE)?, v.read32(GUEST_IDTR_LIMIT)?),
        activity: v.read32(GUEST_ACTIVITY_STATE)?,
        interruptibility: v.read32(GUEST_INTERRUPTIBILITY)?,
        link_pointer: v.read(VMCS_LINK_POINTER)?,
    })
}

/// Any other exit: userland gets the raw VMX exit information.
fn unhandled(v: &Loaded<'_>, vcpu: &Vcpu) -> Result<Step> {
    let mut run = uapi::rvmx_run { exit_reason: uapi::RVMX_EXIT_VMX, ..Default::default() };
    run.__bindgen_anon_1.vmx = uapi::rvmx_run__bindgen_ty_1__bindgen_ty_4 {
        reason: v.read32(EXIT_REASON)?,
        instruction_length: v.read32(EXIT_INSTRUCTION_LENGTH)?,
        qualification: v.read(EXIT_QUALIFICATION)?,
        guest_physical_address: v.read(GUEST_PHYSICAL_ADDRESS)?,
        guest_linear_address: v.read(GUEST_LINEAR_ADDRESS)?,
        intr_info: v.read32(EXIT_INTR_INFO)?,
        instruction_info: v.read32(EXIT_INSTRUCTION_INFO)?,
    };
    publish(vcpu, &run);
    Ok(Step::ToUser)
}
