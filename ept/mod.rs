// SPDX-License-Identifier: GPL-2.0
//! Extended page tables: formats and the table tree (pure, host-tested),
//! and the pages the tree lives in (`pages`, kernel-bound).

#[allow(unreachable_pub)] // pure: `pub` for the host crate (hosttest/)
pub(crate) mod entry;
pub(crate) mod pages;
#[allow(unreachable_pub)] // pure: `pub` for the host crate (hosttest/)
pub(crate) mod table;
