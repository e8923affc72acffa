//! The guest page-table walk (x86/paging.rs) against hand-built tables in a
//! fake guest RAM: every paging mode, page sizes, reserved bits, access
//! rights (WP, SMEP, SMAP, NX) and the #PF error code (SDM Vol. 3A ch. 4).

use std::collections::HashMap;

use rvmx_pure::x86::paging::{pf, translate, walk, Access, AccessKind, Mode, PageSize, PagingRegs, PhysMem, Translation, WalkError};
use rvmx_pure::x86::{cr0, cr4, efer, rflags};

/// Sparse guest RAM: 4-KiB pages that exist once written; reads elsewhere
/// are outside RAM. Counts reads, to show when no walk happens.
#[derive(Default)]
struct Ram {
    pages: HashMap<u64, [u8; 4096]>,
    reads: usize,
}

impl Ram {
    fn put(&mut self, gpa: u64, bytes: &[u8]) {
        for (i, b) in bytes.iter().enumerate() {
            let a = gpa + i as u64;
            self.pages.entry(a >> 12).or_insert([0; 4096])[(a & 0xfff) as usize] = *b;
        }
    }
    fn set64(&mut self, gpa: u64, v: u64) {
        self.put(gpa, &v.to_le_bytes());
    }
    fn set32(&mut self, gpa: u64, v: u32) {
        self.put(gpa, &v.to_le_bytes());
    }
    fn get(&mut self, gpa: u64, out: &mut [u8]) -> Option<()> {
        self.reads += 1;
        for (i, b) in out.iter_mut().enumerate() {
            let a = gpa + i as u64;
            *b = self.pages.get(&(a >> 12))?[(a & 0xfff) as usize];
        }
        Some(())
    }
}

impl PhysMem for Ram {
    fn read_u64(&mut self, gpa: u64) -> Option<u64> {
        let mut b = [0; 8];
        self.get(gpa, &mut b).map(|()| u64::from_le_bytes(b))
    }
    fn read_u32(&mut self, gpa: u64) -> Option<u32> {
        let mut b = [0; 4];
        self.get(gpa, &mut b).map(|()| u32::from_le_bytes(b))
    }
}

// Entry bits.
const P: u64 = 1;
const W: u64 = 2;
const U: u64 = 4;
const PS: u64 = 1 << 7;
const XD: u64 = 1 << 63;
const PWU: u64 = P | W | U;

const READ: Access = Access { kind: AccessKind::Read, user: false, implicit: false };
const WRITE: Access = Access { kind: AccessKind::Write, user: false, implicit: false };
const FETCH: Access = Access { kind: AccessKind::Fetch, user: false, implicit: false };
const UREAD: Access = Access { kind: AccessKind::Read, user: true, implicit: false };
const UWRITE: Access = Access { kind: AccessKind::Write, user: true, implicit: false };
const UFETCH: Access = Access { kind: AccessKind::Fetch, user: true, implicit: false };

fn pfault(error_code: u32) -> Result<u64, WalkError> {
    Err(WalkError::PageFault { error_code })
}

fn regs32(cr3: u64, cr4: u64) -> PagingRegs {
    PagingRegs { cr0: cr0::PG | cr0::PE | cr0::WP, cr3, cr4, maxphyaddr: 40, ..Default::default() }
}

fn regs_pae(cr3: u64) -> PagingRegs {
    PagingRegs { cr4: cr4::PAE, efer: efer::NXE, ..regs32(cr3, 0) }
}

fn regs64(cr3: u64) -> PagingRegs {
    PagingRegs { cr4: cr4::PAE, efer: efer::LME | efer::LMA | efer::NXE, gbpages: true, ..regs32(cr3, 0) }
}

/// 4-level tables at 0x1000 (PML4), 0x2000 (PDPT), 0x3000 (PD), 0x4000
/// (PT) mapping linear `la` to 0x1234_5000 with `leaf` flags and `upper`
/// flags on the PML4E, PDPTE and PDE.
fn tables64(la: u64, upper: u64, leaf: u64) -> Ram {
    let mut m = Ram::default();
    let idx = |l: u32| (la >> (12 + 9 * l)) & 511;
    m.set64(0x1000 + idx(3) * 8, 0x2000 | upper);
    m.set64(0x2000 + idx(2) * 8, 0x3000 | upper);
    m.set64(0x3000 + idx(1) * 8, 0x4000 | upper);
    m.set64(0x4000 + idx(0) * 8, 0x1234_5000 | leaf);
    m
}

// Table 4-1: the mode follows CR0.PG, CR4.PAE, IA32_EFER.LMA, CR4.LA57.
#[test]
fn mode_selection() {
    let mut r = PagingRegs::default();
    assert_eq!(r.mode(), Mode::Off);
    r.cr0 = cr0::PG | cr0::PE;
    assert_eq!(r.mode(), Mode::Bits32);
    r.cr4 = cr4::PAE | cr4::LA57; // LA57 matters only in IA-32e mode
    assert_eq!(r.mode(), Mode::Pae);
    r.efer = efer::LMA;
    assert_eq!(r.mode(), Mode::Level5);
    r.cr4 = cr4::PAE;
    assert_eq!(r.mode(), Mode::Level4);
}

// CR0.PG = 0: linear is physical (32 bits), nothing is read, no rights.
#[test]
fn paging_off_is_identity() {
    let mut m = Ram::default();
    let r = PagingRegs { cr0: cr0::PE, cr3: 0x1000, ..Default::default() };
    let t = walk(&mut m, &r, 0xfeed_beef, UWRITE).unwrap();
    assert_eq!(t, Translation { gpa: 0xfeed_beef, size: PageSize::Size4K });
    assert_eq!(translate(&mut m, &r, 0x1_0000_1234, FETCH), Ok(0x1234));
    assert_eq!(m.reads, 0);
}

// 32-bit paging, 4-KiB page: PDE at CR3 + 4 * la[31:22], PTE at PDE.addr +
// 4 * la[21:12] (SDM Vol. 3A 4.3); CR3 bits 11:0 are not address.
#[test]
fn bits32_4k_page() {
    let mut m = Ram::default();
    let la = 0x8040_3abc_u64; // PDE 0x201, PTE 0x003
    m.set32(0x5000 + 0x201 * 4, 0x6000 | PWU as u32);
    m.set32(0x6000 + 3 * 4, 0x0abc_d000 | PWU as u32);
    let r = regs32(0x5018, 0);
    assert_eq!(walk(&mut m, &r, la, UWRITE), Ok(Translation { gpa: 0x0abc_dabc, size: PageSize::Size4K }));
    // Only the low 32 bits of the linear address count.
    assert_eq!(translate(&mut m, &r, la | 0xffff_0000_0000_0000, READ), Ok(0x0abc_dabc));
}

// 32-bit paging with CR4.PSE: PS in a PDE maps 4 MiB; PDE bits 20:13 are
// physical-address bits 39:32 (PSE-36, Table 4-4). Without CR4.PSE the PS
// bit is ignored and the PDE references a page table.
#[test]
fn bits32_4m_page_and_pse36() {
    let mut m = Ram::default();
    let pde = 0x0c00_0000 | (0x5a << 13) | PS as u32 | PWU as u32;
    m.set32(0x5000 + 0x3ff * 4, pde);
    let la = 0xffd2_3456;
    let r = regs32(0x5000, cr4::PSE);
    assert_eq!(walk(&mut m, &r, la, READ), Ok(Translation { gpa: 0x5a_0c12_3456, size: PageSize::Size4M }));
    // CR4.PSE = 0: the same PDE points at a page table at 0x0c0b_4000.
    m.set32(0x0c0b_4000 + 0x123 * 4, 0x7000 | P as u32);
    assert_eq!(walk(&mut m, &regs32(0x5000, 0), la, READ), Ok(Translation { gpa: 0x7456, size: PageSize::Size4K }));
}

// 4-MiB PDE reserved bits: 21 always, and 20:(M-19) with M = MAXPHYADDR
// (up to 40). Reserved -> #PF with P and RSVD.
#[test]
fn bits32_4m_reserved_bits() {
    let mut m = Ram::default();
    m.set32(0x5000, (1 << 21) | PS as u32 | P as u32);
    let r = regs32(0x5000, cr4::PSE);
    assert_eq!(translate(&mut m, &r, 0x1000, READ), pfault(pf::P | pf::RSVD));
    // Bit 17 is address bit 36: fine with MAXPHYADDR 40, reserved with 36.
    m.set32(0x5000, (1 << 17) | PS as u32 | P as u32);
    assert_eq!(translate(&mut m, &r, 0x1000, READ), Ok(0x10_0000_1000));
    let r36 = PagingRegs { maxphyaddr: 36, ..r };
    assert_eq!(translate(&mut m, &r36, 0x1000, WRITE), pfault(pf::P | pf::RSVD | pf::W));
}

// A non-present entry: P = 0 in the error code, with W/R and U/S telling
// the access; reserved bits of a non-present entry are not checked.
#[test]
fn not_present_error_codes() {
    let mut m = Ram::default();
    m.set32(0x5000, 0xffff_fffe); // not present, every other bit set
    let r = regs32(0x5000, cr4::PSE);
    assert_eq!(translate(&mut m, &r, 0x10, READ), pfault(0));
    assert_eq!(translate(&mut m, &r, 0x10, WRITE), pfault(pf::W));
    assert_eq!(translate(&mut m, &r, 0x10, UREAD), pfault(pf::U));
    assert_eq!(translate(&mut m, &r, 0x10, UWRITE), pfault(pf::U | pf::W));
    // A present PDE, a non-present PTE.
    m.set32(0x5000, 0x6000 | PWU as u32);
    m.set32(0x6000, 0x8000 | PWU as u32 & !1);
    assert_eq!(translate(&mut m, &r, 0x10, UWRITE), pfault(pf::U | pf::W));
}

// User mode (SDM Vol. 3A 4.6.1): only user-mode pages (U/S = 1 in every
// entry), writes only with R/W = 1 in every entry whatever CR0.WP.
#[test]
fn bits32_user_rights() {
    let mut m = Ram::default();
    m.set32(0x5000, 0x6000 | PWU as u32);
    m.set32(0x6000, 0x8000 | (P | U) as u32); // read-only user page
    m.set32(0x6004, 0x9000 | (P | W) as u32); // supervisor page
    let mut r = regs32(0x5000, 0);
    r.cr0 &= !cr0::WP;
    assert_eq!(translate(&mut m, &r, 0x0010, UREAD), Ok(0x8010));
    assert_eq!(translate(&mut m, &r, 0x0010, UWRITE), pfault(pf::P | pf::W | pf::U));
    assert_eq!(translate(&mut m, &r, 0x1010, UREAD), pfault(pf::P | pf::U));
    assert_eq!(translate(&mut m, &r, 0x1010, UFETCH), pfault(pf::P | pf::U)); // no I/D: PAE = 0, no SMEP
    // U/S = 0 in the PDE makes the page supervisor even with U/S = 1 in the PTE.
    m.set32(0x5000, 0x6000 | (P | W) as u32);
    assert_eq!(translate(&mut m, &r, 0x0010, UREAD), pfault(pf::P | pf::U));
}

// Supervisor writes to read-only pages: allowed with CR0.WP = 0, a fault
// with WP = 1 (SDM Vol. 3A 4.6.1), for supervisor and user pages alike.
#[test]
fn write_protect() {
    let mut m = Ram::default();
    m.set32(0x5000, 0x6000 | PWU as u32);
    m.set32(0x6000, 0x8000 | P as u32); // supervisor, read-only
    m.set32(0x6004, 0x9000 | (P | U) as u32); // user, read-only
    let wp = regs32(0x5000, 0);
    let no_wp = PagingRegs { cr0: wp.cr0 & !cr0::WP, ..wp };
    assert_eq!(translate(&mut m, &no_wp, 0x0008, WRITE), Ok(0x8008));
    assert_eq!(translate(&mut m, &no_wp, 0x1008, WRITE), Ok(0x9008));
    assert_eq!(translate(&mut m, &wp, 0x0008, WRITE), pfault(pf::P | pf::W));
    assert_eq!(translate(&mut m, &wp, 0x1008, WRITE), pfault(pf::P | pf::W));
    assert_eq!(translate(&mut m, &wp, 0x0008, READ), Ok(0x8008));
}

// 32-bit paging has no XD bit: fetches are allowed, and I/D is reported
// only with CR4.SMEP (SDM Vol. 3A 4.7), here for an SMEP fault.
#[test]
fn bits32_fetch_and_smep() {
    let mut m = Ram::default();
    m.set32(0x5000, 0x6000 | PWU as u32);
    m.set32(0x6000, 0x8000 | PWU as u32);
    let mut r = regs32(0x5000, 0);
    r.efer = efer::NXE; // NXE without PAE: no XD, no I/D
    assert_eq!(translate(&mut m, &r, 0x20, FETCH), Ok(0x8020));
    assert_eq!(translate(&mut m, &r, 0x20, UFETCH), Ok(0x8020));
    assert_eq!(translate(&mut m, &r, 0x10_0000, FETCH), pfault(0));
    r.cr4 = cr4::SMEP;
    assert_eq!(translate(&mut m, &r, 0x20, FETCH), pfault(pf::P | pf::ID));
    assert_eq!(translate(&mut m, &r, 0x10_0000, FETCH), pfault(pf::ID));
    assert_eq!(translate(&mut m, &r, 0x20, UFETCH), Ok(0x8020));
}

// PAE paging: the PDPTE from memory at CR3[31:5] (32-byte aligned), index
// la[31:30]; PDE la[29:21], PTE la[20:12] (SDM Vol. 3A 4.4).
#[test]
fn pae_4k_page_pdpte_from_memory() {
    let mut m = Ram::default();
    let la = 0xc020_3456_u64; // PDPTE 3, PDE 1, PTE 3
    m.set64(0x5020 + 3 * 8, 0x6000 | P);
    m.set64(0x6000 + 8, 0x7000 | PWU);
    m.set64(0x7000 + 3 * 8, 0x1_2345_6000 | PWU);
    let r = regs_pae(0x5020);
    assert_eq!(walk(&mut m, &r, la, UWRITE), Ok(Translation { gpa: 0x1_2345_6456, size: PageSize::Size4K }));
    // The four loaded PDPTE registers win over memory.
    m.set64(0xa000 + 8, 0x7000 | PWU);
    let loaded = PagingRegs { pdptes: Some([0, 0, 0, 0xa000 | P]), ..r };
    assert_eq!(translate(&mut m, &loaded, la, READ), Ok(0x1_2345_6456));
    m.set64(0x5020 + 3 * 8, 0);
    assert_eq!(translate(&mut m, &loaded, la, READ), Ok(0x1_2345_6456));
    assert_eq!(translate(&mut m, &r, la, READ), pfault(0));
}

// PAE PDPTEs: not present -> #PF (P = 0); reserved bits (63:M, 8:5, 2:1)
// set in a present one -> it could never have been loaded.
#[test]
fn pae_pdpte_present_and_reserved() {
    let mut m = Ram::default();
    let r = PagingRegs { pdptes: Some([0x6000 | P | W, 0x6000 | P | (1 << 5), 0x6000 | P | (1 << 40), 0]), ..regs_pae(0) };
    assert_eq!(translate(&mut m, &r, 0xc000_0000, UWRITE), pfault(pf::U | pf::W));
    assert_eq!(translate(&mut m, &r, 0x0000_0000, READ), Err(WalkError::BadPdpte));
    assert_eq!(translate(&mut m, &r, 0x4000_0000, READ), Err(WalkError::BadPdpte));
    assert_eq!(translate(&mut m, &r, 0x8000_0000, READ), Err(WalkError::BadPdpte));
    assert_eq!(m.reads, 0);
}

// PAE 2-MiB pages: PS in a PDE; bits 20:13 reserved (bit 12 is PAT).
#[test]
fn pae_2m_page() {
    let mut m = Ram::default();
    m.set64(0x6000 + 5 * 8, 0x4000_0000 | PS | P | (1 << 12));
    let r = PagingRegs { pdptes: Some([0x6000 | P, 0, 0, 0]), ..regs_pae(0) };
    assert_eq!(walk(&mut m, &r, 0xab_2345, READ), Ok(Translation { gpa: 0x400b_2345, size: PageSize::Size2M }));
    m.set64(0x6000 + 5 * 8, 0x4000_0000 | PS | P | (1 << 13));
    assert_eq!(translate(&mut m, &r, 0xab_2345, READ), pfault(pf::P | pf::RSVD));
}

// PAE with NXE: XD in a PDE or PTE forbids fetches (P | I/D); without NXE
// bit 63 is reserved. Bits 62:MAXPHYADDR are reserved in PAE entries.
#[test]
fn pae_nx_and_reserved_high_bits() {
    let mut m = Ram::default();
    m.set64(0x6000, 0x7000 | PWU);
    m.set64(0x7000, 0x8000 | PWU | XD);
    let r = PagingRegs { pdptes: Some([0x6000 | P, 0, 0, 0]), ..regs_pae(0) };
    assert_eq!(translate(&mut m, &r, 0x10, FETCH), pfault(pf::P | pf::ID));
    assert_eq!(translate(&mut m, &r, 0x10, UFETCH), pfault(pf::P | pf::ID | pf::U));
    assert_eq!(translate(&mut m, &r, 0x10, UWRITE), Ok(0x8010));
    let no_nx = PagingRegs { efer: 0, ..r };
    assert_eq!(translate(&mut m, &no_nx, 0x10, READ), pfault(pf::P | pf::RSVD));
    // Without NXE, a fetch fault has no I/D.
    assert_eq!(translate(&mut m, &no_nx, 0x1000, FETCH), pfault(0));
    m.set64(0x7000, 0x8000 | PWU | (1 << 55));
    assert_eq!(translate(&mut m, &r, 0x10, READ), pfault(pf::P | pf::RSVD));
}

// 4-level paging, 4-KiB page in the upper canonical half: indexes from
// la[47:39] down to la[20:12]; CR3's PCID (11:0) and bit 63 are no address.
#[test]
fn level4_4k_page_upper_half() {
    let la = 0xffff_8880_1234_5678;
    let mut m = tables64(la, PWU, PWU);
    let r = regs64(0x1000 | 0x123 | (1 << 63));
    assert_eq!(walk(&mut m, &r, la, WRITE), Ok(Translation { gpa: 0x1234_5678, size: PageSize::Size4K }));
    assert_eq!(m.reads, 4);
}

// Non-canonical addresses in IA-32e mode: #GP (#SS for the stack), no walk.
#[test]
fn level4_non_canonical() {
    let mut m = tables64(0, PWU, PWU);
    let r = regs64(0x1000);
    for la in [0x0000_8000_0000_0000, 0xffff_7fff_ffff_ffff, 0x0100_0000_0000_0000] {
        assert_eq!(translate(&mut m, &r, la, READ), Err(WalkError::NonCanonical), "{la:#x}");
    }
    assert_eq!(m.reads, 0);
}

// 1-GiB and 2-MiB pages: PS in a PDPTE (with 1-GiB page support) or PDE;
// bits 29:13 and 20:13 are reserved; without 1-GiB pages PS in a PDPTE is
// reserved (SDM Vol. 3A 4.5.4).
#[test]
fn level4_large_pages() {
    let mut m = Ram::default();
    m.set64(0x1000, 0x2000 | PWU);
    m.set64(0x2000, 0x4000_0000 | PS | PWU); // 1 GiB at 0x4000_0000
    m.set64(0x2008, 0x3000 | PWU);
    m.set64(0x3000 + 2 * 8, 0x60_0000 | PS | PWU); // 2 MiB at 0x60_0000
    let r = regs64(0x1000);
    assert_eq!(walk(&mut m, &r, 0x1234_5678, READ), Ok(Translation { gpa: 0x5234_5678, size: PageSize::Size1G }));
    assert_eq!(walk(&mut m, &r, 0x4041_2345, READ), Ok(Translation { gpa: 0x61_2345, size: PageSize::Size2M }));
    let no_1g = PagingRegs { gbpages: false, ..r };
    assert_eq!(translate(&mut m, &no_1g, 0x1234_5678, READ), pfault(pf::P | pf::RSVD));
    m.set64(0x2000, 0x4000_0000 | PS | PWU | (1 << 29));
    assert_eq!(translate(&mut m, &r, 0x1234_5678, READ), pfault(pf::P | pf::RSVD));
    m.set64(0x3000 + 2 * 8, 0x60_0000 | PS | PWU | (1 << 20));
    assert_eq!(translate(&mut m, &r, 0x4041_2345, UREAD), pfault(pf::P | pf::RSVD | pf::U));
}

// PS in a PML4E is reserved (Table 4-15). The PDPT sits at 512 GiB so no
// address bit of the PML4E could pass for a reserved large-page bit.
#[test]
fn level4_ps_in_pml4e_reserved() {
    let mut m = tables64(0x5000, PWU, PWU);
    let pdpt = 1 << 39;
    m.set64(pdpt, 0x3000 | PWU);
    m.set64(0x1000, pdpt | PWU);
    assert_eq!(translate(&mut m, &regs64(0x1000), 0x5000, READ), Ok(0x1234_5000));
    m.set64(0x1000, pdpt | PWU | PS);
    assert_eq!(translate(&mut m, &regs64(0x1000), 0x5000, READ), pfault(pf::P | pf::RSVD));
}

// Bits 51:MAXPHYADDR are reserved in every entry; bits 62:52 are ignored
// in 4-level paging (not reserved as in PAE).
#[test]
fn level4_maxphyaddr_reserved_and_ignored_bits() {
    let la = 0x7f12_3456_7000;
    let mut m = tables64(la, PWU, PWU | (0x7ff << 52));
    let r = PagingRegs { maxphyaddr: 39, ..regs64(0x1000) };
    assert_eq!(translate(&mut m, &r, la, READ), Ok(0x1234_5000));
    let mut m = tables64(la, PWU, PWU | (1 << 39));
    assert_eq!(translate(&mut m, &r, la, READ), pfault(pf::P | pf::RSVD));
    let wide = PagingRegs { maxphyaddr: 46, ..r };
    assert_eq!(translate(&mut m, &wide, la, READ), Ok(0x80_1234_5000));
}

// The U/S and R/W of every level count: a supervisor PML4E or a read-only
// PDPTE restrict the whole subtree.
#[test]
fn level4_rights_from_every_level() {
    let la = 0x40_0000_1000;
    let mut m = tables64(la, PWU, PWU);
    m.set64(0x1000, 0x2000 | P | W); // supervisor PML4E
    let r = regs64(0x1000);
    assert_eq!(translate(&mut m, &r, la, UREAD), pfault(pf::P | pf::U));
    assert_eq!(translate(&mut m, &r, la, WRITE), Ok(0x1234_5000));
    m.set64(0x1000, 0x2000 | PWU);
    m.set64(0x2000 + 0x100 * 8, 0x3000 | P | U); // read-only PDPTE
    assert_eq!(translate(&mut m, &r, la, UWRITE), pfault(pf::P | pf::W | pf::U));
    assert_eq!(translate(&mut m, &r, la, WRITE), pfault(pf::P | pf::W));
    assert_eq!(translate(&mut m, &r, la, UREAD), Ok(0x1234_5000));
}

// XD at any level (here the PML4E) forbids fetches with NXE; without NXE
// it is a reserved bit.
#[test]
fn level4_nx_at_upper_level() {
    let la = 0x2000_0000;
    let mut m = tables64(la, PWU, PWU);
    m.set64(0x1000, 0x2000 | PWU | XD);
    let r = regs64(0x1000);
    assert_eq!(translate(&mut m, &r, la, UFETCH), pfault(pf::P | pf::ID | pf::U));
    assert_eq!(translate(&mut m, &r, la, READ), Ok(0x1234_5000));
    let no_nx = PagingRegs { efer: efer::LMA | efer::LME, ..r };
    assert_eq!(translate(&mut m, &no_nx, la, READ), pfault(pf::P | pf::RSVD));
}

// SMEP: no supervisor fetch from a user-mode page (P | I/D); user fetches
// and supervisor fetches from supervisor pages are unaffected.
#[test]
fn level4_smep() {
    let la = 0x40_0000;
    let mut m = tables64(la, PWU, PWU);
    let r = PagingRegs { cr4: cr4::PAE | cr4::SMEP, ..regs64(0x1000) };
    assert_eq!(translate(&mut m, &r, la, FETCH), pfault(pf::P | pf::ID));
    assert_eq!(translate(&mut m, &r, la, UFETCH), Ok(0x1234_5000));
    assert_eq!(translate(&mut m, &r, la, READ), Ok(0x1234_5000)); // SMEP is about fetches
    let mut m = tables64(la, PWU, P | W);
    assert_eq!(translate(&mut m, &r, la, FETCH), Ok(0x1234_5000));
}

// SMAP: explicit supervisor data accesses to user-mode pages fault unless
// RFLAGS.AC = 1; implicit ones (GDT, IDT, TSS...) fault whatever AC is and
// report U/S = 0 even at CPL 3 (SDM Vol. 3A 4.6.1, 4.7).
#[test]
fn level4_smap() {
    let la = 0x40_0000;
    let mut m = tables64(la, PWU, PWU);
    let r = PagingRegs { cr4: cr4::PAE | cr4::SMAP, ..regs64(0x1000) };
    assert_eq!(translate(&mut m, &r, la, READ), pfault(pf::P));
    assert_eq!(translate(&mut m, &r, la, WRITE), pfault(pf::P | pf::W));
    assert_eq!(translate(&mut m, &r, la, UWRITE), Ok(0x1234_5000));
    assert_eq!(translate(&mut m, &r, la, FETCH), Ok(0x1234_5000)); // SMAP is about data
    let ac = PagingRegs { rflags: rflags::FIXED | rflags::AC, ..r };
    assert_eq!(translate(&mut m, &ac, la, READ), Ok(0x1234_5000));
    assert_eq!(translate(&mut m, &ac, la, WRITE), Ok(0x1234_5000));
    let implicit = Access { kind: AccessKind::Read, user: true, implicit: true };
    assert_eq!(translate(&mut m, &ac, la, implicit), pfault(pf::P));
    // Supervisor pages are untouched by SMAP.
    let mut m = tables64(la, PWU, P | W);
    assert_eq!(translate(&mut m, &r, la, Access { kind: AccessKind::Write, user: false, implicit: true }), Ok(0x1234_5000));
}

// A paging structure outside guest RAM is no fault of the guest's.
#[test]
fn table_outside_ram() {
    let la = 0x7000;
    let mut m = tables64(la, PWU, PWU);
    m.set64(0x3000, 0xdead_0000 | PWU); // PDE -> a page table nowhere
    assert_eq!(translate(&mut m, &regs64(0x1000), la, READ), Err(WalkError::Memory));
    assert_eq!(translate(&mut m, &regs64(0x9000), la, READ), Err(WalkError::Memory));
    assert_eq!(translate(&mut Ram::default(), &regs32(0x5000, 0), la, READ), Err(WalkError::Memory));
    let pae = regs_pae(0x5000);
    assert_eq!(translate(&mut Ram::default(), &pae, la, READ), Err(WalkError::Memory));
}

// 5-level paging (CR4.LA57): a PML5 indexed by la[56:48] on top; addresses
// canonical in 57 bits (not 48) translate; PS in a PML5E is reserved.
#[test]
fn level5_walk() {
    let la: u64 = 0xff12_3456_789a_bcde; // canonical in 57 bits only
    let mut m = tables64(la, PWU, PWU);
    let pml5 = 0x8000 + ((la >> 48) & 511) * 8;
    m.set64(pml5, 0x1000 | PWU);
    let r = PagingRegs { cr4: cr4::PAE | cr4::LA57, ..regs64(0x8000) };
    assert_eq!(walk(&mut m, &r, la, UWRITE), Ok(Translation { gpa: 0x1234_5cde, size: PageSize::Size4K }));
    assert_eq!(translate(&mut m, &regs64(0x1000), la, READ), Err(WalkError::NonCanonical));
    assert_eq!(translate(&mut m, &r, 0xfe12_3456_789a_bcde, READ), Err(WalkError::NonCanonical));
    m.set64(pml5, 0x1000 | PWU | PS);
    assert_eq!(translate(&mut m, &r, la, READ), pfault(pf::P | pf::RSVD));
    m.set64(pml5, 0x1000 | W | U);
    assert_eq!(translate(&mut m, &r, la, UFETCH), pfault(pf::U | pf::ID));
}

// I/D with CR4.SMEP alone (PAE paging, NXE = 0): the fetch fault reports
// it; a supervisor data read of a user page without SMAP is allowed.
#[test]
fn pae_id_with_smep_without_nxe() {
    let mut m = Ram::default();
    m.set64(0x6000, 0x7000 | PWU);
    m.set64(0x7000, 0x8000 | PWU);
    let r = PagingRegs { efer: 0, cr4: cr4::PAE | cr4::SMEP, pdptes: Some([0x6000 | P, 0, 0, 0]), ..regs_pae(0) };
    assert_eq!(translate(&mut m, &r, 0x10, FETCH), pfault(pf::P | pf::ID));
    assert_eq!(translate(&mut m, &r, 0x10, READ), Ok(0x8010));
    assert_eq!(translate(&mut m, &r, 0x1010, UFETCH), pfault(pf::U | pf::ID));
}

// Outside IA-32e mode only the low 32 bits of a PAE linear address count;
// the PDPT is at CR3[31:5] whatever CR3's upper bits hold.
#[test]
fn pae_32bit_linear_and_cr3() {
    let mut m = Ram::default();
    m.set64(0x5fe0 + 8, 0x6000 | P);
    m.set64(0x6000, 0x7000 | PWU);
    m.set64(0x7000 + 8, 0x9000 | PWU);
    let r = regs_pae(0xffff_ffff_0000_5fe0 | 0x1f);
    assert_eq!(translate(&mut m, &r, 0xdead_0000_4000_1abc, READ), Ok(0x9abc));
}
