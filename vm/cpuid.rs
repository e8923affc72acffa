// SPDX-License-Identifier: GPL-2.0
//! A vCPU's CPUID table: stored here, with what follows from it (the
//! policy itself is pure: vmx/cpuid.rs), and copied to and from userland
//! for RVMX_GET_SUPPORTED_CPUID, RVMX_GET_CPUID and RVMX_SET_CPUID.

use crate::dev::ioctl::Arg;
use crate::uapi;
use crate::vmx::caps::{proc2, RawCaps};
use crate::vmx::cpuid::{self, CpuidEntry, Enabled, Feature, MAX_ENTRIES};
use crate::vmx::insn;
use crate::vmx::msr::{GuestCaps, MsrFilter};
use crate::x86::{cr4, xcr0};
use kernel::prelude::*;
use kernel::uaccess::{UserPtr, UserSlice};

/// A vCPU's table and what the exit handlers derive from it.
pub(crate) struct Cpuid {
    /// The table the guest reads.
    pub(crate) entries: KVec<CpuidEntry>,
    /// XCR0 bits the guest may set (0: no XSAVE).
    pub(crate) xcr0_allowed: u64,
    /// CR4 bits the guest may not set (features it is not offered).
    pub(crate) cr4_reserved: u64,
    /// The guest's MAXPHYADDR and 1-GiB pages, for page walks.
    pub(crate) maxphyaddr: u8,
    pub(crate) gbpages: bool,
    /// For the MSR rules.
    pub(crate) guest_caps: GuestCaps,
    /// The VM's MSR filter as this vCPU's MSR bitmap has it, and its
    /// generation (kept here, with the rest the exit handlers read).
    pub(crate) msr_filter: MsrFilter,
    pub(crate) filter_gen: u64,
}

/// What rvmx gives guests, from the controls it uses (vmcs/setup.rs) and
/// what the run loop switches: IA32_TSC_ADJUST emulated; INVPCID where
/// the CPU allows it; XSAVE with the host's x87, SSE, AVX, AVX-512 and
/// PKRU states (XCR0 switched by the run loop); protection keys where the
/// host uses them (PKRU switched by the run loop); nothing else.
fn enabled(caps: &RawCaps) -> Enabled {
    let host_cr4 = insn::read_cr4();
    let xsave = (host_cr4 & cr4::OSXSAVE != 0)
        .then(|| insn::xgetbv0() & (xcr0::X87 | xcr0::SSE | xcr0::AVX | xcr0::AVX512 | xcr0::PKRU));
    Enabled {
        tsc_adjust: true,
        invpcid: caps.proc2().allows(proc2::INVPCID),
        xsave,
        pku: host_cr4 & cr4::PKE != 0,
        ..Enabled::NONE
    }
}

/// The supported table (what SET_CPUID accepts).
pub(crate) fn supported(caps: &RawCaps) -> Result<KVec<CpuidEntry>> {
    table(|out| cpuid::supported(insn::cpuid, &enabled(caps), out))
}

/// A table filled by `fill` (returns the count), as long as it is.
fn table(fill: impl FnOnce(&mut [CpuidEntry]) -> usize) -> Result<KVec<CpuidEntry>> {
    let mut buf = KVec::from_elem(CpuidEntry::default(), MAX_ENTRIES, GFP_KERNEL)?;
    let n = fill(&mut buf[..]).min(MAX_ENTRIES);
    let mut v = KVec::with_capacity(n, GFP_KERNEL)?;
    v.extend_from_slice(&buf[..n], GFP_KERNEL)?;
    Ok(v)
}

impl Cpuid {
    /// rvmx's default table for a new vCPU.
    pub(crate) fn new(caps: &RawCaps, msr_filter: MsrFilter, filter_gen: u64) -> Result<Self> {
        let entries = table(|out| cpuid::default_table(insn::cpuid, &enabled(caps), out))?;
        let sup = supported(caps)?;
        Ok(Self::derive(entries, &sup, msr_filter, filter_gen))
    }

    /// A table userland set: checked against the supported one.
    pub(crate) fn from_user(entries: KVec<CpuidEntry>, caps: &RawCaps, msr_filter: MsrFilter, filter_gen: u64) -> Result<Self> {
        let sup = supported(caps)?;
        if let Err(r) = cpuid::validate(&entries, &sup) {
            pr_debug!("RVMX_SET_CPUID refused: {:?}\n", r);
            return Err(EINVAL);
        }
        Ok(Self::derive(entries, &sup, msr_filter, filter_gen))
    }

    /// The CR4 bits whose writes exit because the table does not offer
    /// them (the guest/host mask gets them besides the host-owned ones).
    pub(crate) fn cpuid_cr4_mask_bits(&self) -> u64 {
        // Only bits that exist: the rest the CPU refuses itself (FIXED1).
        self.cr4_reserved & crate::vmx::cpu::loaded_caps().map(|c| c.cr4_fixed1).unwrap_or(0)
    }

    fn derive(entries: KVec<CpuidEntry>, sup: &[CpuidEntry], msr_filter: MsrFilter, filter_gen: u64) -> Self {
        let t = &entries[..];
        Cpuid {
            xcr0_allowed: if cpuid::guest_has(t, Feature::Xsave) { cpuid::guest_xcr0_mask(t, sup) } else { 0 },
            cr4_reserved: cpuid::cr4_reserved(t),
            maxphyaddr: cpuid::guest_maxphyaddr(t),
            gbpages: cpuid::guest_has(t, Feature::Pdpe1gb),
            guest_caps: GuestCaps::from_cpuid(|l, s| cpuid::lookup(t, l, s)),
            msr_filter,
            filter_gen,
            entries,
        }
    }
}

/// One entry in the ABI's layout.
const ENTRY: usize = core::mem::size_of::<uapi::rvmx_cpuid_entry>();

/// GET_SUPPORTED_CPUID / GET_CPUID: writes `entries` to userland.
pub(crate) fn copy_out(arg: &mut Arg<'_>, entries: &[CpuidEntry]) -> Result<isize> {
    let mut c: uapi::rvmx_cpuid = arg.read()?;
    if c.reserved != 0 {
        return Err(EINVAL);
    }
    let asked = c.nent as usize;
    c.nent = entries.len() as u32;
    arg.write(&c);
    if asked < entries.len() {
        return Err(E2BIG);
    }
    let mut w = UserSlice::new(c.entries as UserPtr, entries.len() * ENTRY).writer();
    for e in entries {
        let words = [e.leaf, e.subleaf, e.flags, e.regs[0], e.regs[1], e.regs[2], e.regs[3], 0];
        for x in words {
            w.write_slice(&x.to_ne_bytes())?;
        }
    }
    Ok(0)
}

/// SET_CPUID: reads userland's table (reserved fields zero, known flags).
pub(crate) fn copy_in(arg: &Arg<'_>) -> Result<KVec<CpuidEntry>> {
    let c: uapi::rvmx_cpuid = arg.read()?;
    let n = c.nent as usize;
    if c.reserved != 0 || n > MAX_ENTRIES {
        return Err(EINVAL);
    }
    let mut r = UserSlice::new(c.entries as UserPtr, n * ENTRY).reader();
    let mut out = KVec::with_capacity(n, GFP_KERNEL)?;
    for _ in 0..n {
        let mut raw = [0u8; ENTRY];
        r.read_slice(&mut raw)?;
        let w = |i: usize| u32::from_ne_bytes([raw[4 * i], raw[4 * i + 1], raw[4 * i + 2], raw[4 * i + 3]]);
        if w(7) != 0 {
            return Err(EINVAL);
        }
        out.push(CpuidEntry { leaf: w(0), subleaf: w(1), flags: w(2), regs: [w(3), w(4), w(5), w(6)] }, GFP_KERNEL)?;
    }
    Ok(out)
}
