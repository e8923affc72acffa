// SPDX-License-Identifier: GPL-2.0
//! The guest's page-table walk (pure logic): a guest-linear address to a
//! guest-physical one through the guest's own paging structures, as the CPU
//! does it (SDM Vol. 3A chapter 4), for every paging mode: none, 32-bit,
//! PAE, 4-level and 5-level.
//!
//! What the walk does not do:
//! - set accessed and dirty flags (the CPU does, SDM Vol. 3A 4.8): the
//!   walk only reads the tables;
//! - protection keys (CR4.PKE/PKS, SDM Vol. 3A 4.6.2), shadow-stack
//!   accesses (CET), linear-address masking (LAM) and HLAT;
//! - segmentation: `linear` is already the linear address.

use super::{cr0, cr4, efer, rflags};

/// Guest-physical memory as the walk reads it.
pub trait PhysMem {
    /// The 8 bytes at `gpa`; `None` outside guest RAM.
    fn read_u64(&mut self, gpa: u64) -> Option<u64>;
    /// The 4 bytes at `gpa`; `None` outside guest RAM.
    fn read_u32(&mut self, gpa: u64) -> Option<u32>;
}

/// Bits of the page-fault error code (SDM Vol. 3A 4.7, Figure 4-12).
pub mod pf {
    /// 0: a non-present entry; 1: a protection or reserved-bit violation.
    pub const P: u32 = 1 << 0;
    /// The access was a write.
    pub const W: u32 = 1 << 1;
    /// The access was a user-mode access (CPL 3, not implicit).
    pub const U: u32 = 1 << 2;
    /// A reserved bit was set in a paging-structure entry.
    pub const RSVD: u32 = 1 << 3;
    /// The access was an instruction fetch (reported only with CR4.SMEP,
    /// or with CR4.PAE and IA32_EFER.NXE).
    pub const ID: u32 = 1 << 4;
}

/// What the walk needs of the vCPU's state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PagingRegs {
    /// CR0 (PG, WP).
    pub cr0: u64,
    /// CR3.
    pub cr3: u64,
    /// CR4 (PSE, PAE, LA57, SMEP, SMAP).
    pub cr4: u64,
    /// IA32_EFER (LMA, NXE).
    pub efer: u64,
    /// RFLAGS (AC, for SMAP).
    pub rflags: u64,
    /// PAE paging: the four PDPTE registers the CPU loaded (with EPT, the
    /// VMCS guest PDPTE fields, SDM Vol. 3C 25.4.2); `None`: read the
    /// one needed from memory at CR3, as loading them would (SDM Vol. 3A
    /// 4.4.1).
    pub pdptes: Option<[u64; 4]>,
    /// MAXPHYADDR (CPUID.80000008H:EAX[7:0]): entry bits from it up to 51
    /// are reserved. Taken as 32 if below, 52 if above.
    pub maxphyaddr: u8,
    /// 1-GiB pages are supported (CPUID.80000001H:EDX.Page1GB[bit 26]);
    /// without them PS in a PDPTE is reserved (SDM Vol. 3A 4.5.4).
    pub gbpages: bool,
}

/// The paging mode CR0, CR4 and IA32_EFER select (SDM Vol. 3A 4.1.1,
/// Table 4-1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// CR0.PG = 0: linear addresses are physical.
    Off,
    /// CR4.PAE = 0.
    Bits32,
    /// CR4.PAE = 1, IA32_EFER.LMA = 0.
    Pae,
    /// IA32_EFER.LMA = 1, CR4.LA57 = 0.
    Level4,
    /// IA32_EFER.LMA = 1, CR4.LA57 = 1.
    Level5,
}

impl PagingRegs {
    /// The paging mode.
    pub const fn mode(&self) -> Mode {
        if self.cr0 & cr0::PG == 0 {
            Mode::Off
        } else if self.cr4 & cr4::PAE == 0 {
            Mode::Bits32
        } else if self.efer & efer::LMA == 0 {
            Mode::Pae
        } else if self.cr4 & cr4::LA57 == 0 {
            Mode::Level4
        } else {
            Mode::Level5
        }
    }
}

/// The kind of access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccessKind {
    /// Data read.
    Read,
    /// Data write.
    Write,
    /// Instruction fetch.
    Fetch,
}

/// An access to translate (SDM Vol. 3A 4.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Access {
    /// Read, write or fetch.
    pub kind: AccessKind,
    /// A user-mode access: made at CPL 3 (and not implicit).
    pub user: bool,
    /// An implicit supervisor-mode access (to the GDT, LDT, IDT or TSS,
    /// whatever the CPL): SMAP applies whatever RFLAGS.AC is, and the
    /// error code says supervisor (SDM Vol. 3A 4.6.1). `user` is ignored.
    pub implicit: bool,
}

impl Access {
    /// An explicit access of `kind` at CPL 3 (`user`) or below.
    pub const fn new(kind: AccessKind, user: bool) -> Access {
        Access { kind, user, implicit: false }
    }
    /// Whether the access counts as user-mode.
    const fn is_user(self) -> bool {
        self.user && !self.implicit
    }
}

/// The size of the page a translation went through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageSize {
    /// 4 KiB (also reported with paging off).
    Size4K,
    /// 2 MiB (PAE, 4-level, 5-level).
    Size2M,
    /// 4 MiB (32-bit paging with CR4.PSE).
    Size4M,
    /// 1 GiB (4-level, 5-level).
    Size1G,
}

impl PageSize {
    /// The page's size in bytes.
    pub const fn bytes(self) -> u64 {
        match self {
            PageSize::Size4K => 1 << 12,
            PageSize::Size2M => 1 << 21,
            PageSize::Size4M => 1 << 22,
            PageSize::Size1G => 1 << 30,
        }
    }
}

/// A successful translation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Translation {
    /// The guest-physical address.
    pub gpa: u64,
    /// The page it lies in: the same translation holds from `gpa` to the
    /// end of the page.
    pub size: PageSize,
}

/// Why a translation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WalkError {
    /// The CPU would raise #PF with this error code (bits in [`pf`]; CR2
    /// gets the linear address).
    PageFault {
        /// The error code.
        error_code: u32,
    },
    /// A non-canonical address in IA-32e mode: #GP(0), or #SS(0) for a
    /// stack reference (SDM Vol. 3A 6.15); no walk happens.
    NonCanonical,
    /// A present PAE PDPTE with reserved bits set (63:MAXPHYADDR, 8:5,
    /// 2:1): the CPU refuses to load such a PDPTE (#GP at MOV to CR0, CR3
    /// or CR4, a failed VM entry; SDM Vol. 3A 4.4.1), so no access ever
    /// walks through one.
    BadPdpte,
    /// A paging structure lies outside guest RAM.
    Memory,
}

/// Translates `linear` for `access`: the guest-physical address, or the
/// fault the CPU would raise.
pub fn translate(mem: &mut impl PhysMem, regs: &PagingRegs, linear: u64, access: Access) -> Result<u64, WalkError> {
    walk(mem, regs, linear, access).map(|t| t.gpa)
}

/// [`translate`], also returning the size of the page found.
pub fn walk(mem: &mut impl PhysMem, regs: &PagingRegs, linear: u64, access: Access) -> Result<Translation, WalkError> {
    match regs.mode() {
        // Outside IA-32e mode linear addresses have 32 bits (SDM Vol. 3A 3.3).
        Mode::Off => Ok(Translation { gpa: linear & 0xffff_ffff, size: PageSize::Size4K }),
        Mode::Bits32 => walk32(mem, regs, linear as u32, access),
        Mode::Pae => walk_pae(mem, regs, linear & 0xffff_ffff, access),
        Mode::Level4 => walk_ia32e(mem, regs, linear, access, 4),
        Mode::Level5 => walk_ia32e(mem, regs, linear, access, 5),
    }
}

/// Entry bits (SDM Vol. 3A 4.3 to 4.5, Tables 4-4 to 4-20).
const P: u64 = 1 << 0;
const RW: u64 = 1 << 1;
const US: u64 = 1 << 2;
const PS: u64 = 1 << 7;
const XD: u64 = 1 << 63;

/// Bits `hi..=lo` set.
const fn bits(hi: u32, lo: u32) -> u64 {
    (u64::MAX >> (63 - hi)) & (u64::MAX << lo)
}

/// MAXPHYADDR as the walk uses it: at most 52 (SDM Vol. 3A 4.1.4).
fn maxphy(regs: &PagingRegs) -> u32 {
    (regs.maxphyaddr as u32).clamp(32, 52)
}

/// The access rights accumulated over the entries of a walk (SDM Vol. 3A
/// 4.6.1: a page is writable, user-mode or executable only if every entry
/// on the way says so).
#[derive(Clone, Copy)]
struct Rights {
    write: bool,
    user: bool,
    exec: bool,
}

impl Rights {
    const ALL: Rights = Rights { write: true, user: true, exec: true };

    /// Narrows by one entry; `nx`: XD is in use (IA32_EFER.NXE with PAE or
    /// IA-32e paging).
    fn and(&mut self, e: u64, nx: bool) {
        self.write &= e & RW != 0;
        self.user &= e & US != 0;
        self.exec &= !(nx && e & XD != 0);
    }
}

/// The error-code bits that describe the access (SDM Vol. 3A 4.7): W/R,
/// U/S, and I/D where the mode reports it.
fn access_bits(regs: &PagingRegs, access: Access) -> u32 {
    let mut code = 0;
    match access.kind {
        AccessKind::Write => code |= pf::W,
        AccessKind::Fetch => {
            let pae_nx = regs.cr4 & cr4::PAE != 0 && regs.efer & efer::NXE != 0;
            if regs.cr4 & cr4::SMEP != 0 || pae_nx {
                code |= pf::ID;
            }
        }
        AccessKind::Read => {}
    }
    if access.is_user() {
        code |= pf::U;
    }
    code
}

/// A #PF for this access with `bits` (P, RSVD) added.
fn fault(regs: &PagingRegs, access: Access, bits: u32) -> WalkError {
    WalkError::PageFault { error_code: access_bits(regs, access) | bits }
}

/// Whether `access` may use a page with rights `r` (SDM Vol. 3A 4.6.1).
fn allowed(regs: &PagingRegs, access: Access, r: Rights) -> bool {
    let wp = regs.cr0 & cr0::WP != 0;
    if access.is_user() {
        // User-mode accesses reach only user-mode pages; writes need R/W
        // whatever CR0.WP is.
        return r.user
            && match access.kind {
                AccessKind::Read => true,
                AccessKind::Write => r.write,
                AccessKind::Fetch => r.exec,
            };
    }
    match access.kind {
        AccessKind::Fetch => r.exec && !(r.user && regs.cr4 & cr4::SMEP != 0),
        kind => {
            // SMAP: no data access to user-mode pages, unless explicit with
            // RFLAGS.AC = 1.
            let smap = regs.cr4 & cr4::SMAP != 0 && (access.implicit || regs.rflags & rflags::AC == 0);
            if r.user && smap {
                return false;
            }
            kind == AccessKind::Read || r.write || !wp
        }
    }
}

/// The walk's end: check the rights, then the address.
fn finish(regs: &PagingRegs, access: Access, r: Rights, gpa: u64, size: PageSize) -> Result<Translation, WalkError> {
    if allowed(regs, access, r) {
        Ok(Translation { gpa, size })
    } else {
        Err(fault(regs, access, pf::P))
    }
}

/// 32-bit paging (SDM Vol. 3A 4.3): a page directory at CR3[31:12] of
/// 4-byte entries, 4-KiB pages or, with CR4.PSE, 4-MiB pages whose PDE
/// bits 20:13 give physical-address bits 39:32 (PSE-36, Table 4-4).
fn walk32(mem: &mut impl PhysMem, regs: &PagingRegs, la: u32, access: Access) -> Result<Translation, WalkError> {
    let mut r = Rights::ALL;
    let pde_at = (regs.cr3 & 0xffff_f000) | u64::from(la >> 22) << 2;
    let pde = read32(mem, pde_at)?;
    if pde & P == 0 {
        return Err(fault(regs, access, 0));
    }
    r.and(pde, false);
    if pde & PS != 0 && regs.cr4 & cr4::PSE != 0 {
        // M = min(MAXPHYADDR, 40): bits 21:(M-19) are reserved.
        let m = maxphy(regs).min(40);
        if pde & bits(21, m - 19) != 0 {
            return Err(fault(regs, access, pf::P | pf::RSVD));
        }
        let base = (pde & 0xffc0_0000) | (pde & bits(20, 13)) << 19;
        return finish(regs, access, r, base | u64::from(la & 0x3f_ffff), PageSize::Size4M);
    }
    let pte_at = (pde & 0xffff_f000) | u64::from((la >> 12) & 0x3ff) << 2;
    let pte = read32(mem, pte_at)?;
    if pte & P == 0 {
        return Err(fault(regs, access, 0));
    }
    r.and(pte, false);
    finish(regs, access, r, (pte & 0xffff_f000) | u64::from(la & 0xfff), PageSize::Size4K)
}

/// A 4-byte entry of 32-bit paging.
fn read32(mem: &mut impl PhysMem, gpa: u64) -> Result<u64, WalkError> {
    mem.read_u32(gpa).map(u64::from).ok_or(WalkError::Memory)
}

/// PAE paging (SDM Vol. 3A 4.4): one of four PDPTEs (linear bits 31:30),
/// then a page directory and a page table of 8-byte entries.
fn walk_pae(mem: &mut impl PhysMem, regs: &PagingRegs, la: u64, access: Access) -> Result<Translation, WalkError> {
    let i = (la >> 30) as usize & 3;
    let pdpte = match regs.pdptes {
        Some(p) => p[i],
        // CR3[31:5] holds the PDPT's address (SDM Vol. 3A 4.4.1).
        None => mem.read_u64((regs.cr3 & 0xffff_ffe0) + 8 * i as u64).ok_or(WalkError::Memory)?,
    };
    if pdpte & P == 0 {
        return Err(fault(regs, access, 0));
    }
    // Table 4-8: 63:MAXPHYADDR, 8:5 and 2:1 are reserved; a PDPTE carries
    // no access rights.
    if pdpte & (bits(63, maxphy(regs)) | bits(8, 5) | bits(2, 1)) != 0 {
        return Err(WalkError::BadPdpte);
    }
    // PDEs and PTEs: bits 62:MAXPHYADDR reserved (Tables 4-9 to 4-11).
    let pd = pdpte & bits(maxphy(regs) - 1, 12);
    walk_from(mem, regs, la, access, pd, 2, bits(62, maxphy(regs)))
}

/// 4-level and 5-level paging (SDM Vol. 3A 4.5): `levels` tables from CR3,
/// 9 linear-address bits each; the linear address must be canonical.
fn walk_ia32e(mem: &mut impl PhysMem, regs: &PagingRegs, la: u64, access: Access, levels: u32) -> Result<Translation, WalkError> {
    // Canonical: bits 63:47 (63:56 with 5-level paging) all equal (SDM
    // Vol. 3A 4.5).
    let top = 12 + 9 * levels - 1;
    let shift = 63 - top;
    if ((la << shift) as i64 >> shift) as u64 != la {
        return Err(WalkError::NonCanonical);
    }
    // Bits 51:MAXPHYADDR reserved in every entry (Tables 4-15 to 4-20); CR3
    // bits 63:MAXPHYADDR and 11:0 do not address the table (PCID, flags).
    let root = regs.cr3 & bits(maxphy(regs) - 1, 12);
    walk_from(mem, regs, la, access, root, levels, bits(51, maxphy(regs)))
}

/// Walks down from `table`, the paging structure at `level` (4 for a
/// PML4 ... 1 for a page table), to a page; `high_rsvd` are the reserved
/// high bits of this format's entries.
fn walk_from(
    mem: &mut impl PhysMem,
    regs: &PagingRegs,
    la: u64,
    access: Access,
    table: u64,
    level: u32,
    high_rsvd: u64,
) -> Result<Translation, WalkError> {
    let nx = regs.efer & efer::NXE != 0;
    // XD (bit 63) is reserved unless IA32_EFER.NXE = 1 (SDM Vol. 3A 4.4.2, 4.5.4).
    let rsvd = high_rsvd | if nx { 0 } else { XD };
    let addr = bits(maxphy(regs) - 1, 12);
    let mut r = Rights::ALL;
    let (mut table, mut level) = (table, level);
    loop {
        let shift = 12 + 9 * (level - 1);
        let e = mem.read_u64(table + ((la >> shift) & 511) * 8).ok_or(WalkError::Memory)?;
        if e & P == 0 {
            return Err(fault(regs, access, 0));
        }
        // PS: reserved in PML5Es and PML4Es, and in PDPTEs without 1-GiB
        // pages; it maps a page in PDPTEs and PDEs (Tables 4-15 to 4-20).
        let ps_rsvd = level >= 4 || (level == 3 && !regs.gbpages);
        let leaf = level == 1 || (e & PS != 0 && !ps_rsvd);
        let mut bad = e & rsvd;
        if ps_rsvd {
            bad |= e & PS;
        }
        if leaf && level > 1 {
            // Large pages: bits (shift-1):13 are reserved; bit 12 is PAT.
            bad |= e & bits(shift - 1, 13);
        }
        if bad != 0 {
            return Err(fault(regs, access, pf::P | pf::RSVD));
        }
        r.and(e, nx);
        if leaf {
            let size = match level {
                1 => PageSize::Size4K,
                2 => PageSize::Size2M,
                _ => PageSize::Size1G,
            };
            let offset = bits(shift - 1, 0);
            return finish(regs, access, r, (e & addr & !offset) | (la & offset), size);
        }
        table = e & addr;
        level -= 1;
    }
}
