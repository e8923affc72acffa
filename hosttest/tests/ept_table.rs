use rvmx_pure::ept::entry::{index, ADDR_MASK, EXEC, MEMTYPE_WB, READ, WRITE};
use rvmx_pure::ept::table::*;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

/// Tables in a map shared with the test, which walks them as the CPU does.
#[derive(Clone, Default)]
struct MapTables(Rc<RefCell<Store>>);

#[derive(Default)]
struct Store {
    next: u64,
    tables: HashMap<u64, [u64; 512]>,
    limit: usize,
}

impl Tables for MapTables {
    fn alloc(&mut self) -> Option<u64> {
        let mut s = self.0.borrow_mut();
        if s.limit != 0 && s.tables.len() >= s.limit {
            return None;
        }
        s.next += 0x1000;
        let pa = 0x100_0000 + s.next;
        s.tables.insert(pa, [0; 512]);
        Some(pa)
    }
    fn read(&self, t: u64, i: usize) -> u64 {
        self.0.borrow().tables[&t][i]
    }
    fn write(&mut self, t: u64, i: usize, v: u64) {
        self.0.borrow_mut().tables.get_mut(&t).unwrap()[i] = v;
    }
}

impl MapTables {
    fn count(&self) -> usize {
        self.0.borrow().tables.len()
    }

    /// The leaf entry for `gpa`, walking from `root` the way the CPU does
    /// (SDM Vol. 3C 29.3.2): bits 2:0 zero mean "not present".
    fn walk(&self, root: u64, gpa: u64) -> Option<u64> {
        let s = self.0.borrow();
        let mut table = root;
        for level in (1..=4).rev() {
            let e = s.tables.get(&table)?[index(gpa, level)];
            if e & 7 == 0 {
                return None;
            }
            if level == 1 {
                return Some(e);
            }
            table = e & ADDR_MASK;
        }
        None
    }
}

#[test]
fn map_lookup_unmap() {
    let t = MapTables::default();
    let mut ept = Ept::new(t.clone()).unwrap();
    let lookup = |gpa| t.walk(ept_root(&t), gpa);
    assert_eq!(t.count(), 1);
    ept.map(0x7000, 0xabc000, READ | WRITE | EXEC).unwrap();
    assert_eq!(t.count(), 4); // PML4, PDPT, PD, PT
    let e = lookup(0x7000).unwrap();
    assert_eq!(e & ADDR_MASK, 0xabc000);
    assert_eq!(e & 7, 7);
    assert_eq!((e >> 3) & 7, MEMTYPE_WB);
    assert_eq!(lookup(0x8000), None);
    // A neighbour shares the tables.
    ept.map(0x8000, 0xdef000, READ).unwrap();
    assert_eq!(t.count(), 4);
    assert_eq!(ept.map(0x7000, 0x1000, READ), Err(MapError::Busy));
    assert_eq!(ept.unmap(0x7000).map(|e| e & ADDR_MASK), Some(0xabc000));
    assert_eq!(lookup(0x7000), None);
    assert_eq!(ept.unmap(0x7000), None);
    ept.map(0x7000, 0x1000, READ).unwrap();
}

#[test]
fn far_apart_addresses_get_their_own_tables() {
    let t = MapTables::default();
    let mut ept = Ept::new(t.clone()).unwrap();
    let lookup = |gpa| t.walk(ept_root(&t), gpa);
    ept.map(0, 0x1000, READ).unwrap();
    ept.map((1 << 47) | (1 << 30), 0x2000, READ).unwrap();
    assert_eq!(t.count(), 7);
    assert_eq!(lookup(0).unwrap() & ADDR_MASK, 0x1000);
    assert_eq!(lookup((1 << 47) | (1 << 30)).unwrap() & ADDR_MASK, 0x2000);
}

#[test]
fn refuses_bad_addresses_and_runs_out_of_memory_cleanly() {
    let t = MapTables::default();
    let mut ept = Ept::new(t.clone()).unwrap();
    assert_eq!(ept.map(0x1001, 0x1000, READ), Err(MapError::BadAddress));
    assert_eq!(ept.map(0x1000, 0x1001, READ), Err(MapError::BadAddress));
    assert_eq!(ept.map(GPA_LIMIT, 0x1000, READ), Err(MapError::BadAddress));
    assert_eq!(ept.map(0x1000, 1 << 52, READ), Err(MapError::BadAddress));
    assert_eq!(ept.map(0x1000, 0x1000, 0), Err(MapError::BadAddress));
    assert_eq!(ept.unmap(u64::MAX), None);
    let small_t = MapTables::default();
    small_t.0.borrow_mut().limit = 2;
    let mut small = Ept::new(small_t.clone()).unwrap();
    assert_eq!(small.map(0x1000, 0x1000, READ), Err(MapError::NoMemory));
    assert_eq!(small_t.walk(small.root(), 0x1000), None);
}

/// The first table allocated is the root (PML4).
fn ept_root(t: &MapTables) -> u64 {
    *t.0.borrow().tables.keys().min().unwrap()
}
