// SPDX-License-Identifier: GPL-2.0
//! Extended page tables: formats and the table tree (pure, host-tested).

#[allow(dead_code, unreachable_pub)]
pub(crate) mod entry;
#[allow(dead_code, unreachable_pub)]
pub(crate) mod table;
