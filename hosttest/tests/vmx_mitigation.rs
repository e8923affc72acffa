//! `vmx::mitigation::l1d_flush`: when to flush L1D before VM entry, as
//! KVM's vmx_setup_l1d_flush decides with vmentry_l1d_flush=auto (Linux
//! 6.12 arch/x86/kvm/vmx/vmx.c). The module maps the kernel's `l1tf=`
//! choices (enum l1tf_mitigations) onto `L1tf` by name.

use rvmx_pure::vmx::mitigation::{l1d_flush, L1dFlush, L1tf, ARCH_CAP_SKIP_VMENTRY_L1DFLUSH};

const ALL: [L1tf; 3] = [L1tf::Off, L1tf::Flush, L1tf::Full];

const SKIP: u64 = 1 << 3; // IA32_ARCH_CAPABILITIES.SKIP_VMENTRY_L1DFLUSH

// The constants themselves: SDM Vol. 4 Table 2-2 and the kernel's enum.
#[test]
fn l1d_constants_match_sdm_and_kernel_enum() {
    assert_eq!(ARCH_CAP_SKIP_VMENTRY_L1DFLUSH, SKIP);
}

// A CPU without the L1TF bug never flushes, whatever l1tf= says.
#[test]
fn l1d_flush_never_when_not_affected() {
    for m in ALL {
        assert_eq!(l1d_flush(false, 0, m), L1dFlush::Never, "l1tf={m:?}");
        assert_eq!(l1d_flush(false, !0, m), L1dFlush::Never, "l1tf={m:?}");
    }
}

// ARCH_CAPABILITIES bit 3 says the CPU needs no flush on entry: Never,
// even with l1tf=full,force; other ARCH_CAPABILITIES bits do not count.
#[test]
fn l1d_flush_never_with_skip_vmentry_l1dflush() {
    for m in ALL {
        assert_eq!(l1d_flush(true, SKIP, m), L1dFlush::Never, "l1tf={m:?}");
        assert_eq!(l1d_flush(true, SKIP | 0xffff_0000, m), L1dFlush::Never, "l1tf={m:?}");
    }
    // Every bit but bit 3 (RDCL_NO is bit 0, IBRS_ALL bit 1, ...): the
    // decision is l1tf='s.
    let others = !SKIP;
    assert_eq!(l1d_flush(true, others, L1tf::Flush), L1dFlush::Cond);
    assert_eq!(l1d_flush(true, others, L1tf::Full), L1dFlush::Always);
    assert_eq!(l1d_flush(true, others, L1tf::Off), L1dFlush::Never);
}

// Affected, no skip bit: l1tf=off never flushes; flush, flush,nowarn and
// flush,nosmt flush conditionally; full and full,force always.
#[test]
fn l1d_flush_follows_l1tf_choice_when_affected() {
    let want = [(L1tf::Off, L1dFlush::Never), (L1tf::Flush, L1dFlush::Cond), (L1tf::Full, L1dFlush::Always)];
    for (m, mode) in want {
        assert_eq!(l1d_flush(true, 0, m), mode, "l1tf={m:?}");
    }
}
