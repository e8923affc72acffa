// SPDX-License-Identifier: GPL-2.0
//! RDMSR and WRMSR (pure logic): the MSRs rvmx knows are emulated here,
//! any other gives the guest #GP, and the ones userland filtered
//! (`Env::msr_filter`) go to userland first ([`complete_msr`] finishes
//! them on the next entry). [`get`] and [`set`] are the host's access
//! (RVMX_GET_MSRS/RVMX_SET_MSRS), with the same rules but where KVM lets
//! the host do more.
//!
//! RDMSR returns EDX:EAX, the upper halves of RDX and RAX zeroed; WRMSR
//! takes EDX:EAX; both ignore RCX bits 63:32 (SDM Vol. 2B RDMSR, Vol. 2C
//! WRMSR). Where each MSR lives: EFER, PAT, DEBUGCTL, SYSENTER_* and the
//! FS/GS bases in the VMCS guest-state area; STAR/LSTAR/CSTAR/FMASK in
//! `CpuState::syscall`, KERNEL_GS_BASE in `CpuState::kernel_gs_base`; the
//! TSC is the host's plus TSC_OFFSET; the rest in `CpuState::msrs`.
//! Changes the run loop must carry to the CPU are flagged in
//! `Msrs::dirty`.

use super::{CpuState, Env, Exit, Next, UserExit};
use crate::vmcs::field::*;
use crate::vmx::exit_info::IntrInfo;
use crate::vmx::msr::{apic_base, dirty, misc_enable, pat_valid, Mtrr, MTRRCAP};
use crate::x86::{canonical, cr0, efer, feature_control, msr, vector};

/// A filtered RDMSR or WRMSR reported to userland, completed on the next
/// entry ([`complete_msr`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PendingMsr {
    /// WRMSR (true) or RDMSR.
    pub write: bool,
    /// The instruction's length, to step over it once complete.
    pub len: u64,
}

/// Who accesses the MSR.
#[derive(Clone, Copy, PartialEq, Eq)]
enum By {
    /// The guest's RDMSR/WRMSR.
    Guest,
    /// Userland's RVMX_GET_MSRS/RVMX_SET_MSRS.
    Host,
}

/// IA32_DEBUGCTL bits rvmx drops rather than refuses, as KVM does (it has
/// no LBR or branch-trap virtualization either): LBR (bit 0), BTF (bit 1).
const DEBUGCTL_DROPPED: u64 = 0b11;
/// IA32_MCG_STATUS: RIPV, EIPV, MCIP (LMCE_S needs MCG_CAP.LMCE_P).
const MCG_STATUS_BITS: u64 = 0b111;
/// MSR_PLATFORM_INFO bit 31: CPUID faulting (not offered).
const PLATFORM_INFO_CPUID_FAULT: u64 = 1 << 31;

fn need(ok: bool) -> Result<(), ()> {
    if ok {
        Ok(())
    } else {
        Err(())
    }
}

/// RDMSR (exit reason 31).
pub(super) fn rdmsr<V: VmcsAccess>(x: &mut Exit<'_, V>) -> Next {
    let index = x.cpu.regs.rcx as u32;
    if x.env.msr_filter.exits(index, false) {
        return to_user(x, false, index, 0);
    }
    match read(x.v, x.cpu, x.env, index, By::Guest) {
        Ok(val) => {
            x.cpu.regs.rax = val & 0xffff_ffff;
            x.cpu.regs.rdx = val >> 32;
            Next::Resume
        }
        Err(()) => x.inject(IntrInfo::exception(vector::GP, true)),
    }
}

/// WRMSR (exit reason 32).
pub(super) fn wrmsr<V: VmcsAccess>(x: &mut Exit<'_, V>) -> Next {
    let r = &x.cpu.regs;
    let index = r.rcx as u32;
    let val = (r.rdx << 32) | (r.rax & 0xffff_ffff);
    if x.env.msr_filter.exits(index, true) {
        return to_user(x, true, index, val);
    }
    match write(x.v, x.cpu, x.env, index, val, By::Guest) {
        Ok(()) => Next::Resume,
        Err(()) => x.inject(IntrInfo::exception(vector::GP, true)),
    }
}

/// A filtered access: userland answers; RIP stays until it has.
fn to_user<V: VmcsAccess>(x: &mut Exit<'_, V>, write: bool, index: u32, data: u64) -> Next {
    x.keep_rip();
    x.cpu.pending_msr = Some(PendingMsr { write, len: x.v.read(EXIT_INSTRUCTION_LENGTH).into() });
    Next::ToUser(UserExit::Msr { write, index, data })
}

/// Finishes a filtered RDMSR or WRMSR (if one is pending) with userland's
/// answer: `error` gives the guest #GP, RIP at the instruction; else a
/// RDMSR gets `data` in EDX:EAX, and RIP moves past the instruction.
pub fn complete_msr<V: VmcsAccess>(v: &V, cpu: &mut CpuState, data: u64, error: bool) {
    let Some(p) = cpu.pending_msr.take() else { return };
    if error {
        super::event::inject_exception(v, cpu, vector::GP, Some(0));
        return;
    }
    if !p.write {
        cpu.regs.rax = data & 0xffff_ffff;
        cpu.regs.rdx = data >> 32;
    }
    super::skip_instruction(v, cpu, p.len);
}

/// The host reads MSR `index` (RVMX_GET_MSRS): `Err` for an MSR rvmx does
/// not have. Not filtered; CPUID-gated MSRs can be read whatever the
/// guest's CPUID says (as KVM), so [`SAVE_LIST`](crate::vmx::msr::SAVE_LIST)
/// always reads.
pub fn get<V: VmcsAccess>(v: &V, cpu: &CpuState, env: &Env<'_>, index: u32) -> Result<u64, ()> {
    read(v, cpu, env, index, By::Host)
}

/// The host writes MSR `index` (RVMX_SET_MSRS): the guest's rules, except
/// that CPUID does not gate MSRs, EFER.LME may change with paging on, the
/// TSC is set without moving TSC_ADJUST and TSC_ADJUST without moving the
/// TSC (KVM's host-initiated writes), MISC_ENABLE's read-only bits and
/// MSR_PLATFORM_INFO and IA32_BIOS_SIGN_ID are set as given, and constant
/// MSRs accept their own value (so a saved list restores). No effects
/// (IBPB, L1D flush) happen.
pub fn set<V: VmcsAccess>(v: &V, cpu: &mut CpuState, env: &Env<'_>, index: u32, value: u64) -> Result<(), ()> {
    write(v, cpu, env, index, value, By::Host)
}

fn read<V: VmcsAccess>(v: &V, cpu: &CpuState, env: &Env<'_>, index: u32, by: By) -> Result<u64, ()> {
    let g = &env.guest;
    let m = &cpu.msrs;
    let host = by == By::Host;
    Ok(match index {
        msr::EFER => v.read(GUEST_IA32_EFER),
        msr::PAT => v.read(GUEST_IA32_PAT),
        msr::DEBUGCTL => v.read(GUEST_IA32_DEBUGCTL),
        msr::SYSENTER_CS => v.read(GUEST_SYSENTER_CS).into(),
        msr::SYSENTER_ESP => v.read(GUEST_SYSENTER_ESP),
        msr::SYSENTER_EIP => v.read(GUEST_SYSENTER_EIP),
        msr::FS_BASE => v.read(Seg::Fs.fields().base),
        msr::GS_BASE => v.read(Seg::Gs.fields().base),
        msr::STAR..=msr::SFMASK => cpu.syscall[(index - msr::STAR) as usize],
        msr::KERNEL_GS_BASE => cpu.kernel_gs_base,
        // What RDTSC in the guest returns (TSC offsetting, no scaling).
        msr::TSC => (env.rdtsc)().wrapping_add(v.read(TSC_OFFSET)),
        msr::TSC_ADJUST => {
            need(host || g.tsc_adjust)?;
            m.tsc_adjust
        }
        msr::TSC_AUX => {
            need(host || g.rdtscp || g.rdpid)?;
            m.tsc_aux
        }
        msr::APIC_BASE => m.apic_base,
        msr::MISC_ENABLE => m.misc_enable,
        msr::MTRRCAP => MTRRCAP,
        // Locked with VMX off, inside and outside SMX: no nested VMX
        // (SDM Vol. 3C 24.7).
        msr::FEATURE_CONTROL => feature_control::LOCKED,
        // No machine-check banks, no MCG_CTL (SDM Vol. 3B 16.3.1.1).
        msr::MCG_CAP => 0,
        msr::MCG_STATUS => m.mcg_status,
        msr::MCG_CTL => {
            need(host)?;
            0
        }
        // Probed by OSes: fixed values (KVM's), writes ignored or #GP.
        msr::PLATFORM_ID => 0,
        msr::PLATFORM_INFO => m.platform_info,
        msr::BIOS_SIGN_ID => m.microcode,
        msr::PERF_CAPABILITIES => {
            need(host || g.pdcm)?;
            0
        }
        msr::SPEC_CTRL => {
            need(host || g.has_spec_ctrl())?;
            m.spec_ctrl
        }
        msr::ARCH_CAPABILITIES => g.arch_capabilities.ok_or(())?,
        _ => match Mtrr::from_index(index) {
            Some(t) => m.mtrr(t),
            // PRED_CMD, FLUSH_CMD and BIOS_UPDT_TRIG are write-only.
            None => return Err(()),
        },
    })
}

fn write<V: VmcsAccess>(v: &V, cpu: &mut CpuState, env: &Env<'_>, index: u32, val: u64, by: By) -> Result<(), ()> {
    let g = &env.guest;
    let host = by == By::Host;
    let m = &mut cpu.msrs;
    match index {
        msr::EFER => {
            if write_efer(v, val, env, by)? {
                m.dirty |= dirty::EFER;
            }
        }
        msr::PAT => {
            need(pat_valid(val))?;
            v.write(GUEST_IA32_PAT, val);
        }
        msr::DEBUGCTL => {
            // Nothing else is virtualized (bus-lock detection, LBR
            // freezing...): any other bit #GPs.
            need(val & !DEBUGCTL_DROPPED == 0)?;
            v.write(GUEST_IA32_DEBUGCTL, val & !DEBUGCTL_DROPPED);
        }
        // Bits 63:32 are "not used" but kept by the CPU; the VMCS field
        // has 32 bits (SDM Vol. 3C 25.4.2): they are dropped, as KVM does.
        msr::SYSENTER_CS => v.write(GUEST_SYSENTER_CS, val as u32),
        // Non-canonical bases #GP (SDM Vol. 2C WRMSR; VM entry would fail
        // on them too, SDM Vol. 3C 27.3.1.1).
        msr::SYSENTER_ESP | msr::SYSENTER_EIP | msr::FS_BASE | msr::GS_BASE => {
            need(canonical(val))?;
            let f = match index {
                msr::SYSENTER_ESP => GUEST_SYSENTER_ESP,
                msr::SYSENTER_EIP => GUEST_SYSENTER_EIP,
                msr::FS_BASE => Seg::Fs.fields().base,
                _ => Seg::Gs.fields().base,
            };
            v.write(f, val);
        }
        msr::STAR..=msr::SFMASK => {
            // LSTAR and CSTAR are entry points (canonical); FMASK has 32
            // bits (SDM Vol. 4 Table 2-2).
            need(match index {
                msr::LSTAR | msr::CSTAR => canonical(val),
                msr::SFMASK => val >> 32 == 0,
                _ => true,
            })?;
            cpu.syscall[(index - msr::STAR) as usize] = val;
            m.dirty |= dirty::SYSCALL;
        }
        msr::KERNEL_GS_BASE => {
            need(canonical(val))?;
            cpu.kernel_gs_base = val;
            m.dirty |= dirty::KERNEL_GS_BASE;
        }
        msr::TSC => {
            // The guest reads `val` from now on; a guest write moves
            // TSC_ADJUST by as much (SDM Vol. 3B 19.17.3), a host one not.
            let old = v.read(TSC_OFFSET);
            let new = val.wrapping_sub((env.rdtsc)());
            v.write(TSC_OFFSET, new);
            if !host {
                m.tsc_adjust = m.tsc_adjust.wrapping_add(new.wrapping_sub(old));
            }
        }
        msr::TSC_ADJUST => {
            need(host || g.tsc_adjust)?;
            // A guest write moves the TSC by the change (SDM Vol. 3B 19.17.3).
            if !host {
                let delta = val.wrapping_sub(m.tsc_adjust);
                v.write(TSC_OFFSET, v.read(TSC_OFFSET).wrapping_add(delta));
            }
            m.tsc_adjust = val;
        }
        msr::TSC_AUX => {
            // Bits 63:32 are reserved (SDM Vol. 4 Table 2-2).
            need((host || g.rdtscp || g.rdpid) && val >> 32 == 0)?;
            m.tsc_aux = val;
            m.dirty |= dirty::TSC_AUX;
        }
        msr::APIC_BASE => {
            // Reserved: 7:0, 9, x2APIC enable (not offered), bits at and
            // above MAXPHYADDR (SDM Vol. 3A 11.4.4). Moving or disabling
            // the APIC is userland's to emulate.
            need(val & (apic_base::RESERVED_LOW | g.above_phys()) == 0)?;
            m.apic_base = val;
        }
        msr::MISC_ENABLE => {
            // Reserved bits #GP; the guest cannot change read-only ones.
            need(val & !(misc_enable::WRITABLE | misc_enable::READ_ONLY) == 0)?;
            m.misc_enable = if host {
                val
            } else {
                (val & misc_enable::WRITABLE) | (m.misc_enable & misc_enable::READ_ONLY)
            };
        }
        msr::MCG_STATUS => {
            need(val & !MCG_STATUS_BITS == 0)?;
            m.mcg_status = val;
        }
        // Microcode loading: writes ignored (KVM); the host sets the
        // revision the guest reads.
        msr::BIOS_UPDT_TRIG => {}
        msr::BIOS_SIGN_ID => {
            if host {
                m.microcode = val;
            }
        }
        msr::PLATFORM_INFO => {
            need(host && val & PLATFORM_INFO_CPUID_FAULT == 0)?;
            m.platform_info = val;
        }
        msr::SPEC_CTRL => {
            need((host || g.has_spec_ctrl()) && val & !g.spec_ctrl_bits() == 0)?;
            m.spec_ctrl = val;
            m.dirty |= dirty::SPEC_CTRL;
        }
        // Commands: bit 0 only (IBPB, L1D_FLUSH); the run loop performs
        // them before the next entry.
        msr::PRED_CMD | msr::FLUSH_CMD => {
            let (has, effect) = match index {
                msr::PRED_CMD => (g.ibrs_ibpb, dirty::IBPB),
                _ => (g.l1d_flush, dirty::L1D_FLUSH),
            };
            need((host || has) && val & !1 == 0)?;
            if !host && val & 1 != 0 {
                m.dirty |= effect;
            }
        }
        // Read-only and constant for the guest (#GP); the host may write
        // the value they have.
        msr::MTRRCAP => need(host && val == MTRRCAP)?,
        msr::FEATURE_CONTROL => need(host && val == feature_control::LOCKED)?,
        msr::MCG_CAP | msr::MCG_CTL | msr::PLATFORM_ID | msr::PERF_CAPABILITIES => need(host && val == 0)?,
        msr::ARCH_CAPABILITIES => need(host && g.arch_capabilities == Some(val))?,
        _ => {
            let t = Mtrr::from_index(index).ok_or(())?;
            need(t.valid(val, g.above_phys()))?;
            *m.mtrr_mut(t) = val;
        }
    }
    Ok(())
}

/// IA32_EFER (SDM Vol. 3A 2.2.1, 10.8.5): SCE, LME, NXE only if the
/// guest's CPUID has SYSCALL, LM, NX; any other bit (SVME among them) #GP;
/// LME cannot change while CR0.PG is 1; LMA is the CPU's (written values
/// of it are ignored, as KVM's set_efer does). The host skips the CPUID
/// and paging checks (KVM too), not the reserved bits. `Ok(true)` if the
/// value changed.
fn write_efer<V: VmcsAccess>(v: &V, new: u64, env: &Env<'_>, by: By) -> Result<bool, ()> {
    let g = &env.guest;
    need(new & !(efer::SCE | efer::LME | efer::LMA | efer::NXE) == 0)?;
    let old = v.read(GUEST_IA32_EFER);
    if by == By::Guest {
        need(new & efer::SCE == 0 || g.syscall)?;
        need(new & (efer::LME | efer::LMA) == 0 || g.lm)?;
        need(new & efer::NXE == 0 || g.nx)?;
        need((old ^ new) & efer::LME == 0 || v.read(GUEST_CR0) & cr0::PG == 0)?;
    }
    let new = (new & !efer::LMA) | (old & efer::LMA);
    v.write(GUEST_IA32_EFER, new);
    Ok(new != old)
}
