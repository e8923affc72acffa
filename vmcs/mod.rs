// SPDX-License-Identifier: GPL-2.0
//! The VMCS: field encodings (pure, host-tested) and, later, per-vCPU
//! defaults and typed accessors.

#[allow(dead_code, unreachable_pub)]
pub(crate) mod field;
