// SPDX-License-Identifier: GPL-2.0
//! Extended page tables: formats (pure, host-tested) and, later, the table
//! builder and invalidation.

#[allow(dead_code, unreachable_pub)]
pub(crate) mod entry;
