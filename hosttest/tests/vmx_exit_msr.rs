//! RDMSR (exit reason 31) and WRMSR (32): the MSRs rvmx emulates and their
//! rules, the userland filter and its completion, the host's get/set, and
//! the MSR bitmap (SDM Vol. 3C 25.6.9).

mod common;

use common::*;
use rvmx_pure::vmcs::field::*;
use rvmx_pure::vmcs::reset::reset_guest;
use rvmx_pure::vmx::exit::{self, msr as xmsr, CpuState, Env, Next, PendingMsr, UserExit};
use rvmx_pure::vmx::exit_info::ExitReason;
use rvmx_pure::vmx::msr::{
    bitmap_bit, build_bitmap, dirty, filter, misc_enable, GuestCaps, MsrFilter, MsrRange, Msrs,
    BITMAP_SIZE, SAVE_LIST,
};
use rvmx_pure::x86::msr;

const RIP: u64 = 0x1_0000;
const LEN: u32 = 2;
/// #GP with an error code, as injected (SDM Vol. 3C 25.8.3).
const GP: u64 = (1 << 31) | (1 << 11) | (3 << 8) | 13;
/// Garbage the instructions must ignore or overwrite.
const HIGH: u64 = 0xdead_beef_0000_0000;

/// A guest in its reset state but with CR0.PE (so that #GP carries its
/// error code), at RIP, with an exit of length LEN.
fn fake() -> FakeVmcs {
    let v = FakeVmcs::new();
    reset_guest(&v);
    v.set(GUEST_CR0, v.get(GUEST_CR0) | 1);
    v.set(GUEST_RIP, RIP);
    exit_with(&v, 0, LEN);
    v.clear_log();
    v
}

fn gp_injected(v: &FakeVmcs) -> bool {
    v.get(ENTRY_INTR_INFO) == GP
}

/// The guest's RDMSR of `index` (RCX bits 63:32 set, to be ignored):
/// `Err` if it got #GP. Checks RIP (moved past on success, kept on #GP)
/// and the register results.
fn rd_env(v: &FakeVmcs, cpu: &mut CpuState, env: &Env<'_>, index: u32) -> Result<u64, ()> {
    v.set(GUEST_RIP, RIP);
    v.set(ENTRY_INTR_INFO, 0);
    cpu.regs.rcx = HIGH | u64::from(index);
    cpu.regs.rax = u64::MAX;
    cpu.regs.rdx = u64::MAX;
    assert_eq!(exit::handle(v, ExitReason(31), cpu, env), Next::Resume, "RDMSR {index:#x}");
    if gp_injected(v) {
        assert_eq!(v.get(GUEST_RIP), RIP, "RDMSR {index:#x}: #GP keeps RIP");
        assert_eq!((cpu.regs.rax, cpu.regs.rdx), (u64::MAX, u64::MAX), "RDMSR {index:#x}: #GP writes nothing");
        assert_eq!(v.get(ENTRY_EXCEPTION_ERROR_CODE), 0);
        return Err(());
    }
    assert_eq!(v.get(GUEST_RIP), RIP + u64::from(LEN), "RDMSR {index:#x}");
    assert_eq!((cpu.regs.rax >> 32, cpu.regs.rdx >> 32), (0, 0), "RDMSR {index:#x}: upper halves");
    Ok((cpu.regs.rdx << 32) | cpu.regs.rax)
}

/// The guest's WRMSR of `val` to `index` (upper halves of RAX, RDX and
/// RCX set, to be ignored): `Err` if it got #GP.
fn wr_env(v: &FakeVmcs, cpu: &mut CpuState, env: &Env<'_>, index: u32, val: u64) -> Result<(), ()> {
    v.set(GUEST_RIP, RIP);
    v.set(ENTRY_INTR_INFO, 0);
    cpu.regs.rcx = HIGH | u64::from(index);
    cpu.regs.rax = HIGH | (val & 0xffff_ffff);
    cpu.regs.rdx = HIGH | (val >> 32);
    assert_eq!(exit::handle(v, ExitReason(32), cpu, env), Next::Resume, "WRMSR {index:#x}");
    if gp_injected(v) {
        assert_eq!(v.get(GUEST_RIP), RIP, "WRMSR {index:#x}: #GP keeps RIP");
        return Err(());
    }
    assert_eq!(v.get(GUEST_RIP), RIP + u64::from(LEN), "WRMSR {index:#x}");
    Ok(())
}

fn rd(v: &FakeVmcs, cpu: &mut CpuState, index: u32) -> Result<u64, ()> {
    rd_env(v, cpu, &env(), index)
}

fn wr(v: &FakeVmcs, cpu: &mut CpuState, index: u32, val: u64) -> Result<(), ()> {
    wr_env(v, cpu, &env(), index, val)
}

/// A guest offered nothing optional.
fn bare_env() -> Env<'static> {
    Env { guest: GuestCaps { phys_bits: 36, ..GuestCaps::default() }, ..env() }
}

// RDMSR returns EDX:EAX: the high half in EDX, the low in EAX, the upper
// halves of RDX and RAX zeroed; RCX bits 63:32 are ignored (SDM Vol. 2B).
#[test]
fn rdmsr_splits_into_edx_eax() {
    let v = fake();
    let mut cpu = CpuState::default();
    cpu.syscall[0] = 0x1234_5678_9abc_def0;
    assert_eq!(rd(&v, &mut cpu, msr::STAR), Ok(0x1234_5678_9abc_def0));
    assert_eq!((cpu.regs.rdx, cpu.regs.rax), (0x1234_5678, 0x9abc_def0));
}

// WRMSR writes EDX:EAX; RDX/RAX bits 63:32 and RCX bits 63:32 are ignored.
#[test]
fn wrmsr_combines_edx_eax() {
    let v = fake();
    let mut cpu = CpuState::default();
    assert_eq!(wr(&v, &mut cpu, msr::STAR, 0x0023_0010_8765_4321), Ok(()));
    assert_eq!(cpu.syscall[0], 0x0023_0010_8765_4321);
}

// An MSR rvmx does not know: #GP (error code 0), RIP at the instruction,
// no register written.
#[test]
fn unknown_msr_gives_gp() {
    for index in [0x1234, 0x4000_0000, 0xc000_0104, 0xc001_0000, 0x8b + 1, 0x210, 0x400, 0x6e0] {
        let v = fake();
        let mut cpu = CpuState::default();
        assert_eq!(rd(&v, &mut cpu, index), Err(()), "{index:#x}");
        assert_eq!(wr(&v, &mut cpu, index, 0), Err(()), "{index:#x}");
    }
}

// EFER round trip through the VMCS; SCE, LME, NXE with the CPUID bits.
#[test]
fn efer_round_trip() {
    let v = fake();
    let mut cpu = CpuState::default();
    let val = (1 << 0) | (1 << 8) | (1 << 11);
    assert_eq!(wr(&v, &mut cpu, msr::EFER, val), Ok(()));
    assert_eq!(v.get(GUEST_IA32_EFER), val);
    assert_eq!(rd(&v, &mut cpu, msr::EFER), Ok(val));
}

// Reserved EFER bits #GP, SVME (bit 12) among them (no SVM on Intel).
#[test]
fn efer_reserved_bits_gp() {
    for bit in [1, 7, 9, 12, 13, 14, 15, 16, 32, 63] {
        let v = fake();
        let mut cpu = CpuState::default();
        assert_eq!(wr(&v, &mut cpu, msr::EFER, 1 << bit), Err(()), "bit {bit}");
        assert_eq!(v.get(GUEST_IA32_EFER), 0, "bit {bit}");
    }
}

// SCE, LME (or LMA) and NXE need SYSCALL, LM and NX in the guest's CPUID.
#[test]
fn efer_bits_need_cpuid() {
    let e = bare_env();
    for bit in [0, 8, 10, 11] {
        let v = fake();
        let mut cpu = CpuState::default();
        assert_eq!(wr_env(&v, &mut cpu, &e, msr::EFER, 1 << bit), Err(()), "bit {bit}");
    }
    let v = fake();
    assert_eq!(wr_env(&v, &mut CpuState::default(), &e, msr::EFER, 0), Ok(()));
}

// LME cannot change while CR0.PG is 1 (SDM Vol. 3A 10.8.5); other bits can.
#[test]
fn efer_lme_frozen_while_paging() {
    let v = fake();
    let mut cpu = CpuState::default();
    v.set(GUEST_CR0, 0x8000_0031);
    assert_eq!(wr(&v, &mut cpu, msr::EFER, 1 << 8), Err(()));
    assert_eq!(wr(&v, &mut cpu, msr::EFER, 1 << 11), Ok(()));
    // In IA-32e mode: LME and LMA set; clearing LME #GPs, NXE is free.
    v.set(GUEST_IA32_EFER, (1 << 8) | (1 << 10));
    assert_eq!(wr(&v, &mut cpu, msr::EFER, 1 << 10), Err(()));
    assert_eq!(wr(&v, &mut cpu, msr::EFER, (1 << 8) | (1 << 10) | (1 << 11)), Ok(()));
    assert_eq!(v.get(GUEST_IA32_EFER), (1 << 8) | (1 << 10) | (1 << 11));
}

// LMA is the CPU's: written values of it are ignored, both ways (KVM's
// set_efer).
#[test]
fn efer_lma_write_ignored() {
    let v = fake();
    let mut cpu = CpuState::default();
    assert_eq!(wr(&v, &mut cpu, msr::EFER, (1 << 8) | (1 << 10)), Ok(()));
    assert_eq!(v.get(GUEST_IA32_EFER), 1 << 8);
    v.set(GUEST_CR0, 0x8000_0031);
    v.set(GUEST_IA32_EFER, (1 << 8) | (1 << 10));
    assert_eq!(wr(&v, &mut cpu, msr::EFER, 1 << 8), Ok(()));
    assert_eq!(v.get(GUEST_IA32_EFER), (1 << 8) | (1 << 10));
}

// A change of EFER is flagged for the run loop (SCE switches the SYSCALL
// MSRs); writing the same value is not.
#[test]
fn efer_change_flags_dirty() {
    let v = fake();
    let mut cpu = CpuState::default();
    wr(&v, &mut cpu, msr::EFER, 1).unwrap();
    assert_eq!(cpu.msrs.take_dirty(), dirty::EFER);
    wr(&v, &mut cpu, msr::EFER, 1).unwrap();
    assert_eq!(cpu.msrs.take_dirty(), 0);
}

// PAT: every byte 0, 1, 4, 5, 6 or 7 (SDM Vol. 3A 12.12.2); 2, 3 and 8 and
// above #GP, in any byte.
#[test]
fn pat_types() {
    let v = fake();
    let mut cpu = CpuState::default();
    assert_eq!(rd(&v, &mut cpu, msr::PAT), Ok(0x0007_0406_0007_0406));
    let good = 0x0706_0504_0100_0607;
    assert_eq!(wr(&v, &mut cpu, msr::PAT, good), Ok(()));
    assert_eq!(v.get(GUEST_IA32_PAT), good);
    for byte in 0..8 {
        for bad in [2u64, 3, 8, 0xff] {
            let val = (good & !(0xff << (8 * byte))) | (bad << (8 * byte));
            assert_eq!(wr(&v, &mut cpu, msr::PAT, val), Err(()), "byte {byte} = {bad}");
        }
    }
    assert_eq!(v.get(GUEST_IA32_PAT), good);
}

// SYSENTER_CS has 32 bits in the VMCS (the rest dropped, as KVM);
// SYSENTER_ESP/EIP must be canonical (SDM Vol. 2C WRMSR).
#[test]
fn sysenter_msrs() {
    let v = fake();
    let mut cpu = CpuState::default();
    assert_eq!(wr(&v, &mut cpu, msr::SYSENTER_CS, 0x1_0000_0010), Ok(()));
    assert_eq!(v.get(GUEST_SYSENTER_CS), 0x10);
    assert_eq!(rd(&v, &mut cpu, msr::SYSENTER_CS), Ok(0x10));
    for (index, f) in [(msr::SYSENTER_ESP, GUEST_SYSENTER_ESP), (msr::SYSENTER_EIP, GUEST_SYSENTER_EIP)] {
        assert_eq!(wr(&v, &mut cpu, index, 0xffff_8000_0000_1000), Ok(()));
        assert_eq!(v.get(f), 0xffff_8000_0000_1000);
        assert_eq!(rd(&v, &mut cpu, index), Ok(0xffff_8000_0000_1000));
        assert_eq!(wr(&v, &mut cpu, index, 0x0000_8000_0000_0000), Err(()));
        assert_eq!(v.get(f), 0xffff_8000_0000_1000);
    }
}

// FS and GS base live in the VMCS segment fields; non-canonical #GPs.
#[test]
fn fs_gs_base() {
    let v = fake();
    let mut cpu = CpuState::default();
    for (index, f) in [(msr::FS_BASE, Seg::Fs.fields().base), (msr::GS_BASE, Seg::Gs.fields().base)] {
        assert_eq!(wr(&v, &mut cpu, index, 0x7fff_1234_5000), Ok(()));
        assert_eq!(v.get(f), 0x7fff_1234_5000);
        assert_eq!(rd(&v, &mut cpu, index), Ok(0x7fff_1234_5000));
        assert_eq!(wr(&v, &mut cpu, index, 0x1_0000_0000_0000), Err(()));
    }
}

// STAR, LSTAR, CSTAR, FMASK in `CpuState::syscall`, flagged for the run
// loop; LSTAR/CSTAR canonical, FMASK 32 bits; STAR takes anything.
#[test]
fn syscall_msrs() {
    let v = fake();
    let mut cpu = CpuState::default();
    let vals = [u64::MAX, 0xffff_ffff_8100_0000, 0x0000_7fff_ffff_f000, 0x4_7700];
    for (i, (&index, &val)) in [msr::STAR, msr::LSTAR, msr::CSTAR, msr::SFMASK].iter().zip(&vals).enumerate() {
        assert_eq!(wr(&v, &mut cpu, index, val), Ok(()), "{index:#x}");
        assert_eq!(cpu.syscall[i], val);
        assert_eq!(rd(&v, &mut cpu, index), Ok(val));
        assert_eq!(cpu.msrs.take_dirty(), dirty::SYSCALL);
    }
    for (index, bad) in [(msr::LSTAR, 0x8000_0000_0000_0000), (msr::CSTAR, 0x0000_8000_0000_0000), (msr::SFMASK, 1 << 32)] {
        assert_eq!(wr(&v, &mut cpu, index, bad), Err(()), "{index:#x}");
        assert_eq!(cpu.msrs.take_dirty(), 0);
    }
    assert_eq!(cpu.syscall, vals);
}

// KERNEL_GS_BASE in `CpuState::kernel_gs_base`, canonical, flagged.
#[test]
fn kernel_gs_base() {
    let v = fake();
    let mut cpu = CpuState::default();
    assert_eq!(wr(&v, &mut cpu, msr::KERNEL_GS_BASE, 0xffff_8880_0000_0000), Ok(()));
    assert_eq!(cpu.kernel_gs_base, 0xffff_8880_0000_0000);
    assert_eq!(cpu.msrs.take_dirty(), dirty::KERNEL_GS_BASE);
    assert_eq!(rd(&v, &mut cpu, msr::KERNEL_GS_BASE), Ok(0xffff_8880_0000_0000));
    assert_eq!(wr(&v, &mut cpu, msr::KERNEL_GS_BASE, 0xff00_8880_0000_0000), Err(()));
    assert_eq!(cpu.kernel_gs_base, 0xffff_8880_0000_0000);
}

// The guest's TSC is the host's plus TSC_OFFSET (as RDTSC with TSC
// offsetting); a write sets the offset so that the guest reads the value,
// and moves TSC_ADJUST by as much (SDM Vol. 3B 19.17.3).
#[test]
fn tsc_and_offset() {
    let v = fake();
    let mut cpu = CpuState::default();
    v.set(TSC_OFFSET, 500);
    assert_eq!(rd(&v, &mut cpu, msr::TSC), Ok(HOST_TSC + 500));
    assert_eq!(wr(&v, &mut cpu, msr::TSC, HOST_TSC + 2000), Ok(()));
    assert_eq!(v.get(TSC_OFFSET), 2000);
    assert_eq!(cpu.msrs.tsc_adjust, 1500);
    // Back in time: the offset wraps below zero.
    assert_eq!(wr(&v, &mut cpu, msr::TSC, 10), Ok(()));
    assert_eq!(v.get(TSC_OFFSET), 10u64.wrapping_sub(HOST_TSC));
    assert_eq!(rd(&v, &mut cpu, msr::TSC), Ok(10));
    // TSC_ADJUST followed both moves: the offset is 500 less than it.
    assert_eq!(cpu.msrs.tsc_adjust, 10u64.wrapping_sub(HOST_TSC).wrapping_sub(500));
}

// TSC_ADJUST (CPUID.7.EBX[1]): a write moves the TSC by the change.
#[test]
fn tsc_adjust() {
    let v = fake();
    let mut cpu = CpuState::default();
    v.set(TSC_OFFSET, 100);
    assert_eq!(wr(&v, &mut cpu, msr::TSC_ADJUST, 40), Ok(()));
    assert_eq!(v.get(TSC_OFFSET), 140);
    assert_eq!(rd(&v, &mut cpu, msr::TSC_ADJUST), Ok(40));
    assert_eq!(wr(&v, &mut cpu, msr::TSC_ADJUST, 10), Ok(()));
    assert_eq!(v.get(TSC_OFFSET), 110);
    assert_eq!(rd(&v, &mut cpu, msr::TSC), Ok(HOST_TSC + 110));
    let e = bare_env();
    assert_eq!(rd_env(&v, &mut cpu, &e, msr::TSC_ADJUST), Err(()));
    assert_eq!(wr_env(&v, &mut cpu, &e, msr::TSC_ADJUST, 0), Err(()));
}

// TSC_AUX: with RDTSCP or RDPID; bits 63:32 reserved; flagged.
#[test]
fn tsc_aux() {
    let v = fake();
    let mut cpu = CpuState::default();
    assert_eq!(wr(&v, &mut cpu, msr::TSC_AUX, 0xffff_ffff), Ok(()));
    assert_eq!(cpu.msrs.take_dirty(), dirty::TSC_AUX);
    assert_eq!(rd(&v, &mut cpu, msr::TSC_AUX), Ok(0xffff_ffff));
    assert_eq!(wr(&v, &mut cpu, msr::TSC_AUX, 1 << 32), Err(()));
    assert_eq!(cpu.msrs.tsc_aux, 0xffff_ffff);
    let e = bare_env();
    assert_eq!(rd_env(&v, &mut cpu, &e, msr::TSC_AUX), Err(()));
    assert_eq!(wr_env(&v, &mut cpu, &e, msr::TSC_AUX, 1), Err(()));
    let rdpid = Env { guest: GuestCaps { rdpid: true, ..e.guest }, ..env() };
    assert_eq!(wr_env(&v, &mut cpu, &rdpid, msr::TSC_AUX, 7), Ok(()));
    assert_eq!(rd_env(&v, &mut cpu, &rdpid, msr::TSC_AUX), Ok(7));
}

// IA32_APIC_BASE after reset: 0xFEE00000, enabled, BSP on vCPU 0 only.
#[test]
fn apic_base_reset() {
    assert_eq!(Msrs::reset(0).apic_base, 0xfee0_0900);
    assert_eq!(Msrs::reset(1).apic_base, 0xfee0_0800);
    assert_eq!(Msrs::reset(7).apic_base, 0xfee0_0800);
    assert_eq!(Msrs::default(), Msrs::reset(0));
    let v = fake();
    let mut cpu = CpuState { msrs: Msrs::reset(3), ..CpuState::default() };
    assert_eq!(rd(&v, &mut cpu, msr::APIC_BASE), Ok(0xfee0_0800));
}

// APIC_BASE: reserved bits 7:0, 9, x2APIC enable (not offered) and bits at
// or above MAXPHYADDR #GP; the base, BSP and enable are written.
#[test]
fn apic_base_writes() {
    let v = fake();
    let mut cpu = CpuState::default();
    assert_eq!(wr(&v, &mut cpu, msr::APIC_BASE, 0x7f_fff0_0000), Ok(()));
    assert_eq!(rd(&v, &mut cpu, msr::APIC_BASE), Ok(0x7f_fff0_0000));
    assert_eq!(wr(&v, &mut cpu, msr::APIC_BASE, 0xfee0_0900), Ok(()));
    for bit in [0, 7, 9, 10, 39, 63] {
        assert_eq!(wr(&v, &mut cpu, msr::APIC_BASE, 0xfee0_0900 | 1 << bit), Err(()), "bit {bit}");
    }
    assert_eq!(cpu.msrs.apic_base, 0xfee0_0900);
}

// MISC_ENABLE: fast strings, no BTS, no PEBS after reset; the guest
// writes the R/W bits, not the read-only ones; reserved bits #GP. The
// host may set the read-only ones (restore).
#[test]
fn misc_enable() {
    let v = fake();
    let mut cpu = CpuState::default();
    assert_eq!(rd(&v, &mut cpu, msr::MISC_ENABLE), Ok(0x1801));
    // Clear fast strings and PEBS-unavailable, set XD disable and PERF_MON.
    assert_eq!(wr(&v, &mut cpu, msr::MISC_ENABLE, (1 << 34) | (1 << 11) | (1 << 7)), Ok(()));
    assert_eq!(rd(&v, &mut cpu, msr::MISC_ENABLE), Ok((1 << 34) | (1 << 12) | (1 << 11)));
    for bit in [1, 2, 13, 35, 63] {
        assert_eq!(wr(&v, &mut cpu, msr::MISC_ENABLE, 1 << bit), Err(()), "bit {bit}");
    }
    let e = env();
    assert_eq!(xmsr::set(&v, &mut cpu, &e, msr::MISC_ENABLE, misc_enable::PERF_MON), Ok(()));
    assert_eq!(xmsr::get(&v, &cpu, &e, msr::MISC_ENABLE), Ok(misc_enable::PERF_MON));
    assert_eq!(xmsr::set(&v, &mut cpu, &e, msr::MISC_ENABLE, 1 << 40), Err(()));
}

// MTRRcap reads like KVM's (VCNT 8, fixed ranges, WC) and is read-only.
#[test]
fn mtrrcap() {
    let v = fake();
    let mut cpu = CpuState::default();
    assert_eq!(rd(&v, &mut cpu, msr::MTRRCAP), Ok(0x508));
    assert_eq!(wr(&v, &mut cpu, msr::MTRRCAP, 0x508), Err(()));
}

// MTRRdefType: type 7:0, FE 10, E 11; reserved bits and types 2, 3, 7 #GP
// (SDM Vol. 3A 12.11.2.1).
#[test]
fn mtrr_def_type() {
    let v = fake();
    let mut cpu = CpuState::default();
    assert_eq!(rd(&v, &mut cpu, msr::MTRR_DEF_TYPE), Ok(0));
    assert_eq!(wr(&v, &mut cpu, msr::MTRR_DEF_TYPE, 0xc06), Ok(()));
    assert_eq!(rd(&v, &mut cpu, msr::MTRR_DEF_TYPE), Ok(0xc06));
    for bad in [0xc02, 0xc03, 0xc07, 0x806 | (1 << 9), 0x1006, 1 << 32] {
        assert_eq!(wr(&v, &mut cpu, msr::MTRR_DEF_TYPE, bad), Err(()), "{bad:#x}");
    }
    assert_eq!(cpu.msrs.mtrr_def_type, 0xc06);
}

// The 11 fixed-range MTRRs: each stored and read back; every byte a valid
// type (SDM Vol. 3A 12.11.2.2).
#[test]
fn mtrr_fixed() {
    let v = fake();
    let mut cpu = CpuState::default();
    let idx = [0x250, 0x258, 0x259, 0x268, 0x269, 0x26a, 0x26b, 0x26c, 0x26d, 0x26e, 0x26f];
    for (i, &index) in idx.iter().enumerate() {
        let val = 0x0606_0505_0404_0100 | (i as u64 & 1);
        assert_eq!(wr(&v, &mut cpu, index, val), Ok(()), "{index:#x}");
        assert_eq!(cpu.msrs.mtrr_fixed[i], val);
        assert_eq!(rd(&v, &mut cpu, index), Ok(val), "{index:#x}");
        assert_eq!(wr(&v, &mut cpu, index, 0x0606_0606_0206_0606), Err(()), "{index:#x}");
    }
    // 0x251..=0x257 and 0x25a..=0x267 are no MTRRs.
    assert_eq!(rd(&v, &mut cpu, 0x251), Err(()));
    assert_eq!(rd(&v, &mut cpu, 0x260), Err(()));
}

// Variable MTRRs 0..8: PHYSBASE (type 7:0, 11:8 reserved) and PHYSMASK
// (10:0 reserved, V 11), bits at and above MAXPHYADDR reserved (SDM Vol.
// 3A 12.11.2.3); pairs beyond VCNT do not exist.
#[test]
fn mtrr_variable() {
    let v = fake();
    let mut cpu = CpuState::default();
    for n in 0..8u32 {
        let (base, mask) = (0x200 + 2 * n, 0x201 + 2 * n);
        let b = 0x40_0000_0006 + (u64::from(n) << 20);
        assert_eq!(wr(&v, &mut cpu, base, b), Ok(()));
        assert_eq!(wr(&v, &mut cpu, mask, 0x7f_fff0_0800), Ok(()));
        assert_eq!(cpu.msrs.mtrr_var[n as usize], [b, 0x7f_fff0_0800]);
        assert_eq!(rd(&v, &mut cpu, base), Ok(b));
        assert_eq!(rd(&v, &mut cpu, mask), Ok(0x7f_fff0_0800));
        for bad in [0x1000 | 2, 0x1000 | 7, 0x1106, 0x80_0000_0006] {
            assert_eq!(wr(&v, &mut cpu, base, bad), Err(()), "base {n} {bad:#x}");
        }
        for bad in [0x7f_fff0_0801, 0x7f_fff0_0400, 0xff_fff0_0800] {
            assert_eq!(wr(&v, &mut cpu, mask, bad), Err(()), "mask {n} {bad:#x}");
        }
    }
    assert_eq!(rd(&v, &mut cpu, 0x210), Err(()));
    assert_eq!(wr(&v, &mut cpu, 0x211, 0), Err(()));
}

// FEATURE_CONTROL reads locked with VMX off; writes #GP (it is locked).
#[test]
fn feature_control_locked_without_vmx() {
    let v = fake();
    let mut cpu = CpuState::default();
    assert_eq!(rd(&v, &mut cpu, msr::FEATURE_CONTROL), Ok(1));
    assert_eq!(wr(&v, &mut cpu, msr::FEATURE_CONTROL, 5), Err(()));
    assert_eq!(wr(&v, &mut cpu, msr::FEATURE_CONTROL, 1), Err(()));
}

// What OSes probe: PLATFORM_ID and PLATFORM_INFO read 0 and are read-only;
// BIOS_SIGN_ID reads microcode revision 1, guest writes ignored (the
// update protocol writes 0 first); BIOS_UPDT_TRIG writes ignored, no read.
#[test]
fn probed_msrs() {
    let v = fake();
    let mut cpu = CpuState::default();
    for index in [msr::PLATFORM_ID, msr::PLATFORM_INFO] {
        assert_eq!(rd(&v, &mut cpu, index), Ok(0), "{index:#x}");
        assert_eq!(wr(&v, &mut cpu, index, 0), Err(()), "{index:#x}");
    }
    assert_eq!(wr(&v, &mut cpu, msr::BIOS_SIGN_ID, 0), Ok(()));
    assert_eq!(rd(&v, &mut cpu, msr::BIOS_SIGN_ID), Ok(1 << 32));
    assert_eq!(wr(&v, &mut cpu, msr::BIOS_UPDT_TRIG, 0x1234_5000), Ok(()));
    assert_eq!(rd(&v, &mut cpu, msr::BIOS_UPDT_TRIG), Err(()));
    assert_eq!(cpu.msrs, Msrs::default());
}

// Machine check: MCG_CAP 0 (no banks, no MCG_CTL), read-only; MCG_STATUS
// stored (RIPV, EIPV, MCIP); MCG_CTL and the banks #GP.
#[test]
fn machine_check_msrs() {
    let v = fake();
    let mut cpu = CpuState::default();
    assert_eq!(rd(&v, &mut cpu, msr::MCG_CAP), Ok(0));
    assert_eq!(wr(&v, &mut cpu, msr::MCG_CAP, 0), Err(()));
    assert_eq!(wr(&v, &mut cpu, msr::MCG_STATUS, 0b101), Ok(()));
    assert_eq!(rd(&v, &mut cpu, msr::MCG_STATUS), Ok(0b101));
    assert_eq!(wr(&v, &mut cpu, msr::MCG_STATUS, 0b1000), Err(()));
    assert_eq!(rd(&v, &mut cpu, msr::MCG_CTL), Err(()));
    assert_eq!(wr(&v, &mut cpu, msr::MCG_CTL, 0), Err(()));
    assert_eq!(rd(&v, &mut cpu, 0x400), Err(()));
}

// PERF_CAPABILITIES: 0 if the guest has PDCM, else #GP; read-only.
#[test]
fn perf_capabilities() {
    let v = fake();
    let mut cpu = CpuState::default();
    assert_eq!(rd(&v, &mut cpu, msr::PERF_CAPABILITIES), Ok(0));
    assert_eq!(wr(&v, &mut cpu, msr::PERF_CAPABILITIES, 0), Err(()));
    assert_eq!(rd_env(&v, &mut cpu, &bare_env(), msr::PERF_CAPABILITIES), Err(()));
}

// SPEC_CTRL: exists with IBRS, STIBP or SSBD; only the offered bits;
// stored and flagged for the run loop.
#[test]
fn spec_ctrl() {
    let v = fake();
    let mut cpu = CpuState::default();
    assert_eq!(wr(&v, &mut cpu, msr::SPEC_CTRL, 0b111), Ok(()));
    assert_eq!(cpu.msrs.spec_ctrl, 0b111);
    assert_eq!(cpu.msrs.take_dirty(), dirty::SPEC_CTRL);
    assert_eq!(rd(&v, &mut cpu, msr::SPEC_CTRL), Ok(0b111));
    assert_eq!(wr(&v, &mut cpu, msr::SPEC_CTRL, 1 << 3), Err(()));
    let e = bare_env();
    assert_eq!(rd_env(&v, &mut cpu, &e, msr::SPEC_CTRL), Err(()));
    assert_eq!(wr_env(&v, &mut cpu, &e, msr::SPEC_CTRL, 0), Err(()));
    // SSBD alone: the MSR exists, with bit 2 only.
    let ssbd = Env { guest: GuestCaps { ssbd: true, ..e.guest }, ..env() };
    assert_eq!(wr_env(&v, &mut cpu, &ssbd, msr::SPEC_CTRL, 0b100), Ok(()));
    assert_eq!(wr_env(&v, &mut cpu, &ssbd, msr::SPEC_CTRL, 0b001), Err(()));
    assert_eq!(rd_env(&v, &mut cpu, &ssbd, msr::SPEC_CTRL), Ok(0b100));
}

// PRED_CMD and FLUSH_CMD: write-only commands, bit 0 only; a 1 asks the
// run loop for IBPB / an L1D flush, a 0 does nothing; without the CPUID
// bit, #GP.
#[test]
fn command_msrs() {
    for (index, effect) in [(msr::PRED_CMD, dirty::IBPB), (msr::FLUSH_CMD, dirty::L1D_FLUSH)] {
        let v = fake();
        let mut cpu = CpuState::default();
        assert_eq!(wr(&v, &mut cpu, index, 1), Ok(()), "{index:#x}");
        assert_eq!(cpu.msrs.take_dirty(), effect);
        assert_eq!(wr(&v, &mut cpu, index, 0), Ok(()));
        assert_eq!(cpu.msrs.take_dirty(), 0);
        assert_eq!(wr(&v, &mut cpu, index, 2), Err(()));
        assert_eq!(wr(&v, &mut cpu, index, 1 << 32 | 1), Err(()));
        assert_eq!(rd(&v, &mut cpu, index), Err(()));
        assert_eq!(wr_env(&v, &mut cpu, &bare_env(), index, 1), Err(()));
        assert_eq!(cpu.msrs.take_dirty(), 0);
    }
}

// ARCH_CAPABILITIES: the value the host allows, if the guest's CPUID has
// it; read-only.
#[test]
fn arch_capabilities() {
    let v = fake();
    let mut cpu = CpuState::default();
    assert_eq!(rd(&v, &mut cpu, msr::ARCH_CAPABILITIES), Ok(ARCH_CAPABILITIES));
    assert_eq!(wr(&v, &mut cpu, msr::ARCH_CAPABILITIES, ARCH_CAPABILITIES), Err(()));
    assert_eq!(rd_env(&v, &mut cpu, &bare_env(), msr::ARCH_CAPABILITIES), Err(()));
}

// DEBUGCTL in the VMCS: LBR and BTF are dropped (KVM too), any other bit
// #GPs (nothing else is virtualized and the CPU loads it on entry).
#[test]
fn debugctl() {
    let v = fake();
    let mut cpu = CpuState::default();
    assert_eq!(wr(&v, &mut cpu, msr::DEBUGCTL, 0b11), Ok(()));
    assert_eq!(v.get(GUEST_IA32_DEBUGCTL), 0);
    for bit in [2, 6, 11, 12, 14, 63] {
        assert_eq!(wr(&v, &mut cpu, msr::DEBUGCTL, 1 << bit), Err(()), "bit {bit}");
    }
    v.set(GUEST_IA32_DEBUGCTL, 0x4000);
    assert_eq!(rd(&v, &mut cpu, msr::DEBUGCTL), Ok(0x4000));
}

fn range(base: u32, count: u32, flags: u32) -> MsrRange {
    MsrRange { base, count, flags }
}

// A filter has at most 16 ranges, none empty, none past 0xFFFFFFFF, each
// with READ and/or WRITE and nothing else.
#[test]
fn filter_validation() {
    let rw = filter::READ | filter::WRITE;
    assert!(MsrFilter::new(&[]).is_ok());
    assert!(MsrFilter::new(&[range(0, 1, rw); 16]).is_ok());
    assert!(MsrFilter::new(&[range(0, 1, rw); 17]).is_err());
    assert!(MsrFilter::new(&[range(0x10, 0, rw)]).is_err());
    assert!(MsrFilter::new(&[range(0xffff_ffff, 1, rw)]).is_ok());
    assert!(MsrFilter::new(&[range(0xffff_ffff, 2, rw)]).is_err());
    assert!(MsrFilter::new(&[range(0x10, 1, 0)]).is_err());
    assert!(MsrFilter::new(&[range(0x10, 1, 4)]).is_err());
    let f = MsrFilter::new(&[range(1, 2, filter::READ), range(5, 1, filter::WRITE)]).unwrap();
    assert_eq!(f.ranges(), &[range(1, 2, filter::READ), range(5, 1, filter::WRITE)]);
}

// Which accesses a filter sends to userland: inside the range, in the
// directions it names, ranges combined.
#[test]
fn filter_exits() {
    let f = MsrFilter::new(&[
        range(0x4000_0000, 0x100, filter::READ | filter::WRITE),
        range(msr::EFER, 1, filter::WRITE),
        range(0x10, 2, filter::READ),
    ])
    .unwrap();
    for (index, read, write) in [
        (0x3fff_ffff, false, false),
        (0x4000_0000, true, true),
        (0x4000_00ff, true, true),
        (0x4000_0100, false, false),
        (msr::EFER, false, true),
        (msr::EFER + 1, false, false),
        (0xf, false, false),
        (0x10, true, false),
        (0x11, true, false),
        (0x12, false, false),
    ] {
        assert_eq!((f.exits(index, false), f.exits(index, true)), (read, write), "{index:#x}");
    }
    assert!(!MsrFilter::EMPTY.exits(0, false));
}

fn filtered_env(f: &MsrFilter) -> Env<'_> {
    Env { msr_filter: f, ..env() }
}

// A filtered RDMSR goes to userland with RIP kept; the completion puts
// userland's value in EDX:EAX and steps over the instruction.
#[test]
fn filtered_rdmsr_completes_with_data() {
    let f = MsrFilter::new(&[range(0x4000_0000, 0x100, filter::READ)]).unwrap();
    let v = fake();
    let mut cpu = CpuState::default();
    cpu.regs.rcx = HIGH | 0x4000_0001;
    cpu.regs.rax = u64::MAX;
    let next = exit::handle(&v, ExitReason(31), &mut cpu, &filtered_env(&f));
    assert_eq!(next, Next::ToUser(UserExit::Msr { write: false, index: 0x4000_0001, data: 0 }));
    assert_eq!(v.get(GUEST_RIP), RIP);
    assert_eq!(cpu.pending_msr, Some(PendingMsr { write: false, len: LEN.into() }));
    assert_eq!(cpu.regs.rax, u64::MAX);
    // Other exits may come before the completion: the saved length counts.
    exit_with(&v, 0, 9);
    exit::complete_msr(&v, &mut cpu, 0x1122_3344_5566_7788, false);
    assert_eq!((cpu.regs.rdx, cpu.regs.rax), (0x1122_3344, 0x5566_7788));
    assert_eq!(v.get(GUEST_RIP), RIP + u64::from(LEN));
    assert_eq!(cpu.pending_msr, None);
    assert!(!v.written(ENTRY_INTR_INFO));
}

// A filtered WRMSR reports EDX:EAX; success steps over it, an error gives
// the guest #GP with RIP at the WRMSR and the registers untouched.
#[test]
fn filtered_wrmsr_completion() {
    let f = MsrFilter::new(&[range(0x4000_0000, 0x100, filter::WRITE)]).unwrap();
    for error in [false, true] {
        let v = fake();
        let mut cpu = CpuState::default();
        cpu.regs.rcx = 0x4000_0070;
        cpu.regs.rax = HIGH | 0x8765_4321;
        cpu.regs.rdx = HIGH | 0x1234;
        let next = exit::handle(&v, ExitReason(32), &mut cpu, &filtered_env(&f));
        let data = 0x1234_8765_4321;
        assert_eq!(next, Next::ToUser(UserExit::Msr { write: true, index: 0x4000_0070, data }));
        assert_eq!(cpu.pending_msr, Some(PendingMsr { write: true, len: LEN.into() }));
        let regs = cpu.regs;
        exit::complete_msr(&v, &mut cpu, 0xffff, error);
        assert_eq!(cpu.regs, regs, "a WRMSR completion writes no register");
        assert_eq!(cpu.pending_msr, None);
        if error {
            assert_eq!(v.get(GUEST_RIP), RIP);
            assert_eq!(v.get(ENTRY_INTR_INFO), GP);
            assert_eq!(v.get(ENTRY_EXCEPTION_ERROR_CODE), 0);
        } else {
            assert_eq!(v.get(GUEST_RIP), RIP + u64::from(LEN));
            assert!(!v.written(ENTRY_INTR_INFO));
        }
    }
}

// A failed RDMSR completion: #GP, RAX/RDX untouched.
#[test]
fn filtered_rdmsr_error_is_gp() {
    let f = MsrFilter::new(&[range(0x1234, 1, filter::READ)]).unwrap();
    let v = fake();
    let mut cpu = CpuState::default();
    cpu.regs.rcx = 0x1234;
    cpu.regs.rax = 7;
    exit::handle(&v, ExitReason(31), &mut cpu, &filtered_env(&f));
    exit::complete_msr(&v, &mut cpu, u64::MAX, true);
    assert_eq!((cpu.regs.rax, cpu.regs.rdx), (7, 0));
    assert_eq!((v.get(GUEST_RIP), v.get(ENTRY_INTR_INFO)), (RIP, GP));
}

// The filter comes first: a filtered MSR rvmx emulates (EFER) goes to
// userland without its state changing, an unknown one instead of #GP;
// the other direction is still emulated.
#[test]
fn filter_precedes_emulation() {
    let f = MsrFilter::new(&[range(msr::EFER, 1, filter::WRITE), range(0x1234, 1, filter::READ)]).unwrap();
    let e = filtered_env(&f);
    let v = fake();
    let mut cpu = CpuState::default();
    cpu.regs.rcx = u64::from(msr::EFER);
    cpu.regs.rax = 1 << 8;
    let next = exit::handle(&v, ExitReason(32), &mut cpu, &e);
    assert_eq!(next, Next::ToUser(UserExit::Msr { write: true, index: msr::EFER, data: 1 << 8 }));
    assert_eq!(v.get(GUEST_IA32_EFER), 0);
    cpu.pending_msr = None;
    v.set(GUEST_IA32_EFER, 1 << 11);
    assert_eq!(rd_env(&v, &mut cpu, &e, msr::EFER), Ok(1 << 11));
    cpu.regs.rcx = 0x1234;
    let next = exit::handle(&v, ExitReason(31), &mut cpu, &e);
    assert_eq!(next, Next::ToUser(UserExit::Msr { write: false, index: 0x1234, data: 0 }));
    assert!(!v.written(ENTRY_INTR_INFO));
    cpu.pending_msr = None;
    assert_eq!(wr_env(&v, &mut cpu, &e, 0x1234, 0), Err(()));
}

// Completion with nothing pending (or a second time) changes nothing.
#[test]
fn complete_msr_without_pending_does_nothing() {
    let v = fake();
    let mut cpu = CpuState::default();
    cpu.regs.rax = 5;
    exit::complete_msr(&v, &mut cpu, 0x99, false);
    exit::complete_msr(&v, &mut cpu, 0x99, true);
    assert_eq!(cpu.regs.rax, 5);
    assert_eq!(v.get(GUEST_RIP), RIP);
    assert!(v.all_writes().is_empty());
}

// The bitmap layout (SDM Vol. 3C 25.6.9): read low at 0, read high at
// 1024, write low at 2048, write high at 3072; bit n of a quarter is MSR
// base + n; MSRs outside both ranges have no bit (they always exit).
#[test]
fn bitmap_layout() {
    assert_eq!(bitmap_bit(0, false), Some((0, 1)));
    assert_eq!(bitmap_bit(0x1fff, false), Some((1023, 0x80)));
    assert_eq!(bitmap_bit(0xc000_0000, false), Some((1024, 1)));
    assert_eq!(bitmap_bit(0xc000_1fff, false), Some((2047, 0x80)));
    assert_eq!(bitmap_bit(0, true), Some((2048, 1)));
    assert_eq!(bitmap_bit(0x1fff, true), Some((3071, 0x80)));
    assert_eq!(bitmap_bit(0xc000_0000, true), Some((3072, 1)));
    assert_eq!(bitmap_bit(0xc000_1fff, true), Some((4095, 0x80)));
    // SYSENTER_CS 0x174: byte 0x2e, bit 4; FS_BASE 0xc0000100: byte 1024 + 0x20, bit 0.
    assert_eq!(bitmap_bit(msr::SYSENTER_CS, true), Some((2048 + 0x2e, 1 << 4)));
    assert_eq!(bitmap_bit(msr::FS_BASE, false), Some((1024 + 0x20, 1)));
    for index in [0x2000, 0x4000_0000, 0xbfff_ffff, 0xc000_2000, u32::MAX] {
        assert_eq!(bitmap_bit(index, false), None, "{index:#x}");
        assert_eq!(bitmap_bit(index, true), None, "{index:#x}");
    }
}

// What passes: FS/GS/KERNEL_GS base (high range) and SYSENTER_* (low
// range) both ways, TSC reads with TSC offsetting; all else exits.
#[test]
fn bitmap_passes_only_switched_msrs() {
    let mut bm = [0u8; BITMAP_SIZE];
    build_bitmap(&mut bm, &MsrFilter::EMPTY, true);
    for index in [msr::FS_BASE, msr::GS_BASE, msr::KERNEL_GS_BASE, msr::SYSENTER_CS, msr::SYSENTER_ESP, msr::SYSENTER_EIP] {
        assert!(!bitmap_exits(&bm, index, false), "read {index:#x}");
        assert!(!bitmap_exits(&bm, index, true), "write {index:#x}");
    }
    assert!(!bitmap_exits(&bm, msr::TSC, false));
    assert!(bitmap_exits(&bm, msr::TSC, true));
    for index in [msr::EFER, msr::STAR, msr::LSTAR, msr::TSC_AUX, msr::PAT, msr::SPEC_CTRL, msr::APIC_BASE, 0x0, 0x1fff, 0xc000_1fff] {
        assert!(bitmap_exits(&bm, index, false), "read {index:#x}");
        assert!(bitmap_exits(&bm, index, true), "write {index:#x}");
    }
    // Exactly 6 MSRs both ways and one read pass: 13 bits clear.
    let clear: u32 = bm.iter().map(|b| b.count_zeros()).sum();
    assert_eq!(clear, 13);
    // Without TSC offsetting, TSC reads exit too.
    build_bitmap(&mut bm, &MsrFilter::EMPTY, false);
    assert!(bitmap_exits(&bm, msr::TSC, false));
}

// A filtered direction of a pass-through MSR exits; the other one passes.
#[test]
fn bitmap_honours_filter() {
    let f = MsrFilter::new(&[range(msr::FS_BASE, 1, filter::WRITE), range(msr::TSC, 1, filter::READ), range(msr::SYSENTER_CS, 3, filter::READ)])
        .unwrap();
    let mut bm = [0u8; BITMAP_SIZE];
    build_bitmap(&mut bm, &f, true);
    assert!(!bitmap_exits(&bm, msr::FS_BASE, false));
    assert!(bitmap_exits(&bm, msr::FS_BASE, true));
    assert!(bitmap_exits(&bm, msr::TSC, false));
    for index in [msr::SYSENTER_CS, msr::SYSENTER_ESP, msr::SYSENTER_EIP] {
        assert!(bitmap_exits(&bm, index, false));
        assert!(!bitmap_exits(&bm, index, true));
    }
    assert!(!bitmap_exits(&bm, msr::GS_BASE, true));
}

// Every MSR of SAVE_LIST reads from a vCPU with guest state and writes
// into a fresh one (RVMX_GET_MSRS, RVMX_SET_MSRS), which then reads the
// same: save/restore works. A reset vCPU saves and restores whatever its
// CPUID offers.
#[test]
fn host_save_restore_round_trip() {
    let e = env();
    let (v, mut cpu) = (fake(), CpuState { msrs: Msrs::reset(2), ..CpuState::default() });
    let g = env();
    for (index, val) in [
        (msr::EFER, 0xd01),
        (msr::PAT, 0x0606_0606_0606_0606),
        (msr::SYSENTER_CS, 0x10),
        (msr::SYSENTER_EIP, 0xffff_ffff_8100_0000),
        (msr::FS_BASE, 0x7f00_0000_0000),
        (msr::KERNEL_GS_BASE, 0xffff_8880_0000_0000),
        (msr::LSTAR, 0xffff_ffff_8100_0040),
        (msr::TSC, 123_456_789),
        (msr::TSC_ADJUST, 77),
        (msr::TSC_AUX, 3),
        (msr::SPEC_CTRL, 1),
        (msr::MCG_STATUS, 1),
        (msr::MTRR_DEF_TYPE, 0xc06),
        (0x26f, 0x0505_0505_0505_0505),
        (0x20f, 0xfff0_0800),
    ] {
        assert_eq!(wr_env(&v, &mut cpu, &g, index, val), Ok(()), "{index:#x}");
    }
    let (v2, mut cpu2) = (fake(), CpuState::default());
    for &index in SAVE_LIST {
        let val = xmsr::get(&v, &cpu, &e, index).unwrap_or_else(|()| panic!("get {index:#x}"));
        xmsr::set(&v2, &mut cpu2, &e, index, val).unwrap_or_else(|()| panic!("set {index:#x} = {val:#x}"));
    }
    for &index in SAVE_LIST {
        assert_eq!(xmsr::get(&v2, &cpu2, &e, index), xmsr::get(&v, &cpu, &e, index), "{index:#x}");
    }
    assert_eq!(cpu2.msrs.apic_base, 0xfee0_0800);
    assert_eq!(cpu2.syscall, cpu.syscall);

    let bare = bare_env();
    let (v3, mut cpu3) = (fake(), CpuState::default());
    for &index in SAVE_LIST {
        let val = xmsr::get(&v3, &cpu3, &bare, index).unwrap_or_else(|()| panic!("bare get {index:#x}"));
        xmsr::set(&v3, &mut cpu3, &bare, index, val).unwrap_or_else(|()| panic!("bare set {index:#x} = {val:#x}"));
    }
}

// Where the host may do more than the guest: no CPUID gates, LME with
// paging on, the TSC set without moving TSC_ADJUST, BIOS_SIGN_ID and
// PLATFORM_INFO set; constant MSRs take only their own value; reserved
// bits are refused as for the guest; no effects happen.
#[test]
fn host_access_rules() {
    let e = bare_env();
    let v = fake();
    let mut cpu = CpuState::default();
    v.set(GUEST_CR0, 0x8000_0031);
    assert_eq!(xmsr::set(&v, &mut cpu, &e, msr::EFER, 1 << 8), Ok(()));
    assert_eq!(xmsr::set(&v, &mut cpu, &e, msr::EFER, 1 << 12), Err(()));
    assert_eq!(xmsr::set(&v, &mut cpu, &e, msr::TSC, HOST_TSC + 50), Ok(()));
    assert_eq!((v.get(TSC_OFFSET), cpu.msrs.tsc_adjust), (50, 0));
    assert_eq!(xmsr::set(&v, &mut cpu, &e, msr::TSC_ADJUST, 9), Ok(()));
    assert_eq!((v.get(TSC_OFFSET), cpu.msrs.tsc_adjust), (50, 9));
    assert_eq!(xmsr::set(&v, &mut cpu, &e, msr::BIOS_SIGN_ID, 0xab << 32), Ok(()));
    assert_eq!(xmsr::get(&v, &cpu, &e, msr::BIOS_SIGN_ID), Ok(0xab << 32));
    assert_eq!(xmsr::set(&v, &mut cpu, &e, msr::PLATFORM_INFO, 0x2000), Ok(()));
    assert_eq!(xmsr::set(&v, &mut cpu, &e, msr::PLATFORM_INFO, 1 << 31), Err(()));
    for (index, own) in [(msr::MTRRCAP, 0x508), (msr::FEATURE_CONTROL, 1), (msr::MCG_CAP, 0), (msr::PLATFORM_ID, 0)] {
        assert_eq!(xmsr::set(&v, &mut cpu, &e, index, own), Ok(()), "{index:#x}");
        assert_eq!(xmsr::set(&v, &mut cpu, &e, index, own ^ 4), Err(()), "{index:#x}");
    }
    assert_eq!(xmsr::set(&v, &mut cpu, &e, msr::SPEC_CTRL, 0), Ok(()));
    assert_eq!(xmsr::set(&v, &mut cpu, &e, msr::SPEC_CTRL, 1), Err(()), "no IBRS offered");
    assert_eq!(xmsr::set(&v, &mut cpu, &e, msr::PRED_CMD, 1), Ok(()));
    assert_eq!(xmsr::get(&v, &cpu, &e, msr::ARCH_CAPABILITIES), Err(()));
    assert_eq!(xmsr::set(&v, &mut cpu, &env(), msr::ARCH_CAPABILITIES, ARCH_CAPABILITIES), Ok(()));
    assert_eq!(xmsr::set(&v, &mut cpu, &env(), msr::ARCH_CAPABILITIES, 0), Err(()));
    assert_eq!(xmsr::get(&v, &cpu, &e, 0x1234), Err(()));
    assert_eq!(cpu.msrs.take_dirty(), dirty::EFER | dirty::SPEC_CTRL);
    // The host is not filtered.
    let f = MsrFilter::new(&[range(msr::STAR, 1, filter::READ | filter::WRITE)]).unwrap();
    assert_eq!(xmsr::set(&v, &mut cpu, &filtered_env(&f), msr::STAR, 5), Ok(()));
    assert_eq!(xmsr::get(&v, &cpu, &filtered_env(&f), msr::STAR), Ok(5));
}

// GuestCaps from a CPUID table: the bits named in its fields, MAXPHYADDR
// from 80000008H, leaves above the maximum ignored.
#[test]
fn guest_caps_from_cpuid() {
    let full = |leaf: u32, _sub: u32| -> [u32; 4] {
        match leaf {
            0 => [0xd, 0, 0, 0],
            1 => [0, 0, 1 << 15, 0],
            7 => [0, 1 << 1, 1 << 22, (1 << 26) | (1 << 27) | (1 << 28) | (1 << 31)],
            0x8000_0000 => [0x8000_0008, 0, 0, 0],
            0x8000_0001 => [0, 0, 0, (1 << 11) | (1 << 20) | (1 << 27) | (1 << 29)],
            0x8000_0008 => [0x3027, 0, 0, 0],
            _ => [0; 4],
        }
    };
    let c = GuestCaps::from_cpuid(full);
    assert_eq!(
        c,
        GuestCaps {
            syscall: true,
            nx: true,
            lm: true,
            rdtscp: true,
            rdpid: true,
            tsc_adjust: true,
            ibrs_ibpb: true,
            stibp: true,
            l1d_flush: true,
            ssbd: true,
            pdcm: true,
            phys_bits: 39,
            arch_capabilities: None,
        }
    );
    // Maximum leaves 1 and 80000000H: nothing from 7, 80000001H, 80000008H.
    let low = |leaf: u32, sub: u32| match leaf {
        0 => [1, 0, 0, 0],
        0x8000_0000 => [0x8000_0000, 0, 0, 0],
        _ => full(leaf, sub),
    };
    assert_eq!(GuestCaps::from_cpuid(low), GuestCaps { pdcm: true, phys_bits: 36, ..GuestCaps::default() });
}

/// Whether the access exits with `bitmap` in use (no bit: it always does).
fn bitmap_exits(bitmap: &[u8; rvmx_pure::vmx::msr::BITMAP_SIZE], index: u32, write: bool) -> bool {
    match bitmap_bit(index, write) {
        Some((byte, mask)) => bitmap[byte] & mask != 0,
        None => true,
    }
}
