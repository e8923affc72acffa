//! The module's pure-logic files, compiled unchanged for the host. Each
//! `#[path]` names the file the kernel module builds too: there is one copy.

#[path = "../../vmcs/field.rs"]
pub mod vmcs_field;

#[path = "../../ept/entry.rs"]
pub mod ept_entry;
