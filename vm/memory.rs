// SPDX-License-Identifier: GPL-2.0
//! Guest memory: the VM's memory slots and its EPT. Pages are pinned when
//! the guest first touches them (an EPT violation inside a slot) and
//! unpinned when their slot or the VM goes, after every CPU has dropped
//! the cached translations (INVEPT).

use crate::ept::entry::{Eptp, EXEC, READ, WRITE};
use crate::ept::pages::KernelTables;
use crate::ept::table::{Ept, MapError, GPA_LIMIT};
use crate::kapi::{self, PinnedPage, PIN_BATCH};
use crate::uapi;
use crate::vmx::exit::strio::GuestMem;
use crate::vmx::{caps::ept_vpid, insn};
use kernel::prelude::*;
use kernel::sync::Mutex;
use kernel::uaccess::{UserPtr, UserSlice};

/// Memory slots per VM (rvmx_caps.max_mem_slots).
pub(crate) const MAX_SLOTS: usize = 32;
/// The largest slot: 1 GiB (its page list is kvmalloc'ed, 16 bytes a page).
pub(crate) const MAX_SLOT_SIZE: u64 = 1 << 30;

/// Pages a chunk of [`PageMap`] tracks (256 KiB of guest memory).
const CHUNK: usize = 64;

/// Which pages of a slot are pinned (and mapped in the EPT): chunks of
/// `CHUNK` entries, allocated when the guest first touches them, so a big
/// slot costs little until it is used.
struct PageMap {
    chunks: KVec<Option<KBox<[Option<PinnedPage>; CHUNK]>>>,
}

impl PageMap {
    fn new(pages: usize) -> Result<Self> {
        let n = pages.div_ceil(CHUNK);
        let mut chunks = KVec::with_capacity(n, GFP_KERNEL)?;
        for _ in 0..n {
            chunks.push(None, GFP_KERNEL)?;
        }
        Ok(Self { chunks })
    }

    fn get(&self, i: usize) -> Option<&PinnedPage> {
        self.chunks.get(i / CHUNK)?.as_ref()?[i % CHUNK].as_ref()
    }

    fn set(&mut self, i: usize, page: PinnedPage) -> Result {
        let slot = self.chunks.get_mut(i / CHUNK).ok_or(EINVAL)?;
        let chunk = match slot {
            Some(c) => c,
            None => slot.insert(KBox::new([const { None }; CHUNK], GFP_KERNEL)?),
        };
        chunk[i % CHUNK] = Some(page);
        Ok(())
    }

    fn take(&mut self, i: usize) -> Option<PinnedPage> {
        self.chunks.get_mut(i / CHUNK)?.as_mut()?[i % CHUNK].take()
    }

    /// Indices of the pinned pages.
    fn pinned(&self) -> impl Iterator<Item = usize> + '_ {
        self.chunks.iter().enumerate().flat_map(|(c, chunk)| {
            chunk.iter().flat_map(move |ch| ch.iter().enumerate().filter(|(_, p)| p.is_some()).map(move |(i, _)| c * CHUNK + i))
        })
    }
}

/// One memory slot.
struct Slot {
    gpa: u64,
    size: u64,
    uaddr: u64,
    /// Mapped without write access: guest writes are emulated as MMIO.
    readonly: bool,
    pages: PageMap,
}

impl Slot {
    fn contains(&self, gpa: u64) -> bool {
        gpa >= self.gpa && gpa - self.gpa < self.size
    }

    fn npages(&self) -> usize {
        (self.size >> 12) as usize
    }
}

/// A VM's guest-physical memory.
pub(crate) struct Memory {
    ept: Ept<KernelTables>,
    eptp: u64,
    slots: KVec<Option<Slot>>,
}

/// Where an access landed.
pub(crate) enum Fault {
    /// Inside a slot: the page is mapped now.
    Mapped,
    /// Outside every slot (MMIO).
    Unmapped,
}

impl Memory {
    /// Empty memory with an empty EPT.
    pub(crate) fn new(ad: bool) -> Result<Self> {
        let ept = Ept::new(KernelTables::new()).ok_or(ENOMEM)?;
        let eptp = Eptp::new(ept.root(), ad).ok_or(EINVAL)?.0;
        let mut slots = KVec::with_capacity(MAX_SLOTS, GFP_KERNEL)?;
        for _ in 0..MAX_SLOTS {
            slots.push(None, GFP_KERNEL)?;
        }
        Ok(Self { ept, eptp, slots })
    }

    /// The EPT pointer for this VM's VMCSs.
    pub(crate) fn eptp(&self) -> u64 {
        self.eptp
    }

    /// RVMX_SET_MEMORY_REGION: checks everything, then deletes, replaces or
    /// adds the slot.
    pub(crate) fn set_region(&mut self, r: &uapi::rvmx_memory_region) -> Result {
        let slot = r.slot as usize;
        if slot >= MAX_SLOTS || r.flags & !uapi::RVMX_MEM_READONLY != 0 || r.reserved != [0; 2] {
            return Err(EINVAL);
        }
        let (gpa, size, uaddr) = (r.guest_phys_addr, r.memory_size, r.userspace_addr);
        if (gpa | size | uaddr) & 0xfff != 0 || size > MAX_SLOT_SIZE {
            return Err(EINVAL);
        }
        if size != 0 {
            let gpa_end = gpa.checked_add(size).ok_or(EINVAL)?;
            let u_end = uaddr.checked_add(size).ok_or(EINVAL)?;
            // User addresses stay below the canonical user limit.
            if gpa_end > GPA_LIMIT || u_end > (1 << 47) {
                return Err(EINVAL);
            }
            let overlaps = self.slots.iter().enumerate().any(|(i, s)| match s {
                Some(s) if i != slot => gpa < s.gpa + s.size && s.gpa < gpa_end,
                _ => false,
            });
            if overlaps {
                return Err(EEXIST);
            }
        }
        // Allocate before changing anything, so a failure leaves all as it was.
        let new = if size != 0 {
            let readonly = r.flags & uapi::RVMX_MEM_READONLY != 0;
            Some(Slot { gpa, size, uaddr, readonly, pages: PageMap::new((size >> 12) as usize)? })
        } else {
            None
        };
        if let Some(old) = self.slots[slot].take() {
            self.remove(old);
        }
        self.slots[slot] = new;
        Ok(())
    }

    /// Unmaps a slot's pages, invalidates every CPU's EPT TLB, then unpins.
    fn remove(&mut self, slot: Slot) {
        for i in slot.pages.pinned() {
            self.ept.unmap(slot.gpa + ((i as u64) << 12));
        }
        invept_everywhere(self.eptp);
        drop(slot);
    }

    /// Where `len` bytes at guest-physical `gpa` are in the creator's
    /// memory, if they are all in one slot (writable ones for `write`: a
    /// write to a read-only slot is the device's, MMIO).
    fn user_range(&self, gpa: u64, len: usize, write: bool) -> Option<u64> {
        let slot = self.slots.iter().flatten().find(|s| s.contains(gpa))?;
        if write && slot.readonly {
            return None;
        }
        let (uaddr, left) = (slot.uaddr + (gpa - slot.gpa), slot.size - (gpa - slot.gpa));
        (len as u64 <= left).then_some(uaddr)
    }

    /// An EPT violation at `gpa`: pins and maps the pages around it if it is
    /// inside a slot (a write to a read-only slot is MMIO). Runs in the VM
    /// creator's process (the run loop checks).
    pub(crate) fn fault(&mut self, gpa: u64, write: bool) -> Result<Fault> {
        let Some(slot) = self.slots.iter_mut().flatten().find(|s| s.contains(gpa)) else {
            return Ok(Fault::Unmapped);
        };
        if slot.readonly && write {
            return Ok(Fault::Unmapped);
        }
        let first = ((gpa - slot.gpa) >> 12) as usize;
        if slot.pages.get(first).is_some() {
            // Mapped meanwhile (another vCPU): nothing to do.
            return Ok(Fault::Mapped);
        }
        // Pin a batch: from the fault up to PIN_BATCH pages, within the slot,
        // stopping at pages pinned already.
        let mut n = 1;
        while n < PIN_BATCH && first + n < slot.npages() && slot.pages.get(first + n).is_none() {
            n += 1;
        }
        let uaddr = (slot.uaddr + ((first as u64) << 12)) as usize;
        let base = slot.gpa + ((first as u64) << 12);
        let perms = if slot.readonly { READ | EXEC } else { READ | WRITE | EXEC };
        let ept = &mut self.ept;
        let pages = &mut slot.pages;
        let mut err = None;
        PinnedPage::pin(uaddr, n, !slot.readonly, |i, page| {
            if err.is_some() {
                return; // `page` is unpinned here
            }
            // Recorded first, mapped second: a page that fails to map was
            // never visible to the guest and is simply unpinned.
            let phys = page.phys();
            if let Err(e) = pages.set(first + i, page) {
                err = Some(e);
            } else if let Err(e) = ept.map(base + ((i as u64) << 12), phys, perms) {
                drop(pages.take(first + i));
                err = Some(if e == MapError::NoMemory { ENOMEM } else { EIO });
            }
        })?;
        match err {
            None => Ok(Fault::Mapped),
            Some(e) => Err(e),
        }
    }
}

impl Drop for Memory {
    fn drop(&mut self) {
        // No vCPU runs (they hold the VM); drop cached translations on every
        // CPU before the pages and tables go back.
        invept_everywhere(self.eptp);
    }
}

/// Guest memory for emulation (string I/O, MMIO, page walks): the VM's
/// slots through the creator's mapping (RUN, and TRANSLATE, check that
/// they run in the creator's process). The slot is looked up under the
/// memory lock; the copy is made without it (it may fault and sleep: other
/// vCPUs must not wait behind it). A slot removed in between leaves a copy
/// from or to the caller's own memory, as it asked.
pub(crate) struct SlotMem<'a>(pub(crate) &'a Mutex<Memory>);

impl GuestMem for SlotMem<'_> {
    fn read(&mut self, gpa: u64, buf: &mut [u8]) -> bool {
        let Some(uaddr) = self.0.lock().user_range(gpa, buf.len(), false) else { return false };
        UserSlice::new(uaddr as UserPtr, buf.len()).reader().read_slice(buf).is_ok()
    }
    fn write(&mut self, gpa: u64, buf: &[u8]) -> bool {
        let Some(uaddr) = self.0.lock().user_range(gpa, buf.len(), true) else { return false };
        UserSlice::new(uaddr as UserPtr, buf.len()).writer().write_slice(buf).is_ok()
    }
}

/// INVEPT for `eptp` on every online CPU (single-context where the CPU has
/// it, else all-context; SDM Vol. 3C 29.4.3.1).
pub(crate) fn invept_everywhere(eptp: u64) {
    let single = crate::vmx::cpu::loaded_caps().map(|c| c.ept_vpid() & ept_vpid::INVEPT_SINGLE != 0).unwrap_or(false);
    let mut arg = (eptp, single);
    kapi::on_each_cpu(&mut arg, |(eptp, single)| {
        let r = if *single { insn::invept_single(*eptp) } else { insn::invept_all() };
        if r.is_err() {
            pr_err!("INVEPT failed\n");
        }
    });
}
