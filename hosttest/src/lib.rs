//! The module's pure-logic files, compiled unchanged for the host. Each
//! `#[path]` names the file the kernel module builds too (there is one
//! copy), in the same module tree, so `crate::...` paths mean the same in
//! both builds. Nothing here may use unsafe: a pure file is pure.
#![forbid(unsafe_code)]

#[path = "../../x86/mod.rs"]
pub mod x86;

/// `vmcs/`: field encodings, typed access, the reset state.
#[path = "../../vmcs"]
pub mod vmcs {
    pub mod field;
    pub mod reset;
}

/// `ept/`: entry formats and the table tree.
#[path = "../../ept"]
pub mod ept {
    pub mod entry;
    pub mod table;
}

/// `vmx/`: capabilities, CPUID policy, entry checks, exit decoding and
/// handlers, registers.
#[path = "../../vmx"]
pub mod vmx {
    pub mod caps;
    pub mod cpuid;
    pub mod entry_check;
    pub mod exit;
    pub mod exit_info;
    pub mod mitigation;
    pub mod msr;
    pub mod regs;
}
