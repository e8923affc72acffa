//! The VM-entry auditor (`vmx/entry_check.rs`): control fields (SDM Vol. 3C
//! 27.2.1), host state (27.2.2-27.2.4) and guest state (27.3.1). Each test
//! starts from a state that passes every check, breaks one thing, and
//! expects the field and the rule.

mod common;

use common::FakeVmcs;
use rvmx_pure::vmcs::field::*;
use rvmx_pure::vmx::caps::{entry, exit, pin, proc, proc2, RawCaps};
use rvmx_pure::vmx::entry_check::*;
use rvmx_pure::vmx::entry_check::Seg; // not the field module's Seg
use rvmx_pure::vmx::exit::{self as vmexit, Account, Env, UserExit};

const fn msr(must_be_1: u32, may_be_1: u32) -> u64 {
    ((may_be_1 as u64) << 32) | must_be_1 as u64
}

/// A CPU like a recent Intel core: TRUE control MSRs, every feature the
/// checks look at but 5-level EPT, CR3-target count 4, activity states
/// HLT, shutdown and wait-for-SIPI, no zero-length injection.
const CPU: RawCaps = RawCaps {
    basic: (1 << 55) | (6 << 50) | (0x400 << 32) | 4,
    pin: 0,
    proc: 0,
    proc2: msr(0, 0x005f_7fff),
    exit: 0,
    entry: 0,
    true_pin: msr(0x16, 0xff),
    true_proc: msr(0x0400_6172, 0xfff9_fffe),
    true_exit: msr(0x0003_6dfb, 0x01ff_ffff),
    true_entry: msr(0x11fb, 0x0003_ffff),
    misc: (4 << 16) | (7 << 6) | (1 << 5) | 5,
    cr0_fixed0: 0x8000_0021,
    cr0_fixed1: 0xffff_ffff,
    cr4_fixed0: 0x2000,
    cr4_fixed1: 0x00f7_67ff,
    ept_vpid: 0x0000_0f01_0673_4141,
};

/// MAXPHYADDR of the test CPU.
const WIDTH: u32 = 39;

/// CPUID with leaf 80000008H: 39 physical, 48 linear address bits.
fn cpuid39(leaf: u32, _sub: u32) -> [u32; 4] {
    match leaf {
        0x8000_0000 => [0x8000_0008, 0, 0, 0],
        0x8000_0008 => [0x3027, 0, 0, 0],
        _ => [0; 4],
    }
}

fn env() -> Env<'static> {
    Env {
        caps: &CPU,
        vcpu_id: 0,
        host_cpuid: cpuid39,
        cpuid: common::test_cpuid(),
        cr4_reserved: 0,
        xcr0_allowed: 0,
        maxphyaddr: 39,
        gbpages: false,
        guest: common::GUEST,
        rdtsc: common::fake_rdtsc,
        msr_filter: &common::NO_FILTER,
    }
}

/// The controls rvmx writes (vmcs/setup.rs), adjusted to `CPU`, with a
/// real-mode guest CR0.
fn controls() -> ControlState {
    let pinv = CPU.pin().adjust(pin::EXT_INTR | pin::NMI, pin::PREEMPTION_TIMER).unwrap();
    let procv = CPU
        .proc()
        .adjust(
            proc::HLT | proc::UNCOND_IO | proc::SECONDARY | proc::CR8_LOAD | proc::CR8_STORE | proc::MOV_DR,
            proc::RDPMC | proc::MWAIT | proc::MONITOR,
        )
        .unwrap();
    let proc2v = CPU.proc2().adjust(proc2::EPT | proc2::VPID | proc2::UNRESTRICTED_GUEST, proc2::WBINVD).unwrap();
    let exitv = CPU
        .exit()
        .adjust(exit::HOST_64 | exit::SAVE_EFER | exit::LOAD_EFER | exit::SAVE_PAT | exit::LOAD_PAT | exit::SAVE_DEBUG, 0)
        .unwrap();
    let entryv = CPU.entry().adjust(entry::LOAD_EFER | entry::LOAD_PAT | entry::LOAD_DEBUG, 0).unwrap();
    ControlState {
        pin: pinv,
        proc: procv,
        proc2: proc2v,
        exit: exitv,
        entry: entryv,
        eptp: 0x1234_5000 | (3 << 3) | 6,
        vpid: 1,
        guest_cr0: 0x6000_0030,
        maxphyaddr: WIDTH,
        ..Default::default()
    }
}

/// A 64-bit Linux host's state.
fn host() -> HostState {
    HostState {
        cr0: 0x8005_0033,
        cr3: 0x1_2345_6000,
        cr4: 0x0007_26b0,
        cr0_fixed: (CPU.cr0_fixed0, CPU.cr0_fixed1),
        cr4_fixed: (CPU.cr4_fixed0, CPU.cr4_fixed1),
        sysenter_esp: 0xffff_fe00_0000_5000,
        sysenter_eip: 0xffff_ffff_8100_1000,
        pat: 0x0007_0406_0007_0406,
        efer: 0xd01,
        selectors: [0, 0x10, 0x18, 0, 0, 0, 0x40],
        fs_base: 0x7f00_0000_0000,
        gs_base: 0xffff_8880_0000_0000,
        tr_base: 0xffff_fe00_0000_3000,
        gdtr_base: 0xffff_fe00_0000_1000,
        idtr_base: 0xffff_fe00_0000_0000,
        rip: 0xffff_ffff_8100_0000,
    }
}

fn seg(selector: u16, limit: u32, ar: u32) -> Seg {
    Seg { selector, base: 0, limit, ar }
}

/// The state rvmx gives a new vCPU (real mode, unrestricted guest), with
/// the CR0.NE / CR4.VMXE that rvmx forces.
fn real_mode() -> GuestState {
    GuestState {
        cr0: 0x6000_0030,
        cr4: 0x2000,
        dr7: 0x400,
        pat: 0x0007_0406_0007_0406,
        rflags: 2,
        rip: 0xfff0,
        cr0_fixed: (0x8000_0021, 0xffff_ffff),
        cr4_fixed: (0x2000, 0x0037_27ff),
        misc: CPU.misc,
        maxphyaddr: WIDTH,
        unrestricted: true,
        ept: true,
        load_debug: true,
        load_pat: true,
        load_efer: true,
        cs: Seg { base: 0xffff_0000, ..seg(0xf000, 0xffff, 0x9b) },
        ss: seg(0, 0xffff, 0x93),
        ds: seg(0, 0xffff, 0x93),
        es: seg(0, 0xffff, 0x93),
        fs: seg(0, 0xffff, 0x93),
        gs: seg(0, 0xffff, 0x93),
        tr: seg(0, 0xffff, 0x8b),
        ldtr: seg(0, 0xffff, 0x82),
        gdtr: (0, 0xffff),
        idtr: (0, 0xffff),
        link_pointer: u64::MAX,
        ..Default::default()
    }
}

/// The long-mode state the selftests use.
fn long_mode() -> GuestState {
    GuestState {
        cr0: 0x8000_0031,
        cr4: 0x2020,
        efer: 0x500,
        ia32e: true,
        rip: 0xffff_8000_0000_1000,
        cs: seg(8, 0xffff_ffff, 0xa09b),
        ss: seg(0x10, 0xffff_ffff, 0xc093),
        ds: seg(0x10, 0xffff_ffff, 0xc093),
        es: seg(0x10, 0xffff_ffff, 0xc093),
        fs: seg(0x10, 0xffff_ffff, 0xc093),
        gs: seg(0x10, 0xffff_ffff, 0xc093),
        ldtr: seg(0, 0, 1 << 16),
        ..real_mode()
    }
}

/// 32-bit protected mode with PAE paging (the PDPTEs matter).
fn pae32() -> GuestState {
    GuestState {
        cr0: 0x8000_0031,
        cr4: 0x2020,
        efer: 0,
        rip: 0x1000,
        cs: seg(8, 0xffff_ffff, 0xc09b),
        ss: seg(0x10, 0xffff_ffff, 0xc093),
        ds: seg(0x10, 0xffff_ffff, 0xc093),
        es: seg(0x10, 0xffff_ffff, 0xc093),
        fs: seg(0x10, 0xffff_ffff, 0xc093),
        gs: seg(0x10, 0xffff_ffff, 0xc093),
        tr: seg(0x18, 0x67, 0x8b),
        ldtr: seg(0, 0, 1 << 16),
        ..real_mode()
    }
}

/// Virtual-8086 mode under 32-bit protected mode.
fn v86() -> GuestState {
    let s = Seg { selector: 0x1000, base: 0x1_0000, limit: 0xffff, ar: 0xf3 };
    GuestState {
        cr0: 0x31,
        rflags: 2 | (1 << 17) | (1 << 9),
        rip: 0x100,
        cs: s,
        ss: s,
        ds: s,
        es: s,
        fs: s,
        gs: s,
        tr: seg(0x18, 0x67, 0x8b),
        ..real_mode()
    }
}

/// An event to inject: valid, `kind`, `vector`, maybe an error code.
fn inject(kind: u32, vector: u32, error_code: bool) -> u32 {
    (1 << 31) | (kind << 8) | vector | if error_code { 1 << 11 } else { 0 }
}

#[track_caller]
fn expect(found: Option<Finding>, field: &str, rule: &str) {
    let f = found.unwrap_or_else(|| panic!("nothing found; expected {field}: {rule}"));
    assert_eq!(f.field, field, "rule: {}", f.rule);
    assert!(f.rule.contains(rule), "{field}: {:?} does not say {rule:?}", f.rule);
    assert!(f.rule.contains("(SDM Vol. 3C 27."), "no section: {}", f.rule);
}

fn ctl(c: &ControlState) -> Option<Finding> {
    check_controls(c, &CPU)
}

fn hst(h: &HostState) -> Option<Finding> {
    check_host(h, &controls())
}

#[test]
fn good_states_pass() {
    assert_eq!(ctl(&controls()), None);
    assert_eq!(hst(&host()), None);
    for g in [real_mode(), long_mode(), pae32(), v86()] {
        assert_eq!(check(&g), None, "{g:?}");
    }
}

// ---- VM-execution control fields (SDM Vol. 3C 27.2.1.1) ----

#[test]
fn pin_based_reserved_bits() {
    let mut c = controls();
    c.pin &= !(1 << 1); // a default1 bit the TRUE MSR still requires
    expect(ctl(&c), "PIN_BASED_VM_EXEC_CONTROL", "PINBASED_CTLS");
    let mut c = controls();
    c.pin |= 1 << 8; // beyond the allowed 1-settings
    expect(ctl(&c), "PIN_BASED_VM_EXEC_CONTROL", "forbids");
}

#[test]
fn proc_based_reserved_bits() {
    let mut c = controls();
    c.proc |= 1; // bit 0 may not be 1
    expect(ctl(&c), "CPU_BASED_VM_EXEC_CONTROL", "PROCBASED_CTLS");
}

#[test]
fn secondary_reserved_bits_only_when_activated() {
    let mut c = controls();
    c.proc2 |= 1 << 15; // not in the allowed 1-settings
    expect(ctl(&c), "SECONDARY_VM_EXEC_CONTROL", "PROCBASED_CTLS2");
    // Without "activate secondary controls" the field is not checked (and
    // EPT, VPID and unrestricted guest are off with it).
    c.proc &= !proc::SECONDARY;
    assert_eq!(ctl(&c), None);
}

#[test]
fn cr3_target_count() {
    let mut c = controls();
    c.cr3_target_count = 4;
    assert_eq!(ctl(&c), None);
    c.cr3_target_count = 5;
    expect(ctl(&c), "CR3_TARGET_COUNT", "IA32_VMX_MISC");
}

#[test]
fn io_and_msr_bitmap_addresses() {
    let mut c = controls();
    c.proc |= proc::IO_BITMAPS;
    c.io_bitmap = [0x1000, 0x2000];
    assert_eq!(ctl(&c), None);
    c.io_bitmap[0] = 0x1800;
    expect(ctl(&c), "IO_BITMAP_A", "4-KiB aligned");
    c.io_bitmap = [0x1000, 1 << WIDTH];
    expect(ctl(&c), "IO_BITMAP_B", "physical-address width");
    let mut c = controls();
    c.proc |= proc::MSR_BITMAP;
    c.msr_bitmap = 0x3000 | 8;
    expect(ctl(&c), "MSR_BITMAP", "4-KiB aligned");
}

// IA32_VMX_BASIC[48]: the structures must lie below 4 GiB (SDM Vol. 3D A.1).
#[test]
fn basic_bit_48_limits_addresses_to_32_bits() {
    let mut c = controls();
    c.proc |= proc::IO_BITMAPS;
    c.io_bitmap = [0x1_0000_0000, 0x2000];
    assert_eq!(ctl(&c), None);
    let caps = RawCaps { basic: CPU.basic | (1 << 48), ..CPU };
    expect(check_controls(&c, &caps), "IO_BITMAP_A", "physical-address width");
}

#[test]
fn tpr_shadow_and_apic_virtualization() {
    let mut c = controls();
    c.proc |= proc::TPR_SHADOW;
    c.virtual_apic = 0x5000;
    c.tpr_threshold = 0xf;
    assert_eq!(ctl(&c), None);
    c.virtual_apic = 0x5004;
    expect(ctl(&c), "VIRTUAL_APIC_PAGE_ADDR", "4-KiB aligned");
    c.virtual_apic = 0x5000;
    c.tpr_threshold = 0x10;
    expect(ctl(&c), "TPR_THRESHOLD", "bits 31:4");
    // Without TPR shadow, x2APIC virtualization is refused.
    let mut c = controls();
    c.proc2 |= proc2::X2APIC;
    expect(ctl(&c), "SECONDARY_VM_EXEC_CONTROL", "need use TPR shadow");
    // With it, x2APIC mode and APIC-access virtualization exclude each other.
    c.proc |= proc::TPR_SHADOW;
    c.virtual_apic = 0x5000;
    assert_eq!(ctl(&c), None);
    c.proc2 |= proc2::APIC_ACCESS;
    c.apic_access = 0xfee0_0000;
    expect(ctl(&c), "SECONDARY_VM_EXEC_CONTROL", "cannot both be 1");
    c.proc2 &= !proc2::X2APIC;
    c.apic_access = 0xfee0_0010;
    expect(ctl(&c), "APIC_ACCESS_ADDR", "4-KiB aligned");
}

#[test]
fn virtual_nmis() {
    let mut c = controls();
    c.pin |= pin::VIRTUAL_NMI;
    c.proc |= proc::NMI_WINDOW;
    assert_eq!(ctl(&c), None);
    c.pin &= !pin::NMI;
    expect(ctl(&c), "PIN_BASED_VM_EXEC_CONTROL", "needs NMI exiting");
    let mut c = controls();
    c.proc |= proc::NMI_WINDOW;
    expect(ctl(&c), "CPU_BASED_VM_EXEC_CONTROL", "needs virtual NMIs");
}

/// Controls with virtual-interrupt delivery and posted interrupts, valid.
fn posted() -> ControlState {
    let mut c = controls();
    c.proc |= proc::TPR_SHADOW;
    c.virtual_apic = 0x5000;
    c.proc2 |= proc2::VINTR_DELIVERY;
    c.pin |= pin::POSTED_INTR;
    c.exit |= exit::ACK_INTR;
    c.posted_intr_nv = 0xf2;
    c.posted_intr_desc = 0x6040;
    c
}

#[test]
fn virtual_interrupt_delivery_and_posted_interrupts() {
    assert_eq!(ctl(&posted()), None);
    let mut c = posted();
    c.pin &= !pin::EXT_INTR;
    expect(ctl(&c), "PIN_BASED_VM_EXEC_CONTROL", "needs external-interrupt exiting");
    let mut c = posted();
    c.proc2 &= !proc2::VINTR_DELIVERY;
    expect(ctl(&c), "PIN_BASED_VM_EXEC_CONTROL", "needs virtual-interrupt delivery");
    let mut c = posted();
    c.exit &= !exit::ACK_INTR;
    expect(ctl(&c), "VM_EXIT_CONTROLS", "acknowledge interrupt on exit");
    let mut c = posted();
    c.posted_intr_nv = 0x100;
    expect(ctl(&c), "POSTED_INTR_NV", "bits 15:8");
    let mut c = posted();
    c.posted_intr_desc = 0x6020;
    expect(ctl(&c), "POSTED_INTR_DESC_ADDR", "64-byte aligned");
}

#[test]
fn vpid_zero() {
    let mut c = controls();
    c.vpid = 0;
    expect(ctl(&c), "VIRTUAL_PROCESSOR_ID", "must not be 0");
    c.proc2 &= !proc2::VPID;
    assert_eq!(ctl(&c), None);
}

#[test]
fn ept_pointer() {
    let mut c = controls();
    c.eptp = (c.eptp & !7) | 1; // WC: never allowed
    expect(ctl(&c), "EPT_POINTER", "memory type");
    c.eptp &= !7; // UC: this CPU allows it
    assert_eq!(ctl(&c), None);
    let mut c = controls();
    c.eptp = (c.eptp & !0x38) | (4 << 3); // 5-level, which this CPU lacks
    expect(ctl(&c), "EPT_POINTER", "page-walk length");
    let mut c = controls();
    c.eptp |= 1 << 6;
    assert_eq!(ctl(&c), None);
    expect(check_controls(&c, &RawCaps { ept_vpid: CPU.ept_vpid & !(1 << 21), ..CPU }), "EPT_POINTER", "bit 6");
    let mut c = controls();
    c.eptp |= 1 << 9;
    expect(ctl(&c), "EPT_POINTER", "reserved bits 11:8");
    let mut c = controls();
    c.eptp |= 1 << WIDTH;
    expect(ctl(&c), "EPT_POINTER", "physical-address width");
    // Bit 7 (CET supervisor shadow stacks) comes last.
    let mut c = controls();
    c.eptp |= 1 << 7;
    expect(ctl(&c), "EPT_POINTER", "bit 7");
    c.vpid = 0;
    expect(ctl(&c), "VIRTUAL_PROCESSOR_ID", "must not be 0");
}

#[test]
fn features_that_need_ept() {
    let mut c = controls();
    c.proc2 &= !proc2::EPT;
    expect(ctl(&c), "SECONDARY_VM_EXEC_CONTROL", "unrestricted guest needs enable EPT");
    let mut c = controls();
    c.proc2 |= proc2::PML;
    c.pml = 0x7000;
    assert_eq!(ctl(&c), None);
    c.pml = 0x7008;
    expect(ctl(&c), "PML_ADDRESS", "4-KiB aligned");
    c.proc2 &= !(proc2::EPT | proc2::UNRESTRICTED_GUEST);
    expect(ctl(&c), "SECONDARY_VM_EXEC_CONTROL", "enable PML needs enable EPT");
    let mut c = controls();
    c.proc2 &= !(proc2::EPT | proc2::UNRESTRICTED_GUEST);
    c.proc2 |= proc2::MODE_BASED_EPT;
    expect(ctl(&c), "SECONDARY_VM_EXEC_CONTROL", "mode-based execute control");
}

#[test]
fn shadowing_and_ve_addresses() {
    let mut c = controls();
    c.proc2 |= proc2::SHADOW_VMCS | proc2::EPT_VE;
    c.vmrw_bitmap = [0x8000, 0x9000];
    c.ve_info = 0xa000;
    assert_eq!(ctl(&c), None);
    c.vmrw_bitmap[1] = 0x9001;
    expect(ctl(&c), "VMWRITE_BITMAP", "4-KiB aligned");
    c.vmrw_bitmap[1] = 0x9000;
    c.ve_info = 1 << 45;
    expect(ctl(&c), "VE_INFORMATION_ADDRESS", "physical-address width");
}

// ---- VM-exit control fields (SDM Vol. 3C 27.2.1.2) ----

#[test]
fn exit_controls_reserved_bits() {
    let mut c = controls();
    c.exit &= !1; // default1 bit 0
    expect(ctl(&c), "VM_EXIT_CONTROLS", "EXIT_CTLS");
}

#[test]
fn save_preemption_timer_needs_the_timer() {
    let mut c = controls();
    c.exit |= exit::SAVE_PREEMPTION_TIMER;
    assert_eq!(ctl(&c), None);
    c.pin &= !pin::PREEMPTION_TIMER;
    expect(ctl(&c), "VM_EXIT_CONTROLS", "save VMX-preemption timer value");
}

#[test]
fn msr_areas() {
    let mut c = controls();
    c.exit_msr_store = (2, 0x1_0010);
    c.exit_msr_load = (2, 0x1_0040);
    c.entry_msr_load = (2, 0x1_0080);
    assert_eq!(ctl(&c), None);
    c.exit_msr_store.1 = 0x1_0018; // 8-byte aligned only
    expect(ctl(&c), "VM_EXIT_MSR_STORE_ADDR", "16-byte aligned");
    c.exit_msr_store.1 = 0x1_0010;
    // The first byte fits, the last (base + 16 * count - 1) does not.
    c.exit_msr_load = (2, (1 << WIDTH) - 16);
    expect(ctl(&c), "VM_EXIT_MSR_LOAD_ADDR", "last byte");
    c.exit_msr_load = (0, 1); // no entries: the address is not checked
    c.entry_msr_load.1 = 1 << 50;
    expect(ctl(&c), "VM_ENTRY_MSR_LOAD_ADDR", "physical-address width");
    c.entry_msr_load.1 = u64::MAX - 15; // would wrap around
    expect(ctl(&c), "VM_ENTRY_MSR_LOAD_ADDR", "last byte");
}

// ---- VM-entry control fields (SDM Vol. 3C 27.2.1.3) ----

#[test]
fn entry_controls_reserved_bits_and_smm() {
    let mut c = controls();
    c.entry |= 1 << 20; // beyond the allowed 1-settings
    expect(ctl(&c), "VM_ENTRY_CONTROLS", "ENTRY_CTLS");
    let mut c = controls();
    c.entry |= entry::SMM;
    expect(ctl(&c), "VM_ENTRY_CONTROLS", "outside SMM");
}

#[test]
fn injected_event_type_and_vector() {
    let mut c = controls();
    for ok in [inject(0, 0x20, false), inject(2, 2, false), inject(3, 6, false), inject(7, 0, false)] {
        c.entry_intr_info = ok;
        assert_eq!(ctl(&c), None, "{ok:#x}");
    }
    c.entry_intr_info = inject(1, 0x20, false);
    expect(ctl(&c), "VM_ENTRY_INTR_INFO_FIELD", "1 is reserved");
    c.entry_intr_info = inject(2, 3, false);
    expect(ctl(&c), "VM_ENTRY_INTR_INFO_FIELD", "vector 2");
    c.entry_intr_info = inject(3, 32, false);
    expect(ctl(&c), "VM_ENTRY_INTR_INFO_FIELD", "at most 31");
    c.entry_intr_info = inject(7, 1, false);
    expect(ctl(&c), "VM_ENTRY_INTR_INFO_FIELD", "vector 0");
    // Type 7 needs monitor trap flag support.
    c.entry_intr_info = inject(7, 0, false);
    let no_mtf = RawCaps { true_proc: CPU.true_proc & !(u64::from(proc::MTF) << 32), ..CPU };
    expect(check_controls(&c, &no_mtf), "VM_ENTRY_INTR_INFO_FIELD", "monitor trap flag");
    c.entry_intr_info = inject(0, 0x20, false) | (1 << 12);
    expect(ctl(&c), "VM_ENTRY_INTR_INFO_FIELD", "reserved bits 30:12");
    // Not valid: nothing else in the field matters.
    c.entry_intr_info = (1 << 12) | (1 << 8);
    assert_eq!(ctl(&c), None);
}

#[test]
fn injected_error_code_consistency() {
    let mut c = controls();
    c.guest_cr0 = 0x8000_0031; // protected mode
    c.entry_intr_info = inject(3, 13, true);
    c.entry_error_code = 0x18;
    assert_eq!(ctl(&c), None);
    c.entry_intr_info = inject(3, 13, false); // #GP without its error code
    expect(ctl(&c), "VM_ENTRY_INTR_INFO_FIELD", "deliver error code");
    c.entry_intr_info = inject(3, 6, true); // #UD has none
    expect(ctl(&c), "VM_ENTRY_INTR_INFO_FIELD", "deliver error code");
    // Real mode under unrestricted guest: no error code, ever.
    c.guest_cr0 = 0x6000_0030;
    c.entry_intr_info = inject(3, 13, true);
    expect(ctl(&c), "VM_ENTRY_INTR_INFO_FIELD", "CR0.PE = 0");
    c.entry_intr_info = inject(3, 13, false);
    assert_eq!(ctl(&c), None);
    // IA32_VMX_BASIC[56]: any vector, with or without (SDM Vol. 3D A.1).
    c.entry_intr_info = inject(3, 6, true);
    assert_eq!(check_controls(&c, &RawCaps { basic: CPU.basic | (1 << 56), ..CPU }), None);
    // Bits 31:16 of a delivered error code are 0.
    c.guest_cr0 = 0x8000_0031;
    c.entry_intr_info = inject(3, 14, true);
    c.entry_error_code = 0x1_0002;
    expect(ctl(&c), "VM_ENTRY_EXCEPTION_ERROR_CODE", "bits 31:16");
}

#[test]
fn injected_software_event_length() {
    let mut c = controls();
    c.entry_intr_info = inject(4, 0x80, false); // INT n
    c.entry_insn_len = 2;
    assert_eq!(ctl(&c), None);
    c.entry_insn_len = 16;
    expect(ctl(&c), "VM_ENTRY_INSTRUCTION_LEN", "1-15");
    c.entry_intr_info = inject(6, 3, false); // INT3
    c.entry_insn_len = 0;
    expect(ctl(&c), "VM_ENTRY_INSTRUCTION_LEN", "IA32_VMX_MISC bit 30");
    assert_eq!(check_controls(&c, &RawCaps { misc: CPU.misc | (1 << 30), ..CPU }), None);
}

// ---- Host state (SDM Vol. 3C 27.2.2-27.2.4) ----

#[test]
fn host_control_registers() {
    let mut h = host();
    h.cr0 &= !1; // PE: FIXED0 requires it, and nothing frees it for the host
    expect(hst(&h), "HOST_CR0", "FIXED0");
    let mut h = host();
    h.cr4 &= !(1 << 13); // VMXE
    expect(hst(&h), "HOST_CR4", "FIXED0");
    let mut h = host();
    h.cr0 &= !(1 << 16);
    h.cr4 |= 1 << 23; // CET without WP
    expect(hst(&h), "HOST_CR4", "CR0.WP");
    let mut h = host();
    h.cr3 |= 1 << WIDTH;
    expect(hst(&h), "HOST_CR3", "physical-address width");
}

#[test]
fn host_msrs() {
    let mut h = host();
    h.sysenter_esp = 0x0000_8000_0000_0000;
    expect(hst(&h), "HOST_IA32_SYSENTER_ESP", "canonical");
    let mut h = host();
    h.sysenter_eip = 0x1234_0000_0000_0000;
    expect(hst(&h), "HOST_IA32_SYSENTER_EIP", "canonical");
    let mut h = host();
    h.pat = 0x0007_0406_0007_0206; // byte 1 is 2: reserved
    expect(hst(&h), "HOST_IA32_PAT", "each byte");
    // Only checked when the exit loads it.
    let c = ControlState { exit: controls().exit & !exit::LOAD_PAT, ..controls() };
    assert_eq!(check_host(&h, &c), None);
    let mut h = host();
    h.efer |= 1 << 1;
    expect(hst(&h), "HOST_IA32_EFER", "reserved");
    h.efer = 0x801; // LME and LMA clear: not a 64-bit host
    expect(hst(&h), "HOST_IA32_EFER", "host address-space size");
}

#[test]
fn host_selectors() {
    for (i, name) in ["HOST_ES_SELECTOR", "HOST_CS_SELECTOR", "HOST_SS_SELECTOR", "HOST_DS_SELECTOR", "HOST_FS_SELECTOR", "HOST_GS_SELECTOR", "HOST_TR_SELECTOR"]
        .into_iter()
        .enumerate()
    {
        let mut h = host();
        h.selectors[i] |= if i % 2 == 0 { 3 } else { 4 }; // RPL or TI
        expect(hst(&h), name, "RPL (bits 1:0) and TI (bit 2)");
    }
    let mut h = host();
    h.selectors[1] = 0;
    expect(hst(&h), "HOST_CS_SELECTOR", "0000H");
    let mut h = host();
    h.selectors[6] = 0;
    expect(hst(&h), "HOST_TR_SELECTOR", "0000H");
    // A null SS is fine for a 64-bit host.
    let mut h = host();
    h.selectors[2] = 0;
    assert_eq!(hst(&h), None);
}

#[test]
fn host_bases_canonical() {
    let bad = 0x0000_8000_0000_0000;
    type Base = fn(&mut HostState) -> &mut u64;
    let cases: [(&str, Base); 5] = [
        ("HOST_FS_BASE", |h| &mut h.fs_base),
        ("HOST_GS_BASE", |h| &mut h.gs_base),
        ("HOST_GDTR_BASE", |h| &mut h.gdtr_base),
        ("HOST_IDTR_BASE", |h| &mut h.idtr_base),
        ("HOST_TR_BASE", |h| &mut h.tr_base),
    ];
    for (name, field) in cases {
        let mut h = host();
        *field(&mut h) = bad;
        expect(hst(&h), name, "canonical");
    }
}

#[test]
fn host_address_space_size() {
    let h = host();
    // A 32-bit host (no EFER load, so that rule is not reached first).
    let c = ControlState { exit: controls().exit & !(exit::HOST_64 | exit::LOAD_EFER), ..controls() };
    expect(check_host(&h, &c), "VM_EXIT_CONTROLS", "IA-32e mode");
    // With EFER loaded, its LMA/LME disagree first.
    let c = ControlState { exit: controls().exit & !exit::HOST_64, ..controls() };
    expect(check_host(&h, &c), "HOST_IA32_EFER", "host address-space size");
    let mut h = host();
    h.cr4 &= !(1 << 5);
    expect(hst(&h), "HOST_CR4", "PAE");
    let mut h = host();
    h.rip = 0x0000_8000_0000_0000;
    expect(hst(&h), "HOST_RIP", "canonical");
}

// ---- Guest state: control registers and MSRs (SDM Vol. 3C 27.3.1.1) ----

fn field(g: &GuestState) -> Option<&'static str> {
    check(g).map(|f| f.field)
}

#[test]
fn control_registers() {
    let mut g = real_mode();
    g.cr0 = 0x8000_0030; // PG without PE: the selftest's bad state
    let f = check(&g).unwrap();
    assert_eq!(f.field, "GUEST_CR0");
    assert!(f.rule.contains("PG (bit 31) is 1 but PE (bit 0) is 0"), "{}", f.rule);
    g.cr0 = 0x6000_0010; // NE clear
    assert!(check(&g).unwrap().rule.contains("FIXED0"));
    let mut g = real_mode();
    g.unrestricted = false; // then PE and PG are fixed too
    assert_eq!(field(&g), Some("GUEST_CR0"));
    let mut g = real_mode();
    g.cr4 = 0;
    assert_eq!(field(&g), Some("GUEST_CR4"));
    let mut g = long_mode();
    g.cr4 &= !0x20;
    assert_eq!(field(&g), Some("VM_ENTRY_CONTROLS"));
    let mut g = real_mode();
    g.cr4 |= 1 << 17;
    expect(check(&g), "GUEST_CR4", "PCIDE");
}

#[test]
fn guest_cet_needs_wp() {
    let mut g = long_mode();
    g.cr4_fixed.1 |= 1 << 23;
    g.cr4 |= 1 << 23;
    expect(check(&g), "GUEST_CR4", "CR0.WP");
    g.cr0 |= 1 << 16;
    assert_eq!(check(&g), None);
}

#[test]
fn guest_cr3_dr7_debugctl() {
    let mut g = long_mode();
    g.cr3 = 0x7f_ffff_f000;
    assert_eq!(check(&g), None);
    g.cr3 = 1 << WIDTH;
    expect(check(&g), "GUEST_CR3", "physical-address width");
    let mut g = long_mode();
    g.dr7 = 0x4_0000_0400;
    expect(check(&g), "GUEST_DR7", "bits 63:32");
    g.load_debug = false; // not loaded: not checked
    assert_eq!(check(&g), None);
    let mut g = long_mode();
    g.debugctl = 1 << 3;
    expect(check(&g), "GUEST_IA32_DEBUGCTL", "reserved");
    g.debugctl = 0x3; // LBR | BTF
    assert_eq!(check(&g), None);
}

#[test]
fn guest_sysenter_and_pat() {
    let mut g = long_mode();
    g.sysenter_esp = 0x0000_8000_0000_0000;
    expect(check(&g), "GUEST_SYSENTER_ESP", "canonical");
    let mut g = long_mode();
    g.sysenter_eip = 0xfff0_0000_0000_0000;
    expect(check(&g), "GUEST_SYSENTER_EIP", "canonical");
    let mut g = long_mode();
    g.pat = 0x0008_0406_0007_0406;
    expect(check(&g), "GUEST_IA32_PAT", "each byte");
    g.load_pat = false;
    assert_eq!(check(&g), None);
}

#[test]
fn efer() {
    let mut g = long_mode();
    g.efer = 0x100; // LME without LMA in IA-32e mode
    assert_eq!(field(&g), Some("GUEST_IA32_EFER"));
    g.efer = 0x501 | (1 << 20);
    assert!(check(&g).unwrap().rule.contains("reserved"));
    g.load_efer = false;
    assert_eq!(check(&g), None);
}

// ---- Guest segment registers (SDM Vol. 3C 27.3.1.2) ----

#[test]
fn segments() {
    let mut g = real_mode();
    g.cs.ar = 0x93 & !1; // not accessed: type 2
    assert_eq!(field(&g), Some("GUEST_CS_ACCESS_RIGHTS"));
    let mut g = long_mode();
    g.cs.ar |= 1 << 14; // L and D/B
    assert!(check(&g).unwrap().rule.contains("L and D/B"));
    let mut g = long_mode();
    g.tr.ar = 0x83; // 16-bit busy TSS in IA-32e mode
    assert_eq!(field(&g), Some("GUEST_TR_ACCESS_RIGHTS"));
    let mut g = real_mode();
    g.ds.limit = 0x10_0000; // 1 MiB or more needs G = 1
    assert_eq!(field(&g), Some("GUEST_DS_ACCESS_RIGHTS"));
    let mut g = real_mode();
    g.ss.ar = 0x93 | (3 << 5); // DPL 3 in real mode: CS (type 11) must match first
    assert!(check(&g).unwrap().rule.contains("DPL must equal SS.DPL"));
    g.cs.ar = 0x93; // CS as read/write data (unrestricted guest): only SS is wrong now
    expect(check(&g), "GUEST_SS_ACCESS_RIGHTS", "DPL must be 0");
    let mut g = real_mode();
    g.ldtr.ar = 0x83;
    assert_eq!(field(&g), Some("GUEST_LDTR_ACCESS_RIGHTS"));
    let mut g = long_mode();
    g.fs.base = 0x8000_0000_0000;
    expect(check(&g), "GUEST_FS_BASE", "canonical");
    let mut g = long_mode();
    g.gs.base = 0x8000_0000_0000;
    expect(check(&g), "GUEST_GS_BASE", "canonical");
}

#[test]
fn segment_selectors() {
    let mut g = long_mode();
    g.tr.selector |= 4;
    expect(check(&g), "GUEST_TR_SELECTOR", "TI");
    let mut g = real_mode();
    g.ldtr.selector = 0x0c;
    expect(check(&g), "GUEST_LDTR_SELECTOR", "TI");
    // Without unrestricted guest, SS.RPL follows CS.RPL.
    let mut g = long_mode();
    g.unrestricted = false;
    assert_eq!(check(&g), None);
    g.ss.selector = 0x13;
    expect(check(&g), "GUEST_SS_SELECTOR", "RPL must equal CS's");
    g.unrestricted = true;
    assert_eq!(check(&g), None);
}

#[test]
fn segment_privilege_without_unrestricted_guest() {
    let mut g = long_mode();
    g.unrestricted = false;
    g.cs.selector = 0x0b;
    g.ss.selector = 0x13; // RPL 3, DPL 0
    expect(check(&g), "GUEST_SS_ACCESS_RIGHTS", "DPL must equal the selector's RPL");
    let mut g = long_mode();
    g.unrestricted = false;
    g.es.selector = 0x13; // RPL 3 over a DPL 0 data segment
    expect(check(&g), "GUEST_ES_ACCESS_RIGHTS", "not be below");
    // Conforming code: DPL at most SS.DPL.
    let mut g = long_mode();
    g.cs.ar = 0xa09f | (3 << 5);
    expect(check(&g), "GUEST_CS_ACCESS_RIGHTS", "conforming code");
    g.ss.ar |= 3 << 5;
    assert_eq!(check(&g), None);
}

#[test]
fn segment_bases_high_bits() {
    let mut g = real_mode();
    g.cs.base = 1 << 32;
    expect(check(&g), "GUEST_CS_BASE", "bits 63:32");
    let mut g = real_mode();
    g.ds.base = 1 << 32;
    expect(check(&g), "GUEST_DS_BASE", "bits 63:32");
    g.ds.ar |= 1 << 16; // unusable: not checked
    assert_eq!(check(&g), None);
    let mut g = real_mode();
    g.ldtr.base = 0x0000_8000_0000_0000;
    expect(check(&g), "GUEST_LDTR_BASE", "canonical");
}

#[test]
fn virtual_8086_segments() {
    let mut g = v86();
    g.ds.base = 0x1_0010;
    expect(check(&g), "GUEST_DS_BASE", "selector times 16");
    let mut g = v86();
    g.ss.limit = 0xfffff;
    expect(check(&g), "GUEST_SS_LIMIT", "FFFFH");
    let mut g = v86();
    g.cs.ar = 0xfb;
    expect(check(&g), "GUEST_CS_ACCESS_RIGHTS", "F3H");
    // The same segments outside virtual-8086 mode: CS is not code (with
    // unrestricted guest, type 3 needs DPL 0).
    let mut g = v86();
    g.rflags &= !(1 << 17);
    expect(check(&g), "GUEST_CS_ACCESS_RIGHTS", "DPL must be 0 for type 3");
    g.unrestricted = false;
    g.cr0 |= 1 << 31; // paging, as CR0_FIXED0 then asks
    expect(check(&g), "GUEST_CS_ACCESS_RIGHTS", "type must be accessed code");
}

// ---- Descriptor tables, RIP and RFLAGS (SDM Vol. 3C 27.3.1.3, 27.3.1.4) ----

#[test]
fn descriptor_tables() {
    let mut g = real_mode();
    g.gdtr.1 = 0x1_0000;
    expect(check(&g), "GUEST_GDTR_LIMIT", "bits 31:16");
    let mut g = real_mode();
    g.idtr.0 = 0x0000_8000_0000_0000;
    expect(check(&g), "GUEST_IDTR_BASE", "canonical");
}

#[test]
fn rip_and_rflags() {
    let mut g = real_mode();
    g.rip = 1 << 32;
    assert_eq!(field(&g), Some("GUEST_RIP"));
    let mut g = long_mode();
    g.rip = 0x0000_8000_0000_0000;
    assert_eq!(field(&g), Some("GUEST_RIP"));
    let mut g = real_mode();
    g.rflags = 0;
    assert_eq!(field(&g), Some("GUEST_RFLAGS"));
    g.rflags = 2 | (1 << 15);
    assert_eq!(field(&g), Some("GUEST_RFLAGS"));
    let mut g = long_mode();
    g.rflags |= 1 << 17;
    expect(check(&g), "GUEST_RFLAGS", "VM (bit 17)");
}

#[test]
fn external_interrupt_needs_if() {
    let mut g = long_mode();
    g.entry_intr_info = inject(0, 0x30, false);
    expect(check(&g), "GUEST_RFLAGS", "IF (bit 9)");
    g.rflags |= 1 << 9;
    assert_eq!(check(&g), None);
}

// ---- Guest non-register state (SDM Vol. 3C 27.3.1.5) ----

#[test]
fn activity_state() {
    let mut g = real_mode();
    g.activity = 4;
    expect(check(&g), "GUEST_ACTIVITY_STATE", "IA32_VMX_MISC");
    g.activity = 3;
    assert_eq!(check(&g), None);
    g.misc &= !(1 << 8); // no wait-for-SIPI on this CPU
    expect(check(&g), "GUEST_ACTIVITY_STATE", "IA32_VMX_MISC");
}

#[test]
fn hlt_needs_ss_dpl_0() {
    let mut g = long_mode();
    g.cs.ar = 0xa09f; // conforming, DPL 0
    g.ss.ar |= 3 << 5;
    assert_eq!(check(&g), None);
    g.activity = 1;
    expect(check(&g), "GUEST_ACTIVITY_STATE", "SS.DPL = 0");
}

#[test]
fn blocking_needs_active_state() {
    let mut g = long_mode();
    g.rflags |= 1 << 9;
    g.interruptibility = 1; // STI
    assert_eq!(check(&g), None);
    g.activity = 1;
    expect(check(&g), "GUEST_ACTIVITY_STATE", "must be active");
}

#[test]
fn injection_versus_activity_state() {
    let mut g = long_mode();
    g.rflags |= 1 << 9;
    g.activity = 1; // HLT takes external interrupts, NMIs, #DB, #MC, MTF
    for ok in [inject(0, 0x30, false), inject(2, 2, false), inject(3, 1, false), inject(3, 18, false), inject(7, 0, false)] {
        g.entry_intr_info = ok;
        assert_eq!(check(&g), None, "{ok:#x}");
    }
    g.entry_intr_info = inject(3, 13, true);
    expect(check(&g), "GUEST_ACTIVITY_STATE", "this state blocks");
    g.activity = 2; // shutdown: NMI and #MC only
    g.entry_intr_info = inject(3, 18, false);
    assert_eq!(check(&g), None);
    g.entry_intr_info = inject(0, 0x30, false);
    expect(check(&g), "GUEST_ACTIVITY_STATE", "this state blocks");
    g.activity = 3; // wait-for-SIPI: nothing
    g.entry_intr_info = inject(2, 2, false);
    expect(check(&g), "GUEST_ACTIVITY_STATE", "this state blocks");
}

#[test]
fn interruptibility_basics() {
    let mut g = real_mode();
    g.interruptibility = 1 << 5;
    expect(check(&g), "GUEST_INTERRUPTIBILITY_INFO", "reserved bits 31:5");
    let mut g = real_mode();
    g.rflags |= 1 << 9;
    g.interruptibility = 3;
    expect(check(&g), "GUEST_INTERRUPTIBILITY_INFO", "cannot both be 1");
    let mut g = real_mode();
    g.interruptibility = 1; // STI blocking with IF = 0
    expect(check(&g), "GUEST_INTERRUPTIBILITY_INFO", "RFLAGS.IF = 1");
    let mut g = real_mode();
    g.interruptibility = 4;
    expect(check(&g), "GUEST_INTERRUPTIBILITY_INFO", "outside SMM");
    let mut g = real_mode();
    g.interruptibility = (1 << 4) | 2;
    expect(check(&g), "GUEST_INTERRUPTIBILITY_INFO", "enclave interruption");
}

#[test]
fn interruptibility_versus_injection() {
    let mut g = long_mode();
    g.rflags |= 1 << 9;
    g.interruptibility = 2; // MOV SS
    g.entry_intr_info = inject(0, 0x30, false);
    expect(check(&g), "GUEST_INTERRUPTIBILITY_INFO", "external interrupt");
    g.entry_intr_info = inject(2, 2, false);
    expect(check(&g), "GUEST_INTERRUPTIBILITY_INFO", "MOV SS must be 0 when an NMI");
    // Blocking by NMI with an NMI injected: refused only with virtual NMIs.
    g.interruptibility = 8;
    assert_eq!(check(&g), None);
    g.virtual_nmi = true;
    expect(check(&g), "GUEST_INTERRUPTIBILITY_INFO", "blocking by NMI");
    // STI blocking with an NMI: the last resort (some processors refuse it).
    g.virtual_nmi = false;
    g.interruptibility = 1;
    expect(check(&g), "GUEST_INTERRUPTIBILITY_INFO", "some processors");
}

#[test]
fn pending_debug_exceptions() {
    let mut g = long_mode();
    g.pending_dbg = 1 << 4;
    expect(check(&g), "GUEST_PENDING_DBG_EXCEPTIONS", "reserved");
    g.pending_dbg = (1 << 14) | (1 << 12) | 0xf; // BS, enabled breakpoint, B3-B0
    assert_eq!(check(&g), None);
}

// With STI/MOV SS blocking or HLT, BS must say whether the guest
// single-steps (RFLAGS.TF = 1 and DEBUGCTL.BTF = 0).
#[test]
fn pending_bs_versus_single_step() {
    let mut g = long_mode();
    g.rflags |= (1 << 9) | (1 << 8); // IF, TF
    g.interruptibility = 1;
    expect(check(&g), "GUEST_PENDING_DBG_EXCEPTIONS", "BS (bit 14)");
    g.pending_dbg = 1 << 14;
    assert_eq!(check(&g), None);
    g.debugctl = 2; // BTF: no single-step trap, so BS must be 0
    expect(check(&g), "GUEST_PENDING_DBG_EXCEPTIONS", "BS (bit 14)");
    let mut g = long_mode();
    g.activity = 1;
    g.pending_dbg = 1 << 14; // in HLT without TF
    expect(check(&g), "GUEST_PENDING_DBG_EXCEPTIONS", "BS (bit 14)");
    g.interruptibility = 0;
    g.activity = 0; // active, no blocking: BS is free
    assert_eq!(check(&g), None);
}

#[test]
fn pending_rtm() {
    let mut g = long_mode();
    g.pending_dbg = (1 << 16) | (1 << 12);
    assert_eq!(check(&g), None);
    g.pending_dbg |= 1;
    expect(check(&g), "GUEST_PENDING_DBG_EXCEPTIONS", "RTM (bit 16)");
}

#[test]
fn vmcs_link_pointer() {
    let mut g = real_mode();
    g.link_pointer = 0;
    expect(check(&g), "VMCS_LINK_POINTER", "revision identifier");
    g.link_pointer = 0x1234;
    expect(check(&g), "VMCS_LINK_POINTER", "4-KiB aligned");
}

// ---- PDPTEs (SDM Vol. 3C 27.3.1.6) ----

#[test]
fn pdptes_with_ept() {
    let mut g = pae32();
    g.pdpte = [0x1001, 0x2001, 0, 0x3000 | (1 << 5)]; // the last is not present
    assert_eq!(check(&g), None);
    g.pdpte[2] = 0x4001 | (1 << 5);
    expect(check(&g), "GUEST_PDPTE2", "reserved bits");
    g.pdpte[2] = 0;
    g.pdpte[0] = 1 | (1 << WIDTH);
    expect(check(&g), "GUEST_PDPTE0", "physical-address width");
    // Without EPT they come from memory through CR3: not checked here.
    g.ept = false;
    assert_eq!(check(&g), None);
    // Nor outside PAE paging.
    let mut g = long_mode();
    g.pdpte[1] = 0x3f;
    assert_eq!(check(&g), None);
}

// ---- Snapshots and the callers' paths ----

/// Writes `c`'s fields (as `snapshot_controls` reads them) into `v`.
fn write_controls(v: &FakeVmcs, c: &ControlState) {
    for (f, x) in [
        (PIN_BASED_CONTROLS, c.pin),
        (PROC_BASED_CONTROLS, c.proc),
        (PROC_BASED_CONTROLS2, c.proc2),
        (EXIT_CONTROLS, c.exit),
        (ENTRY_CONTROLS, c.entry),
        (CR3_TARGET_COUNT, c.cr3_target_count),
        (ENTRY_INTR_INFO, c.entry_intr_info),
        (ENTRY_EXCEPTION_ERROR_CODE, c.entry_error_code),
        (ENTRY_INSTRUCTION_LENGTH, c.entry_insn_len),
    ] {
        v.set(f, x);
    }
    v.set(EPT_POINTER, c.eptp);
    v.set(VPID, c.vpid);
    v.set(GUEST_CR0, c.guest_cr0);
}

fn write_host(v: &FakeVmcs, h: &HostState) {
    for (f, x) in [
        (HOST_CR0, h.cr0),
        (HOST_CR3, h.cr3),
        (HOST_CR4, h.cr4),
        (HOST_SYSENTER_ESP, h.sysenter_esp),
        (HOST_SYSENTER_EIP, h.sysenter_eip),
        (HOST_IA32_PAT, h.pat),
        (HOST_IA32_EFER, h.efer),
        (HOST_FS_BASE, h.fs_base),
        (HOST_GS_BASE, h.gs_base),
        (HOST_TR_BASE, h.tr_base),
        (HOST_GDTR_BASE, h.gdtr_base),
        (HOST_IDTR_BASE, h.idtr_base),
        (HOST_RIP, h.rip),
    ] {
        v.set(f, x);
    }
    let sels = [HOST_ES_SELECTOR, HOST_CS_SELECTOR, HOST_SS_SELECTOR, HOST_DS_SELECTOR, HOST_FS_SELECTOR, HOST_GS_SELECTOR, HOST_TR_SELECTOR];
    for (f, x) in sels.into_iter().zip(h.selectors) {
        v.set(f, x);
    }
}

#[test]
fn snapshots_read_what_was_written() {
    let v = FakeVmcs::new();
    let (c, h) = (controls(), host());
    write_controls(&v, &c);
    write_host(&v, &h);
    assert_eq!(format!("{:?}", snapshot_controls(&v, &CPU, WIDTH)), format!("{c:?}"));
    assert_eq!(format!("{:?}", snapshot_host(&v, &CPU)), format!("{h:?}"));
    // The secondary controls count only with "activate secondary controls".
    v.set(PROC_BASED_CONTROLS, c.proc & !proc::SECONDARY);
    assert_eq!(snapshot_controls(&v, &CPU, WIDTH).proc2, 0);
}

/// A VMCS that panics on reading a field the CPU lacks (VMREAD would fail
/// and the vCPU would be stopped).
struct Strict {
    v: FakeVmcs,
    lacks: Vec<u32>,
}

impl VmcsAccess for Strict {
    fn read_raw(&self, f: Field) -> u64 {
        assert!(!self.lacks.contains(&f.raw()), "VMREAD of missing field {:#06x}", f.raw());
        self.v.read_raw(f)
    }
    fn write_raw(&self, f: Field, x: u64) {
        self.v.write_raw(f, x)
    }
}

// A control set on a CPU that lacks it: the fields it would use are not
// read, and the finding is the reserved control bit.
#[test]
fn snapshot_skips_fields_the_cpu_lacks() {
    let poor = RawCaps {
        true_pin: msr(0x16, 0x7f), // no posted interrupts
        true_proc: CPU.true_proc & !(u64::from(proc::TPR_SHADOW | proc::MSR_BITMAP) << 32),
        proc2: msr(0, proc2::EPT | proc2::VPID | proc2::UNRESTRICTED_GUEST),
        ..CPU
    };
    let lacks = [POSTED_INTR_NV.field(), VIRTUAL_APIC_PAGE_ADDR.field(), TPR_THRESHOLD.field(), MSR_BITMAP.field()]
        .into_iter()
        .chain([APIC_ACCESS_ADDR, PML_ADDRESS, VMREAD_BITMAP, VMWRITE_BITMAP, VE_INFO_ADDR, POSTED_INTR_DESC_ADDR].map(|f| f.field()))
        .chain([GUEST_PDPTE0, GUEST_PDPTE1, GUEST_PDPTE2, GUEST_PDPTE3].map(|f| f.field()))
        .map(|f| f.raw())
        .collect();
    let v = Strict { v: FakeVmcs::new(), lacks };
    let mut c = controls();
    c.pin |= pin::POSTED_INTR;
    c.proc |= proc::TPR_SHADOW | proc::MSR_BITMAP;
    c.proc2 |= proc2::APIC_ACCESS | proc2::PML | proc2::SHADOW_VMCS | proc2::EPT_VE;
    write_controls(&v.v, &c);
    let s = snapshot_controls(&v, &poor, WIDTH);
    expect(check_controls(&s, &poor), "PIN_BASED_VM_EXEC_CONTROL", "forbids");
    // The guest snapshot reads the PDPTEs only with EPT on a CPU that has it.
    let no_ept = RawCaps { proc2: msr(0, proc2::UNRESTRICTED_GUEST), ..poor };
    assert!(!snapshot(&v, &no_ept, WIDTH).ept);
}

#[test]
fn maxphyaddr_from_cpuid() {
    assert_eq!(maxphyaddr(cpuid39), 39);
    assert_eq!(maxphyaddr(|_, _| [0x8000_0004, 0, 0, 0]), 36); // no leaf 80000008H
    assert_eq!(maxphyaddr(|l, _| if l == 0x8000_0000 { [0x8000_0008, 0, 0, 0] } else { [0; 4] }), 36);
}

// VM-instruction error 7 and 8 (SDM Vol. 3C 31.4): the run loop's call
// names the broken control or host field.
#[test]
fn entry_error_accounts() {
    let v = FakeVmcs::new();
    write_controls(&v, &controls());
    write_host(&v, &host());
    let account = |err| match vmexit::entry_error(&v, &env(), err) {
        UserExit::FailEntry { reason: 0, vm_instruction_error, qualification: 0, account } if vm_instruction_error == err => account,
        other => panic!("{other:?}"),
    };
    assert_eq!(account(7), Account { subject: "VM entry with invalid control field(s)", rule: "no rule rvmx checks is broken" });
    assert_eq!(account(8).rule, "no rule rvmx checks is broken");
    v.set(VPID, 0);
    assert_eq!(account(7).subject, "VIRTUAL_PROCESSOR_ID");
    v.set(HOST_TR_SELECTOR, 0);
    assert_eq!(account(8).subject, "HOST_TR_SELECTOR");
    // Beyond MAXPHYADDR from CPUID (39 bits here).
    v.set(VPID, 1);
    v.set(PROC_BASED_CONTROLS, controls().proc | proc::IO_BITMAPS);
    v.set(IO_BITMAP_B, 1 << 40);
    assert_eq!(account(7).subject, "IO_BITMAP_B");
    assert_eq!(account(4), Account { subject: "VMLAUNCH with non-clear VMCS", rule: "" });
}

#[test]
fn vm_instruction_errors() {
    assert_eq!(vm_instruction_error(7), "VM entry with invalid control field(s)");
    assert_eq!(vm_instruction_error(8), "VM entry with invalid host-state field(s)");
    assert_eq!(vm_instruction_error(99), "unknown VM-instruction error");
}
