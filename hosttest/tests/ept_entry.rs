use rvmx_pure::ept::entry::*;

#[test]
fn eptp_is_4_level_write_back() {
    let e = Eptp::new(0x1234_5000, false).unwrap();
    assert_eq!(e.0 & 7, MEMTYPE_WB); // bits 2:0
    assert_eq!((e.0 >> 3) & 7, 3); // page-walk length 4, minus 1
    assert_eq!(e.0 & (1 << 6), 0);
    assert_eq!(e.0 & ADDR_MASK, 0x1234_5000);
    assert_eq!(Eptp::new(0x1234_5000, true).unwrap().0 & (1 << 6), 1 << 6);
}

#[test]
fn eptp_rejects_bad_addresses() {
    assert_eq!(Eptp::new(0x1234_5008, false), None); // not 4-KiB aligned
    assert_eq!(Eptp::new(1 << 52, false), None); // beyond 52 bits
}

#[test]
fn entries() {
    let t = table(0xabc_d000);
    assert!(is_present(t));
    assert_eq!(t & ADDR_MASK, 0xabc_d000);
    assert_eq!(t & 7, READ | WRITE | EXEC);
    let l = leaf_4k(0x5000, READ | EXEC);
    assert_eq!(l & 7, READ | EXEC);
    assert_eq!((l >> 3) & 7, MEMTYPE_WB);
    assert!(!is_present(0));
    assert!(!is_present(ADDR_MASK)); // an address alone is not present
    // Extra permission bits do not leak into the memory type.
    assert_eq!((leaf_4k(0, 0xff) >> 3) & 7, MEMTYPE_WB);
}

#[test]
fn indices_per_level() {
    let gpa = (5u64 << 39) | (6 << 30) | (7 << 21) | (8 << 12) | 0x123;
    assert_eq!(index(gpa, 4), 5);
    assert_eq!(index(gpa, 3), 6);
    assert_eq!(index(gpa, 2), 7);
    assert_eq!(index(gpa, 1), 8);
}
