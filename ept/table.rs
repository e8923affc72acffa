// SPDX-License-Identifier: GPL-2.0
//! The EPT paging structures (pure logic): a 4-level table tree over any
//! store of 4-KiB tables, mapping guest-physical to host-physical pages.
//! SDM Vol. 3C 29.3.2.

use super::entry::{self, ADDR_MASK, LARGE};

/// Where tables live: the kernel's pages, or a map in host tests.
pub trait Tables {
    /// A new zeroed table; its physical address, or `None` without memory.
    fn alloc(&mut self) -> Option<u64>;
    /// Entry `index` (< 512) of the table at `table`.
    fn read(&self, table: u64, index: usize) -> u64;
    /// Sets entry `index` of the table at `table` (one 64-bit store).
    fn write(&mut self, table: u64, index: usize, value: u64);
}

/// Why a mapping was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapError {
    /// No memory for a table.
    NoMemory,
    /// An address is not 4-KiB aligned or beyond what 4 levels map.
    BadAddress,
    /// The guest-physical page is mapped already.
    Busy,
}

/// Guest-physical addresses a 4-level EPT maps: 48 bits.
pub const GPA_LIMIT: u64 = 1 << 48;

/// A 4-level EPT.
pub struct Ept<T: Tables> {
    root: u64,
    tables: T,
}

impl<T: Tables> Ept<T> {
    /// An empty EPT (one PML4 table).
    pub fn new(mut tables: T) -> Option<Self> {
        let root = tables.alloc()?;
        Some(Self { root, tables })
    }

    /// The PML4 table's physical address (for the EPT pointer).
    pub fn root(&self) -> u64 {
        self.root
    }

    /// Walks to the page table (level 1) for `gpa`, creating missing
    /// tables when `create`.
    fn walk(&mut self, gpa: u64, create: bool) -> Result<Option<u64>, MapError> {
        let mut table = self.root;
        for level in (2..=4).rev() {
            let i = entry::index(gpa, level);
            let e = self.tables.read(table, i);
            if entry::is_present(e) {
                if e & LARGE != 0 {
                    return Err(MapError::Busy);
                }
                table = e & ADDR_MASK;
                continue;
            }
            if !create {
                return Ok(None);
            }
            let next = self.tables.alloc().ok_or(MapError::NoMemory)?;
            self.tables.write(table, i, entry::table(next));
            table = next;
        }
        Ok(Some(table))
    }

    /// Maps the 4-KiB guest page at `gpa` to the host page at `hpa` with
    /// permissions `perm` (READ | WRITE | EXEC bits), write-back.
    pub fn map(&mut self, gpa: u64, hpa: u64, perm: u64) -> Result<(), MapError> {
        if gpa & 0xfff != 0 || gpa >= GPA_LIMIT || hpa & !ADDR_MASK != 0 || perm & 7 == 0 {
            return Err(MapError::BadAddress);
        }
        let pt = self.walk(gpa, true)?.ok_or(MapError::NoMemory)?;
        let i = entry::index(gpa, 1);
        if entry::is_present(self.tables.read(pt, i)) {
            return Err(MapError::Busy);
        }
        self.tables.write(pt, i, entry::leaf_4k(hpa, perm));
        Ok(())
    }

    /// Removes the mapping of the page at `gpa`; returns the old entry.
    /// Tables stay (they are freed with the EPT). The caller invalidates
    /// the TLBs (INVEPT) before reusing the host page.
    pub fn unmap(&mut self, gpa: u64) -> Option<u64> {
        if gpa >= GPA_LIMIT {
            return None;
        }
        let pt = self.walk(gpa, false).ok()??;
        let i = entry::index(gpa, 1);
        let e = self.tables.read(pt, i);
        if !entry::is_present(e) {
            return None;
        }
        self.tables.write(pt, i, 0);
        Some(e)
    }
}
