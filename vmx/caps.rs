// SPDX-License-Identifier: GPL-2.0
//! VMX capabilities (pure logic: no `kernel` crate, no unsafe): decoding the
//! capability MSRs, adjusting control fields to what the CPU allows, and the
//! minimum that rvmx needs. SDM Vol. 3D Appendix A.

/// IA32_VMX_BASIC and the other capability MSRs (SDM Vol. 4, Table 2-2).
pub mod msr {
    /// IA32_VMX_BASIC.
    pub const BASIC: u32 = 0x480;
    /// IA32_VMX_PINBASED_CTLS.
    pub const PINBASED: u32 = 0x481;
    /// IA32_VMX_PROCBASED_CTLS.
    pub const PROCBASED: u32 = 0x482;
    /// IA32_VMX_EXIT_CTLS.
    pub const EXIT: u32 = 0x483;
    /// IA32_VMX_ENTRY_CTLS.
    pub const ENTRY: u32 = 0x484;
    /// IA32_VMX_MISC.
    pub const MISC: u32 = 0x485;
    /// IA32_VMX_CR0_FIXED0.
    pub const CR0_FIXED0: u32 = 0x486;
    /// IA32_VMX_CR0_FIXED1.
    pub const CR0_FIXED1: u32 = 0x487;
    /// IA32_VMX_CR4_FIXED0.
    pub const CR4_FIXED0: u32 = 0x488;
    /// IA32_VMX_CR4_FIXED1.
    pub const CR4_FIXED1: u32 = 0x489;
    /// IA32_VMX_PROCBASED_CTLS2 (exists if PROCBASED allows bit 31 = 1).
    pub const PROCBASED2: u32 = 0x48b;
    /// IA32_VMX_EPT_VPID_CAP (exists if PROCBASED2 allows EPT or VPID).
    pub const EPT_VPID_CAP: u32 = 0x48c;
    /// IA32_VMX_TRUE_PINBASED_CTLS (exists if BASIC bit 55 = 1).
    pub const TRUE_PINBASED: u32 = 0x48d;
    /// IA32_VMX_TRUE_PROCBASED_CTLS.
    pub const TRUE_PROCBASED: u32 = 0x48e;
    /// IA32_VMX_TRUE_EXIT_CTLS.
    pub const TRUE_EXIT: u32 = 0x48f;
    /// IA32_VMX_TRUE_ENTRY_CTLS.
    pub const TRUE_ENTRY: u32 = 0x490;
}

/// Pin-based VM-execution controls (SDM Vol. 3C 25.6.1).
pub mod pin {
    /// External-interrupt exiting.
    pub const EXT_INTR: u32 = 1 << 0;
    /// NMI exiting.
    pub const NMI: u32 = 1 << 3;
    /// Virtual NMIs.
    pub const VIRTUAL_NMI: u32 = 1 << 5;
    /// Activate VMX-preemption timer.
    pub const PREEMPTION_TIMER: u32 = 1 << 6;
    /// Process posted interrupts.
    pub const POSTED_INTR: u32 = 1 << 7;
}

/// Primary processor-based VM-execution controls (SDM Vol. 3C 25.6.2).
pub mod proc {
    /// Interrupt-window exiting.
    pub const IRQ_WINDOW: u32 = 1 << 2;
    /// Use TSC offsetting (RDTSC, RDTSCP and RDMSR of IA32_TSC add TSC_OFFSET).
    pub const TSC_OFFSETTING: u32 = 1 << 3;
    /// HLT exiting.
    pub const HLT: u32 = 1 << 7;
    /// MWAIT exiting.
    pub const MWAIT: u32 = 1 << 10;
    /// RDPMC exiting.
    pub const RDPMC: u32 = 1 << 11;
    /// CR8-load exiting.
    pub const CR8_LOAD: u32 = 1 << 19;
    /// CR8-store exiting.
    pub const CR8_STORE: u32 = 1 << 20;
    /// Use TPR shadow.
    pub const TPR_SHADOW: u32 = 1 << 21;
    /// NMI-window exiting (needs virtual NMIs).
    pub const NMI_WINDOW: u32 = 1 << 22;
    /// MOV-DR exiting.
    pub const MOV_DR: u32 = 1 << 23;
    /// Unconditional I/O exiting.
    pub const UNCOND_IO: u32 = 1 << 24;
    /// Use I/O bitmaps.
    pub const IO_BITMAPS: u32 = 1 << 25;
    /// Monitor trap flag.
    pub const MTF: u32 = 1 << 27;
    /// Use MSR bitmaps (else every RDMSR and WRMSR exits).
    pub const MSR_BITMAP: u32 = 1 << 28;
    /// MONITOR exiting.
    pub const MONITOR: u32 = 1 << 29;
    /// PAUSE exiting.
    pub const PAUSE: u32 = 1 << 30;
    /// Activate secondary controls.
    pub const SECONDARY: u32 = 1 << 31;
}

/// Secondary processor-based VM-execution controls (SDM Vol. 3C 25.6.2).
pub mod proc2 {
    /// Virtualize APIC accesses.
    pub const APIC_ACCESS: u32 = 1 << 0;
    /// Enable EPT.
    pub const EPT: u32 = 1 << 1;
    /// Virtualize x2APIC mode.
    pub const X2APIC: u32 = 1 << 4;
    /// Enable VPID.
    pub const VPID: u32 = 1 << 5;
    /// WBINVD exiting.
    pub const WBINVD: u32 = 1 << 6;
    /// Unrestricted guest.
    pub const UNRESTRICTED_GUEST: u32 = 1 << 7;
    /// APIC-register virtualization.
    pub const APIC_REGISTER: u32 = 1 << 8;
    /// Virtual-interrupt delivery.
    pub const VINTR_DELIVERY: u32 = 1 << 9;
    /// Enable INVPCID (else INVPCID raises #UD).
    pub const INVPCID: u32 = 1 << 12;
    /// VMCS shadowing.
    pub const SHADOW_VMCS: u32 = 1 << 14;
    /// Enable PML.
    pub const PML: u32 = 1 << 17;
    /// EPT-violation #VE.
    pub const EPT_VE: u32 = 1 << 18;
    /// Mode-based execute control for EPT.
    pub const MODE_BASED_EPT: u32 = 1 << 22;
    /// Sub-page write permissions for EPT.
    pub const SPP: u32 = 1 << 23;
}

/// Primary VM-exit controls (SDM Vol. 3C 25.7.1).
pub mod exit {
    /// Save debug controls (DR7, IA32_DEBUGCTL).
    pub const SAVE_DEBUG: u32 = 1 << 2;
    /// Host address-space size (64-bit host).
    pub const HOST_64: u32 = 1 << 9;
    /// Acknowledge interrupt on exit.
    pub const ACK_INTR: u32 = 1 << 15;
    /// Save IA32_PAT.
    pub const SAVE_PAT: u32 = 1 << 18;
    /// Load IA32_PAT.
    pub const LOAD_PAT: u32 = 1 << 19;
    /// Save IA32_EFER.
    pub const SAVE_EFER: u32 = 1 << 20;
    /// Load IA32_EFER.
    pub const LOAD_EFER: u32 = 1 << 21;
    /// Save VMX-preemption timer value.
    pub const SAVE_PREEMPTION_TIMER: u32 = 1 << 22;
}

/// VM-entry controls (SDM Vol. 3C 25.8.1).
pub mod entry {
    /// Load debug controls (DR7, IA32_DEBUGCTL).
    pub const LOAD_DEBUG: u32 = 1 << 2;
    /// IA-32e mode guest.
    pub const IA32E_GUEST: u32 = 1 << 9;
    /// Entry to SMM.
    pub const SMM: u32 = 1 << 10;
    /// Deactivate dual-monitor treatment.
    pub const DEACTIVATE_DUAL_MONITOR: u32 = 1 << 11;
    /// Load IA32_PAT.
    pub const LOAD_PAT: u32 = 1 << 14;
    /// Load IA32_EFER.
    pub const LOAD_EFER: u32 = 1 << 15;
}

/// IA32_VMX_EPT_VPID_CAP bits (SDM Vol. 3D A.10).
pub mod ept_vpid {
    /// Execute-only EPT translations.
    pub const EXEC_ONLY: u64 = 1 << 0;
    /// Page-walk length of 4.
    pub const WALK_4: u64 = 1 << 6;
    /// Page-walk length of 5.
    pub const WALK_5: u64 = 1 << 7;
    /// EPT paging structures may be uncacheable.
    pub const MEMTYPE_UC: u64 = 1 << 8;
    /// EPT paging structures may be write-back.
    pub const MEMTYPE_WB: u64 = 1 << 14;
    /// 2-MiB EPT pages.
    pub const PAGE_2M: u64 = 1 << 16;
    /// 1-GiB EPT pages.
    pub const PAGE_1G: u64 = 1 << 17;
    /// INVEPT.
    pub const INVEPT: u64 = 1 << 20;
    /// Accessed and dirty flags for EPT.
    pub const AD: u64 = 1 << 21;
    /// INVEPT single-context.
    pub const INVEPT_SINGLE: u64 = 1 << 25;
    /// INVEPT all-context.
    pub const INVEPT_ALL: u64 = 1 << 26;
    /// INVVPID.
    pub const INVVPID: u64 = 1 << 32;
    /// INVVPID single-context.
    pub const INVVPID_SINGLE: u64 = 1 << 41;
    /// INVVPID all-context.
    pub const INVVPID_ALL: u64 = 1 << 42;
}

/// A control capability MSR: bits 31:0 are the allowed 0-settings (a 1 means
/// the control must be 1), bits 63:32 the allowed 1-settings (a 0 means the
/// control must be 0). SDM Vol. 3D A.3.1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Allowed {
    /// Controls that must be 1.
    pub must_be_1: u32,
    /// Controls that may be 1.
    pub may_be_1: u32,
}

impl Allowed {
    /// Splits the raw MSR value.
    pub const fn from_msr(v: u64) -> Allowed {
        Allowed { must_be_1: v as u32, may_be_1: (v >> 32) as u32 }
    }

    /// Whether every control in `bits` may be 1.
    pub const fn allows(self, bits: u32) -> bool {
        bits & !self.may_be_1 == 0
    }

    /// The control value for the wanted `required` and `optional` bits: all
    /// the required ones, the optional ones the CPU allows, and every bit
    /// the CPU insists on. `Err` carries the required bits it cannot set.
    pub const fn adjust(self, required: u32, optional: u32) -> Result<u32, u32> {
        let missing = required & !self.may_be_1;
        if missing != 0 {
            return Err(missing);
        }
        Ok(((required | optional) & self.may_be_1) | self.must_be_1)
    }
}

/// IA32_VMX_BASIC, decoded (SDM Vol. 3D A.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Basic(pub u64);

impl Basic {
    /// VMCS revision identifier (bits 30:0).
    pub const fn revision(self) -> u32 {
        (self.0 & 0x7fff_ffff) as u32
    }
    /// Bytes to allocate for the VMXON region and each VMCS (bits 44:32).
    pub const fn region_size(self) -> u32 {
        ((self.0 >> 32) & 0x1fff) as u32
    }
    /// Bit 48: regions must lie below 4 GiB.
    pub const fn addr_32bit(self) -> bool {
        self.0 & (1 << 48) != 0
    }
    /// Memory type for the VMCS and related structures (bits 53:50).
    pub const fn memtype(self) -> u32 {
        ((self.0 >> 50) & 0xf) as u32
    }
    /// Bit 55: the TRUE_ control MSRs exist and give the allowed 0-settings
    /// of the "default1" controls (SDM Vol. 3D A.2).
    pub const fn true_ctls(self) -> bool {
        self.0 & (1 << 55) != 0
    }
}

/// The raw values of every capability MSR rvmx reads. MSRs that do not
/// exist on the CPU are zero (which allows nothing).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RawCaps {
    /// IA32_VMX_BASIC.
    pub basic: u64,
    /// IA32_VMX_PINBASED_CTLS.
    pub pin: u64,
    /// IA32_VMX_PROCBASED_CTLS.
    pub proc: u64,
    /// IA32_VMX_PROCBASED_CTLS2, or 0.
    pub proc2: u64,
    /// IA32_VMX_EXIT_CTLS.
    pub exit: u64,
    /// IA32_VMX_ENTRY_CTLS.
    pub entry: u64,
    /// The TRUE_ variants (0 where BASIC bit 55 is clear).
    pub true_pin: u64,
    /// IA32_VMX_TRUE_PROCBASED_CTLS.
    pub true_proc: u64,
    /// IA32_VMX_TRUE_EXIT_CTLS.
    pub true_exit: u64,
    /// IA32_VMX_TRUE_ENTRY_CTLS.
    pub true_entry: u64,
    /// IA32_VMX_MISC.
    pub misc: u64,
    /// IA32_VMX_CR0_FIXED0.
    pub cr0_fixed0: u64,
    /// IA32_VMX_CR0_FIXED1.
    pub cr0_fixed1: u64,
    /// IA32_VMX_CR4_FIXED0.
    pub cr4_fixed0: u64,
    /// IA32_VMX_CR4_FIXED1.
    pub cr4_fixed1: u64,
    /// IA32_VMX_EPT_VPID_CAP, or 0.
    pub ept_vpid: u64,
}

/// Which optional MSRs a CPU has, given the ones read so far: the caller
/// reads BASIC and PROCBASED first, then asks.
pub const fn has_true_msrs(basic: u64) -> bool {
    Basic(basic).true_ctls()
}
/// PROCBASED2 exists if "activate secondary controls" may be 1.
pub const fn has_proc2(proc: u64) -> bool {
    Allowed::from_msr(proc).allows(proc::SECONDARY)
}
/// EPT_VPID_CAP exists if EPT or VPID may be enabled (SDM Vol. 3D A.10).
pub const fn has_ept_vpid_cap(proc2: u64) -> bool {
    let a = Allowed::from_msr(proc2);
    a.allows(proc2::EPT) || a.allows(proc2::VPID)
}

impl RawCaps {
    /// The MSR that decides pin-based controls (the TRUE_ one if it exists).
    pub const fn pin(&self) -> Allowed {
        Allowed::from_msr(if has_true_msrs(self.basic) { self.true_pin } else { self.pin })
    }
    /// Primary processor-based controls.
    pub const fn proc(&self) -> Allowed {
        Allowed::from_msr(if has_true_msrs(self.basic) { self.true_proc } else { self.proc })
    }
    /// Secondary processor-based controls (none if the primary cannot
    /// activate them).
    pub const fn proc2(&self) -> Allowed {
        if self.proc().allows(proc::SECONDARY) {
            Allowed::from_msr(self.proc2)
        } else {
            Allowed { must_be_1: 0, may_be_1: 0 }
        }
    }
    /// VM-exit controls.
    pub const fn exit(&self) -> Allowed {
        Allowed::from_msr(if has_true_msrs(self.basic) { self.true_exit } else { self.exit })
    }
    /// VM-entry controls.
    pub const fn entry(&self) -> Allowed {
        Allowed::from_msr(if has_true_msrs(self.basic) { self.true_entry } else { self.entry })
    }
    /// EPT/VPID capabilities, zero when the secondary controls allow neither.
    pub const fn ept_vpid(&self) -> u64 {
        if self.proc2().allows(proc2::EPT) || self.proc2().allows(proc2::VPID) {
            self.ept_vpid
        } else {
            0
        }
    }
    /// VMX-preemption timer rate: it counts down every 2^n TSC ticks
    /// (IA32_VMX_MISC bits 4:0; SDM Vol. 3D A.6).
    pub const fn preemption_timer_shift(&self) -> u32 {
        (self.misc & 0x1f) as u32
    }

    /// Whether the CPU has everything rvmx needs, and if not the name of
    /// each missing feature (`None` entries past the end).
    pub fn missing(&self) -> Missing {
        let mut m = Missing { names: [None; 17], count: 0 };
        let b = Basic(self.basic);
        let ev = self.ept_vpid();
        let checks: [(&'static str, bool); 17] = [
            ("VMCS in write-back memory", b.memtype() == 6),
            ("VMX structures anywhere in physical memory", !b.addr_32bit()),
            ("VMCS size <= 4096", b.region_size() != 0 && b.region_size() <= 4096),
            ("external-interrupt exiting", self.pin().allows(pin::EXT_INTR)),
            ("NMI exiting", self.pin().allows(pin::NMI)),
            ("HLT exiting", self.proc().allows(proc::HLT)),
            ("unconditional I/O exiting", self.proc().allows(proc::UNCOND_IO)),
            ("secondary controls", self.proc().allows(proc::SECONDARY)),
            ("EPT", self.proc2().allows(proc2::EPT)),
            ("VPID", self.proc2().allows(proc2::VPID)),
            ("unrestricted guest", self.proc2().allows(proc2::UNRESTRICTED_GUEST)),
            ("64-bit host", self.exit().allows(exit::HOST_64)),
            ("load/save debug controls", self.exit().allows(exit::SAVE_DEBUG) && self.entry().allows(entry::LOAD_DEBUG)),
            ("load/save IA32_EFER and IA32_PAT", self.exit().allows(exit::LOAD_EFER | exit::SAVE_EFER | exit::LOAD_PAT)
                && self.entry().allows(entry::LOAD_EFER | entry::LOAD_PAT)),
            ("4-level write-back EPT", ev & ept_vpid::WALK_4 != 0 && ev & ept_vpid::MEMTYPE_WB != 0),
            ("INVEPT (single or all context)", ev & ept_vpid::INVEPT != 0
                && ev & (ept_vpid::INVEPT_SINGLE | ept_vpid::INVEPT_ALL) != 0),
            ("INVVPID (single or all context)", ev & ept_vpid::INVVPID != 0
                && ev & (ept_vpid::INVVPID_SINGLE | ept_vpid::INVVPID_ALL) != 0),
        ];
        for (name, ok) in checks {
            if !ok {
                m.names[m.count] = Some(name);
                m.count += 1;
            }
        }
        m
    }
}

/// The features a CPU lacks, in the order [`RawCaps::missing`] checks them.
#[derive(Clone, Copy, Debug)]
pub struct Missing {
    names: [Option<&'static str>; 17],
    count: usize,
}

impl Missing {
    /// Whether nothing is missing.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
    /// The missing features' names.
    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.names[..self.count].iter().flatten().copied()
    }
}

/// Whether `value` satisfies a CR0/CR4 fixed-bit pair: every bit set in
/// FIXED0 is set, every bit clear in FIXED1 is clear (SDM Vol. 3D A.7, A.8).
pub const fn cr_ok(value: u64, fixed0: u64, fixed1: u64) -> bool {
    value & fixed0 == fixed0 && value & !fixed1 == 0
}
