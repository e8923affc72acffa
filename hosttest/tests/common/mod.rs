//! Shared test support: a fake VMCS and the environment the exit handlers
//! take. Each integration test file does `mod common;`.
#![allow(dead_code)]

use std::cell::RefCell;
use std::collections::HashMap;

use rvmx_pure::vmcs::field::{Field, Kind, Readable, Ro, Rw, Value, VmcsAccess};
use rvmx_pure::vmx::caps::{proc2, RawCaps};
use rvmx_pure::vmx::exit::{self, CpuState, Env, Next};
use rvmx_pure::vmx::exit_info::ExitReason;
use rvmx_pure::vmx::msr::{GuestCaps, MsrFilter};

/// A VMCS in a hash map, keyed by the field encoding (`Field::raw()`).
/// Reads of fields never set return 0. Every write through `write_raw` is
/// logged; a write to a VM-exit information field panics (VMWRITE would
/// fail on them: SDM Vol. 3C 25.11.2), so no handler may do it.
#[derive(Default)]
pub struct FakeVmcs {
    fields: RefCell<HashMap<u32, u64>>,
    writes: RefCell<Vec<(u32, u64)>>,
}

/// VMWRITE keeps only the bits the field has (SDM Vol. 3C 31.3, VMWRITE).
fn truncate(f: Field, v: u64) -> u64 {
    match f.bits() {
        64 => v,
        n => v & ((1u64 << n) - 1),
    }
}

impl VmcsAccess for FakeVmcs {
    fn read_raw(&self, f: Field) -> u64 {
        self.fields.borrow().get(&f.raw()).copied().unwrap_or(0)
    }

    fn write_raw(&self, f: Field, v: u64) {
        assert!(
            f.kind() != Kind::ExitInfo,
            "write to VM-exit information field {:#06x} (value {v:#x})",
            f.raw()
        );
        let v = truncate(f, v);
        self.writes.borrow_mut().push((f.raw(), v));
        self.fields.borrow_mut().insert(f.raw(), v);
    }
}

impl FakeVmcs {
    pub fn new() -> Self {
        Self::default()
    }

    /// Presets a writable field without logging it (test setup).
    pub fn set<T: Value>(&self, f: Rw<T>, v: T) {
        self.fields.borrow_mut().insert(f.field().raw(), v.raw());
    }

    /// Presets a VM-exit information field, as the CPU does on an exit.
    pub fn set_info<T: Value>(&self, f: Ro<T>, v: T) {
        self.fields.borrow_mut().insert(f.field().raw(), v.raw());
    }

    /// A field's current value, zero-extended.
    pub fn get<F: Readable>(&self, f: F) -> u64 {
        self.read(f).raw()
    }

    /// The values written to `f` through `write_raw`, in order.
    pub fn writes_to<F: Readable>(&self, f: F) -> Vec<u64> {
        let enc = f.encoding().raw();
        self.writes.borrow().iter().filter(|(e, _)| *e == enc).map(|&(_, v)| v).collect()
    }

    /// Whether `f` was written at all.
    pub fn written<F: Readable>(&self, f: F) -> bool {
        !self.writes_to(f).is_empty()
    }

    /// Every (encoding, value) written, in order.
    pub fn all_writes(&self) -> Vec<(u32, u64)> {
        self.writes.borrow().clone()
    }

    /// Forgets the write log (after setup done through handlers).
    pub fn clear_log(&self) {
        self.writes.borrow_mut().clear();
    }
}

/// Capabilities of a typical CPU with unrestricted guest: CR0_FIXED0 asks
/// for PE, NE and PG (unrestricted guest frees PE and PG), CR4_FIXED0 for
/// VMXE; the secondary controls allow unrestricted guest.
pub const CAPS: RawCaps = RawCaps {
    basic: 0,
    pin: 0,
    proc: 0xfff9_fffe_0401_e172,
    proc2: (proc2::UNRESTRICTED_GUEST as u64 | proc2::EPT as u64 | proc2::VPID as u64) << 32,
    exit: 0,
    entry: 0,
    true_pin: 0,
    true_proc: 0,
    true_exit: 0,
    true_entry: 0,
    misc: 0,
    cr0_fixed0: 0x8000_0021,
    cr0_fixed1: 0xffff_ffff,
    cr4_fixed0: 0x2000,
    cr4_fixed1: 0x0037_67ff,
    ept_vpid: 0,
};

/// Host CPUID for the tests: leaf 1 reports VMX, SMX, XSAVE, AVX and an
/// APIC ID of 0x3c (which the guest must not see); other leaves return a
/// pattern made from the leaf and subleaf.
pub fn fake_host_cpuid(leaf: u32, sub: u32) -> [u32; 4] {
    match leaf {
        1 => [0x0009_06ea, 0x3c10_0800, 0x7ffa_f3ff, 0xbfeb_fbff],
        _ => [leaf ^ 0xa5a5_0000, sub ^ 0x5a5a_0000, leaf.wrapping_mul(3), sub.wrapping_add(7)],
    }
}

/// The vCPU id the tests' environment uses.
pub const VCPU_ID: u32 = 5;

/// A guest offered everything the MSR code looks at: SYSCALL, NX, LM,
/// RDTSCP, TSC_ADJUST, IBRS/IBPB, STIBP, L1D_FLUSH, SSBD, PDCM, 39-bit
/// physical addresses and an IA32_ARCH_CAPABILITIES value.
pub const GUEST: GuestCaps = GuestCaps {
    syscall: true,
    nx: true,
    lm: true,
    rdtscp: true,
    rdpid: false,
    tsc_adjust: true,
    ibrs_ibpb: true,
    stibp: true,
    l1d_flush: true,
    ssbd: true,
    pdcm: true,
    phys_bits: 39,
    arch_capabilities: Some(ARCH_CAPABILITIES),
};

/// The IA32_ARCH_CAPABILITIES value the tests' guest reads.
pub const ARCH_CAPABILITIES: u64 = 0x2b;

/// The host TSC the tests' RDTSC returns.
pub const HOST_TSC: u64 = 1_000_000;

pub fn fake_rdtsc() -> u64 {
    HOST_TSC
}

/// No MSR goes to userland.
pub static NO_FILTER: MsrFilter = MsrFilter::EMPTY;

pub fn env() -> Env<'static> {
    Env {
        cpuid: test_cpuid(),
        cr4_reserved: 0,
        caps: &CAPS,
        vcpu_id: VCPU_ID,
        host_cpuid: fake_host_cpuid,
        xcr0_allowed: 0x7,
        maxphyaddr: 39,
        gbpages: true,
        guest: GUEST,
        rdtsc: fake_rdtsc,
        msr_filter: &NO_FILTER,
    }
}

/// Sets up an exit: qualification and instruction length.
pub fn exit_with(v: &FakeVmcs, qualification: u64, len: u32) {
    v.set_info(rvmx_pure::vmcs::field::EXIT_QUALIFICATION, qualification);
    v.set_info(rvmx_pure::vmcs::field::EXIT_INSTRUCTION_LENGTH, len);
}

/// Runs the dispatcher on exit `reason`.
pub fn handle(v: &FakeVmcs, reason: u32, cpu: &mut CpuState) -> Next {
    exit::handle(v, ExitReason(reason), cpu, &env())
}

/// rvmx's default CPUID table over `fake_host_cpuid`, with XSAVE (x87,
/// SSE, AVX) and TSC_ADJUST offered.
pub fn test_cpuid() -> &'static [rvmx_pure::vmx::cpuid::CpuidEntry] {
    use rvmx_pure::vmx::cpuid::{default_table, CpuidEntry, Enabled, MAX_ENTRIES};
    static T: std::sync::OnceLock<Vec<CpuidEntry>> = std::sync::OnceLock::new();
    T.get_or_init(|| {
        let mut buf = vec![CpuidEntry::default(); MAX_ENTRIES];
        let en = Enabled { xsave: Some(0x7), tsc_adjust: true, ..Enabled::NONE };
        let n = default_table(fake_host_cpuid, &en, &mut buf);
        buf.truncate(n);
        buf
    })
}

/// Guest RAM from GPA 0 for the emulation tests: everything above it is
/// not RAM (MMIO).
pub struct Ram(pub Vec<u8>);

impl rvmx_pure::vmx::exit::strio::GuestMem for Ram {
    fn read(&mut self, gpa: u64, buf: &mut [u8]) -> bool {
        let a = gpa as usize;
        match self.0.get(a..a + buf.len()) {
            Some(s) => {
                buf.copy_from_slice(s);
                true
            }
            None => false,
        }
    }
    fn write(&mut self, gpa: u64, buf: &[u8]) -> bool {
        let a = gpa as usize;
        match self.0.get_mut(a..a + buf.len()) {
            Some(s) => {
                s.copy_from_slice(buf);
                true
            }
            None => false,
        }
    }
}
