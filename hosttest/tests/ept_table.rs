use rvmx_pure::ept::table::*;
use rvmx_pure::ept_entry::{READ, WRITE, EXEC, ADDR_MASK, MEMTYPE_WB};
use std::collections::HashMap;

#[derive(Default)]
struct MapTables {
    next: u64,
    tables: HashMap<u64, [u64; 512]>,
    limit: usize,
}

impl Tables for MapTables {
    fn alloc(&mut self) -> Option<u64> {
        if self.limit != 0 && self.tables.len() >= self.limit {
            return None;
        }
        self.next += 0x1000;
        self.tables.insert(0x100_0000 + self.next, [0; 512]);
        Some(0x100_0000 + self.next)
    }
    fn read(&self, t: u64, i: usize) -> u64 {
        self.tables[&t][i]
    }
    fn write(&mut self, t: u64, i: usize, v: u64) {
        self.tables.get_mut(&t).unwrap()[i] = v;
    }
}

#[test]
fn map_lookup_unmap() {
    let mut ept = Ept::new(MapTables::default()).unwrap();
    assert_eq!(ept.tables().tables.len(), 1);
    ept.map(0x7000, 0xabc000, READ | WRITE | EXEC).unwrap();
    assert_eq!(ept.tables().tables.len(), 4); // PML4, PDPT, PD, PT
    let e = ept.lookup(0x7000).unwrap();
    assert_eq!(e & ADDR_MASK, 0xabc000);
    assert_eq!(e & 7, 7);
    assert_eq!((e >> 3) & 7, MEMTYPE_WB);
    assert_eq!(ept.lookup(0x8000), None);
    // A neighbour shares the tables.
    ept.map(0x8000, 0xdef000, READ).unwrap();
    assert_eq!(ept.tables().tables.len(), 4);
    assert_eq!(ept.map(0x7000, 0x1000, READ), Err(MapError::Busy));
    assert_eq!(ept.unmap(0x7000).map(|e| e & ADDR_MASK), Some(0xabc000));
    assert_eq!(ept.lookup(0x7000), None);
    assert_eq!(ept.unmap(0x7000), None);
    ept.map(0x7000, 0x1000, READ).unwrap();
}

#[test]
fn far_apart_addresses_get_their_own_tables() {
    let mut ept = Ept::new(MapTables::default()).unwrap();
    ept.map(0, 0x1000, READ).unwrap();
    ept.map((1 << 47) | (1 << 30), 0x2000, READ).unwrap();
    assert_eq!(ept.tables().tables.len(), 7);
    assert_eq!(ept.lookup(0).unwrap() & ADDR_MASK, 0x1000);
    assert_eq!(ept.lookup((1 << 47) | (1 << 30)).unwrap() & ADDR_MASK, 0x2000);
}

#[test]
fn refuses_bad_addresses_and_runs_out_of_memory_cleanly() {
    let mut ept = Ept::new(MapTables::default()).unwrap();
    assert_eq!(ept.map(0x1001, 0x1000, READ), Err(MapError::BadAddress));
    assert_eq!(ept.map(0x1000, 0x1001, READ), Err(MapError::BadAddress));
    assert_eq!(ept.map(GPA_LIMIT, 0x1000, READ), Err(MapError::BadAddress));
    assert_eq!(ept.map(0x1000, 1 << 52, READ), Err(MapError::BadAddress));
    assert_eq!(ept.map(0x1000, 0x1000, 0), Err(MapError::BadAddress));
    assert_eq!(ept.lookup(u64::MAX), None);
    let mut small = Ept::new(MapTables { limit: 2, ..Default::default() }).unwrap();
    assert_eq!(small.map(0x1000, 0x1000, READ), Err(MapError::NoMemory));
    assert_eq!(small.lookup(0x1000), None);
}
