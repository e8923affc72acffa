//! The module's pure-logic files, compiled unchanged for the host. Each
//! `#[path]` names the file the kernel module builds too: there is one copy.

#[path = "../../vmcs/field.rs"]
pub mod vmcs_field;

#[path = "../../ept/entry.rs"]
pub mod ept_entry;

#[path = "../../vmx/caps.rs"]
pub mod vmx_caps;

#[path = "../../vmx/exit_info.rs"]
pub mod vmx_exit_info;

#[path = "../../vmx/cpuid.rs"]
pub mod vmx_cpuid;

/// `ept/table.rs` refers to its sibling as `super::entry`.
#[path = "../../ept"]
pub mod ept {
    pub use super::ept_entry as entry;
    pub mod table;
}

#[path = "../../vmx/entry_check.rs"]
pub mod vmx_entry_check;
