//! The guest's reset state (`vmcs::reset::reset_guest`), written into a
//! fake VMCS: SDM Vol. 3A 10.1.1, Table 10-1.

mod common;

use common::*;
use rvmx_pure::vmcs::field::*;
use rvmx_pure::vmcs::reset::reset_guest;
use rvmx_pure::vmx::caps::{proc, proc2};
use rvmx_pure::vmx::entry_check::{check, snapshot};

fn reset() -> FakeVmcs {
    let v = FakeVmcs::new();
    reset_guest(&v);
    v
}

// The first instruction is fetched at F000:FFF0 with CS.base FFFF0000,
// i.e. physical FFFFFFF0 (Table 10-1).
#[test]
fn starts_at_the_reset_vector() {
    let v = reset();
    let cs = Seg::Cs.fields();
    assert_eq!(v.get(cs.selector), 0xf000);
    assert_eq!(v.get(cs.base), 0xffff_0000);
    assert_eq!(v.get(cs.limit), 0xffff);
    assert_eq!(v.get(GUEST_RIP), 0xfff0);
    assert_eq!(v.get(cs.base) + v.get(GUEST_RIP), 0xffff_fff0);
}

// RFLAGS is 2 (only the fixed bit 1), the other segments are selector 0,
// base 0, limit 0xFFFF (Table 10-1).
#[test]
fn rflags_and_data_segments() {
    let v = reset();
    assert_eq!(v.get(GUEST_RFLAGS), 2);
    for s in [Seg::Ds, Seg::Es, Seg::Ss, Seg::Fs, Seg::Gs] {
        let f = s.fields();
        assert_eq!((v.get(f.selector), v.get(f.base), v.get(f.limit)), (0, 0, 0xffff), "{s:?}");
        assert!(v.written(f.ar), "{s:?} access rights not written");
    }
    assert_eq!((v.get(GUEST_GDTR_LIMIT), v.get(GUEST_IDTR_LIMIT)), (0xffff, 0xffff));
}

// CR0 after reset is 0x60000010 (CD, NW, ET) as the guest reads it (the
// read shadow, which also covers CD and NW: VM entry does not load them);
// the CR0 the CPU uses has NE forced (CR0_FIXED0 in VMX operation) and CD
// and NW off, and CR4 has VMXE forced under a zero shadow.
#[test]
fn cr0_shadow_and_forced_bits() {
    let v = reset();
    assert_eq!(v.get(CR0_READ_SHADOW), 0x6000_0010);
    assert_eq!(v.get(GUEST_CR0), 0x10 | (1 << 5));
    assert_eq!(rvmx_pure::vmx::exit::cr::cr0_visible(&v), 0x6000_0010);
    assert_eq!(v.get(CR4_READ_SHADOW), 0);
    assert_eq!(v.get(GUEST_CR4), 1 << 13);
    assert_eq!(v.get(GUEST_DR7), 0x400);
}

// No shadow VMCS: the link pointer must be all ones (SDM Vol. 3C 27.3.1.5);
// the guest is active with no blocking.
#[test]
fn link_pointer_all_ones_and_active() {
    let v = reset();
    assert_eq!(v.get(VMCS_LINK_POINTER), u64::MAX);
    assert!(v.written(GUEST_ACTIVITY_STATE) && v.written(GUEST_INTERRUPTIBILITY));
    assert_eq!((v.get(GUEST_ACTIVITY_STATE), v.get(GUEST_INTERRUPTIBILITY)), (0, 0));
}

// The reset state passes every VM-entry guest-state check rvmx knows (SDM
// Vol. 3C 27.3.1) on a CPU whose CR0_FIXED0 asks for PE|NE|PG, with
// unrestricted guest on (which frees PE and PG). Without unrestricted
// guest, real mode is refused, and the check says so for GUEST_CR0.
#[test]
fn reset_state_passes_entry_checks_with_unrestricted_guest() {
    let v = reset();
    v.set(PROC_BASED_CONTROLS, proc::SECONDARY);
    v.set(PROC_BASED_CONTROLS2, proc2::UNRESTRICTED_GUEST | proc2::EPT);
    let g = snapshot(&v, &CAPS, 36);
    assert!(g.unrestricted);
    assert_eq!(check(&g), None);

    v.set(PROC_BASED_CONTROLS2, proc2::EPT);
    let f = check(&snapshot(&v, &CAPS, 36)).expect("real mode without unrestricted guest");
    assert_eq!(f.field, "GUEST_CR0");
}

// reset_guest only writes guest state: no controls, no host state, no
// exit information (the fake panics on that).
#[test]
fn reset_writes_guest_state_only() {
    let v = reset();
    let writes = v.all_writes();
    assert!(!writes.is_empty());
    for (enc, _) in writes {
        let f = Field::from_raw(enc).unwrap();
        // CR0/CR4 read shadows are control fields by encoding; they are
        // the guest's view of CR0 and CR4.
        let shadow = enc == CR0_READ_SHADOW.field().raw() || enc == CR4_READ_SHADOW.field().raw();
        assert!(f.kind() == Kind::Guest || shadow, "wrote {enc:#06x}");
    }
}
