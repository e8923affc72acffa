//! EPT leaf entries ignore the guest's PAT (bit 6) and are write-back
//! (memory type 6 in bits 5:3); table entries have bits 7:3 reserved and
//! zero (SDM Vol. 3C 29.3.2, Tables 29-2..29-6).

use rvmx_pure::ept::entry::*;
use rvmx_pure::ept::table::{Ept, Tables};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

#[test]
fn leaf_4k_has_ignore_pat_wb_perm_and_address() {
    assert_eq!(IGNORE_PAT, 1 << 6);
    let l = leaf_4k(0x1234_5000, READ | WRITE);
    assert_eq!(l, 0x1234_5000 | 0b011 | (6 << 3) | (1 << 6));
    assert_ne!(l & (1 << 6), 0, "IGNORE_PAT");
    assert_eq!((l >> 3) & 7, 6, "memory type WB");
    assert_eq!(l & 7, READ | WRITE);
    assert_eq!(l & ADDR_MASK, 0x1234_5000);
    // Nothing else: bit 7 (reserved in a PTE), bits 11:8 and 63:52 clear.
    assert_eq!(l & !(ADDR_MASK | 0x7f), 0, "{l:#x}");
    // RWX, the widest address, and junk in the inputs that must not leak.
    let l = leaf_4k(0xffff_ffff_ffff_ffff, 0xff);
    assert_eq!(l, ADDR_MASK | 7 | (6 << 3) | (1 << 6));
    // Execute-only keeps the PAT and type bits too.
    assert_eq!(leaf_4k(0x2000, EXEC), 0x2000 | 4 | 0x30 | 0x40);
}

#[test]
fn table_entries_have_no_ignore_pat_or_memory_type() {
    for next in [0x1000u64, 0xabc_d000, ADDR_MASK, 0xffff_ffff_ffff_ffff, 0x5000 | 0xfff] {
        let t = table(next);
        assert_eq!(t & (1 << 6), 0, "{next:#x}: bit 6 set in {t:#x}");
        assert_eq!(t & 0xf8, 0, "{next:#x}: bits 7:3 set in {t:#x}");
        assert_eq!(t, (next & ADDR_MASK) | 7);
    }
}

/// Tables in a map shared with the test, addresses from 0x10_0000 up.
#[derive(Clone, Default)]
struct Map(Rc<RefCell<HashMap<u64, [u64; 512]>>>);

impl Tables for Map {
    fn alloc(&mut self) -> Option<u64> {
        let mut m = self.0.borrow_mut();
        let pa = 0x10_0000 + 0x1000 * m.len() as u64;
        m.insert(pa, [0; 512]);
        Some(pa)
    }
    fn read(&self, t: u64, i: usize) -> u64 {
        self.0.borrow()[&t][i]
    }
    fn write(&mut self, t: u64, i: usize, v: u64) {
        self.0.borrow_mut().get_mut(&t).unwrap()[i] = v;
    }
}

// Through Ept::map: the PML4E, PDPTE and PDE on the way have no bit 6 and
// no memory type; the PTE is the leaf_4k value with IGNORE_PAT, and unmap
// hands back that same entry.
#[test]
fn mapped_page_walk_has_ignore_pat_only_in_the_leaf() {
    let tables = Map::default();
    let mut ept = Ept::new(tables.clone()).unwrap();
    let gpa = (1u64 << 39) | (2 << 30) | (3 << 21) | (4 << 12);
    ept.map(gpa, 0x7777_7000, READ | EXEC).unwrap();
    let mut t = ept.root();
    for level in (2..=4).rev() {
        let e = tables.read(t, index(gpa, level));
        assert_eq!(e & 0xf8, 0, "level {level}: {e:#x}");
        assert_eq!(e & 7, 7, "level {level}: {e:#x}");
        t = e & ADDR_MASK;
    }
    let want = 0x7777_7000 | READ | EXEC | (MEMTYPE_WB << 3) | IGNORE_PAT;
    assert_eq!(tables.read(t, index(gpa, 1)), want);
    assert_eq!(ept.unmap(gpa), Some(want));
}
