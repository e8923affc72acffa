// SPDX-License-Identifier: GPL-2.0
//! EPT formats (pure logic): the EPT pointer and paging-structure entries.
//! SDM Vol. 3C 25.6.11 (EPTP) and 29.3.2 (EPT translation mechanism).

/// Memory type "write-back" (SDM Vol. 3A 12.3, Table 12-2 encodings).
pub const MEMTYPE_WB: u64 = 6;

/// Entry bit 0: read access.
pub const READ: u64 = 1 << 0;
/// Entry bit 1: write access.
pub const WRITE: u64 = 1 << 1;
/// Entry bit 2: execute access (supervisor-mode execute when MBEC is on).
pub const EXEC: u64 = 1 << 2;
/// Leaf bit 6: ignore the guest's PAT, so guest memory stays write-back
/// whatever the guest's own memory types say (KVM does the same without
/// non-coherent DMA).
pub const IGNORE_PAT: u64 = 1 << 6;
/// Bit 7 of a PDPTE/PDE: maps a 1-GiB/2-MiB page.
pub const LARGE: u64 = 1 << 7;

/// Bits 51:12: the physical address of the next table or page.
pub const ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;

/// An EPT pointer (VMCS field EPT_POINTER; SDM Vol. 3C 25.6.11).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Eptp(pub u64);

impl Eptp {
    /// A 4-level, write-back EPTP for the PML4 table at `pml4` (4-KiB
    /// aligned), with accessed/dirty flags if `ad`. `None` for a misaligned
    /// or too-wide address.
    pub const fn new(pml4: u64, ad: bool) -> Option<Eptp> {
        if pml4 & !ADDR_MASK != 0 {
            return None;
        }
        // Bits 2:0 memory type, bits 5:3 page-walk length minus one, bit 6 A/D.
        let ad_bit = if ad { 1 << 6 } else { 0 };
        Some(Eptp(pml4 | MEMTYPE_WB | (3 << 3) | ad_bit))
    }
}

/// A table entry pointing to the next-level table at `next` (RWX: the leaf
/// decides the real permission).
pub const fn table(next: u64) -> u64 {
    (next & ADDR_MASK) | READ | WRITE | EXEC
}

/// A 4-KiB leaf mapping `page` with permissions `perm` (bits 2:0),
/// write-back, ignoring the guest's PAT.
pub const fn leaf_4k(page: u64, perm: u64) -> u64 {
    (page & ADDR_MASK) | (perm & 7) | (MEMTYPE_WB << 3) | IGNORE_PAT
}

/// Whether an entry maps or points to anything (bits 2:0 not all zero;
/// SDM Vol. 3C 29.3.2: such an entry is "not present").
pub const fn is_present(entry: u64) -> bool {
    entry & 7 != 0
}

/// Index into the table at `level` (4 = PML4 ... 1 = PT) for guest-physical
/// address `gpa`: 9 bits each, starting at bit 12.
pub const fn index(gpa: u64, level: u32) -> usize {
    ((gpa >> (12 + 9 * (level - 1))) & 0x1ff) as usize
}
