// SPDX-License-Identifier: GPL-2.0
//! MOV to and from control registers that exit (pure logic): writes to
//! CR0/CR4 that touch host-owned bits, and every CR8 access (SDM Vol. 3C
//! 26.1.3, 25.6.6).

use super::{Exit, Next};
use crate::vmcs::field::*;
use crate::vmx::caps::entry;
use crate::vmx::exit_info::{CrAccess, IntrInfo};
use crate::x86::{cr0, cr4, efer, vector, xcr0};

/// CR0 bits the host owns; the guest reads its own value of them from the
/// read shadow (SDM Vol. 3C 25.6.6) and writing another value exits: NE
/// must be 1 in VMX operation (the FIXED0 MSR), and VM entry does not load
/// CD and NW (27.3.2.1), so the CPU's are the host's. PE and PG are free
/// with unrestricted guest.
pub const CR0_HOST_OWNED: u64 = cr0::NE | cr0::CD | cr0::NW;
/// CR4 bits the host owns: VMXE (1 in VMX operation, no VMX for guests)
/// and OSXSAVE (allowed only when the guest has XSAVE).
pub const CR4_HOST_OWNED: u64 = cr4::VMXE | cr4::OSXSAVE;

/// The CPU's CR0 for the CR0 the guest sees (KVM keeps CD and NW off too).
pub const fn cr0_hw(visible: u64) -> u64 {
    (visible & !(cr0::CD | cr0::NW)) | cr0::NE
}

/// The CPU's CR4 for the CR4 the guest sees.
pub const fn cr4_hw(visible: u64) -> u64 {
    visible | cr4::VMXE
}

/// The CR0 the guest sees: its own value of the host-owned bits.
pub fn cr0_visible<V: VmcsAccess>(v: &V) -> u64 {
    (v.read(GUEST_CR0) & !CR0_HOST_OWNED) | (v.read(CR0_READ_SHADOW) & CR0_HOST_OWNED)
}

/// The CR4 the guest sees (the mask also has the bits its CPUID does not
/// offer: vm/cpuid.rs).
pub fn cr4_visible<V: VmcsAccess>(v: &V) -> u64 {
    let mask = v.read(CR4_GUEST_HOST_MASK);
    (v.read(GUEST_CR4) & !mask) | (v.read(CR4_READ_SHADOW) & mask)
}

pub(super) fn handle<V: VmcsAccess>(x: &mut Exit<'_, V>) -> Next {
    let gp = IntrInfo::exception(vector::GP, true);
    match CrAccess::decode(x.v.read(EXIT_QUALIFICATION)) {
        CrAccess::MovTo { cr: 0, gpr } => {
            let new = x.gpr(gpr);
            let old = cr0_visible(x.v);
            if write_cr0(x.v, new).is_err() {
                return x.inject(gp);
            }
            // Paging or write protection changed: the CPU would have
            // flushed the TLB (SDM Vol. 3A 4.10.4.1; KVM resets its MMU on
            // these bits).
            if (old ^ new) & (cr0::PG | cr0::WP) != 0 {
                x.cpu.flush_tlb = true;
            }
            // PAE paging takes its PDPTEs from the VMCS at entry: a MOV to
            // CR0 that changes PG, CD or NW loads them (SDM Vol. 3A 4.4.1;
            // KVM's load_pdptrs), done by the run loop from guest memory.
            if (old ^ new) & (cr0::PG | cr0::CD | cr0::NW) != 0 && pae_paging(x.v) {
                x.cpu.load_pdptes = true;
            }
        }
        CrAccess::MovTo { cr: 4, gpr } => {
            let new = x.gpr(gpr);
            // VMXE: no VMX for guests (CPUID says so too); OSXSAVE only
            // with XSAVE; nothing CPUID does not offer (the mask makes
            // those writes exit); bits the CPU does not allow in VMX operation
            // (IA32_VMX_CR4_FIXED1, SDM Vol. 3D A.8) are reserved; PAE
            // stays on in IA-32e mode (SDM Vol. 3A 10.8.5).
            let xsave = x.env.xcr0_allowed != 0;
            if new & cr4::VMXE != 0
                || (new & cr4::OSXSAVE != 0 && !xsave)
                || new & x.env.cr4_reserved != 0
                || new & !x.env.caps.cr4_fixed1 != 0
                || (x.v.read(GUEST_IA32_EFER) & efer::LMA != 0 && new & cr4::PAE == 0)
            {
                return x.inject(gp);
            }
            // PCIDE only in IA-32e mode with CR3[11:0] = 0 (SDM Vol. 3A
            // 4.10.1); LA57 cannot change in IA-32e mode (4.5.1).
            let old = cr4_visible(x.v);
            let lma = x.v.read(GUEST_IA32_EFER) & efer::LMA != 0;
            let pcide_on = old & cr4::PCIDE == 0 && new & cr4::PCIDE != 0;
            if (pcide_on && (!lma || x.v.read(GUEST_CR3) & 0xfff != 0)) || (lma && (old ^ new) & cr4::LA57 != 0) {
                return x.inject(gp);
            }
            x.v.write(CR4_READ_SHADOW, new);
            x.v.write(GUEST_CR4, cr4_hw(new));
            x.cpu.osxsave = new & cr4::OSXSAVE != 0;
            // Bits that change translations: the CPU would have flushed
            // (SDM Vol. 3A 4.10.4.1); PAE paging reloads its PDPTEs.
            let paging = cr4::PGE | cr4::PCIDE | cr4::PAE | cr4::PSE | cr4::SMEP | cr4::SMAP | cr4::LA57;
            if (old ^ new) & paging != 0 {
                x.cpu.flush_tlb = true;
            }
            // The bits MOV to CR4 reloads the PDPTEs for (KVM's
            // X86_CR4_PDPTR_BITS).
            if (old ^ new) & (cr4::PGE | cr4::PSE | cr4::PAE | cr4::SMEP) != 0 && pae_paging(x.v) {
                x.cpu.load_pdptes = true;
            }
        }
        CrAccess::MovTo { cr: 8, gpr } => {
            let new = x.gpr(gpr);
            // Bits 63:4 of CR8 are reserved (SDM Vol. 3A 2.5).
            if new > 15 {
                return x.inject(gp);
            }
            x.cpu.cr8 = new;
        }
        CrAccess::MovFrom { cr: 8, gpr } => {
            let cr8 = x.cpu.cr8;
            x.set_gpr(gpr, cr8);
        }
        _ => return x.unhandled(),
    }
    Next::Resume
}

/// The guest writes `new` to CR0: #GP (`Err`) for reserved bits 63:32, PG
/// without PE, NW without CD (SDM Vol. 3A 2.5, MOV CR), paging on with
/// EFER.LME but without CR4.PAE or from a 64-bit code segment, paging off
/// in 64-bit mode or with CR4.PCIDE (10.8.5, 4.10.1); paging switched on or
/// off with EFER.LME set switches IA-32e mode, so EFER.LMA and the "IA-32e
/// mode guest" entry control follow.
pub fn write_cr0<V: VmcsAccess>(v: &V, new: u64) -> Result<(), ()> {
    if new >> 32 != 0 || (new & cr0::PG != 0 && new & cr0::PE == 0) || (new & cr0::NW != 0 && new & cr0::CD == 0) {
        return Err(());
    }
    let old = cr0_visible(v);
    let e = v.read(GUEST_IA32_EFER);
    let cs_l = v.read(crate::vmcs::field::Seg::Cs.fields().ar) & (1 << 13) != 0;
    let cr4v = v.read(GUEST_CR4);
    if old & cr0::PG == 0 && new & cr0::PG != 0 && e & efer::LME != 0 && (cr4v & cr4::PAE == 0 || cs_l) {
        return Err(());
    }
    if old & cr0::PG != 0 && new & cr0::PG == 0 && ((e & efer::LMA != 0 && cs_l) || cr4v & cr4::PCIDE != 0) {
        return Err(());
    }
    if e & efer::LME != 0 && (old ^ new) & cr0::PG != 0 {
        let on = new & cr0::PG != 0;
        v.write(GUEST_IA32_EFER, if on { e | efer::LMA } else { e & !efer::LMA });
        set_ia32e(v, on);
    }
    v.write(CR0_READ_SHADOW, new);
    v.write(GUEST_CR0, cr0_hw(new));
    Ok(())
}

/// XSETBV: XCR0 must keep x87, have SSE under AVX, the AVX-512 components
/// all or none and only with AVX, both MPX components or none, and nothing
/// the guest may not enable (SDM Vol. 1 13.3; Vol. 2C XSETBV). The CPU
/// checked CPL and CR4.OSXSAVE before the exit (SDM Vol. 3C 26.1.1).
pub(super) fn xsetbv<V: VmcsAccess>(x: &mut Exit<'_, V>) -> Next {
    let r = &x.cpu.regs;
    let new = (r.rdx << 32) | (r.rax & 0xffff_ffff);
    if r.rcx as u32 != 0 || !xcr0_valid(new, x.env.xcr0_allowed) {
        return x.inject(IntrInfo::exception(vector::GP, true));
    }
    x.cpu.xcr0 = new;
    Next::Resume
}

/// Whether `new` is a valid XCR0 for a guest allowed `allowed` (SDM Vol.
/// 2B XSETBV: AMX's TILECFG and TILEDATA both or none too).
pub fn xcr0_valid(new: u64, allowed: u64) -> bool {
    let avx512 = new & xcr0::AVX512;
    let amx = new & xcr0::AMX;
    new & xcr0::X87 != 0
        && new & !allowed == 0
        && (new & xcr0::AVX == 0 || new & xcr0::SSE != 0)
        && (avx512 == 0 || (avx512 == xcr0::AVX512 && new & xcr0::AVX != 0))
        && (new & xcr0::BNDREGS != 0) == (new & xcr0::BNDCSR != 0)
        && (amx == 0 || amx == xcr0::AMX)
}

/// Whether the guest uses PAE paging (CR0.PG, CR4.PAE, not IA-32e): its
/// PDPTEs are VMCS fields with EPT (SDM Vol. 3C 27.3.2.4).
pub fn pae_paging<V: VmcsAccess>(v: &V) -> bool {
    v.read(GUEST_CR0) & cr0::PG != 0 && v.read(GUEST_CR4) & cr4::PAE != 0 && v.read(GUEST_IA32_EFER) & efer::LMA == 0
}

/// Sets or clears the "IA-32e mode guest" entry control, which must equal
/// EFER.LMA on entry (SDM Vol. 3C 27.3.1.1).
pub fn set_ia32e<V: VmcsAccess>(v: &V, on: bool) {
    let ctl = v.read(ENTRY_CONTROLS);
    v.write(ENTRY_CONTROLS, if on { ctl | entry::IA32E_GUEST } else { ctl & !entry::IA32E_GUEST });
}
