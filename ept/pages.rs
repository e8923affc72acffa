// SPDX-License-Identifier: GPL-2.0
//! The EPT page writer: the table tree's pages in kernel memory, where the
//! CPU's page walker reads them (the tree's logic is pure: `table.rs`).

use super::table::Tables;
use crate::kapi::KernelPage;
use kernel::prelude::*;

/// EPT tables in kernel pages, found by physical address (sorted).
pub(crate) struct KernelTables {
    pages: KVec<(u64, KernelPage)>,
}

impl KernelTables {
    /// No tables yet.
    pub(crate) fn new() -> Self {
        Self { pages: KVec::new() }
    }

    fn virt(&self, table: u64) -> Option<*mut u64> {
        let i = self.pages.binary_search_by_key(&table, |(pa, _)| *pa).ok()?;
        Some(self.pages[i].1.as_ptr().cast::<u64>())
    }
}

impl Tables for KernelTables {
    fn alloc(&mut self) -> Option<u64> {
        let page = KernelPage::new().ok()?;
        let pa = page.phys();
        let at = self.pages.binary_search_by_key(&pa, |(p, _)| *p).unwrap_or_else(|i| i);
        self.pages.push((pa, page), GFP_KERNEL).ok()?;
        // Keep the list sorted: rotate the new entry into place.
        self.pages[at..].rotate_right(1);
        Some(pa)
    }

    fn read(&self, table: u64, index: usize) -> u64 {
        match self.virt(table) {
            // SAFETY: `t` is one of our table pages (4 KiB = 512 entries)
            // and `index` < 512 (EPT indices are 9 bits).
            Some(t) if index < 512 => unsafe { t.add(index).read_volatile() },
            _ => 0,
        }
    }

    fn write(&mut self, table: u64, index: usize, value: u64) {
        if let Some(t) = self.virt(table) {
            if index < 512 {
                // SAFETY: as in `read`; one aligned 64-bit store, which the
                // CPU's page walker sees whole.
                unsafe { t.add(index).write_volatile(value) };
            }
        }
    }
}

