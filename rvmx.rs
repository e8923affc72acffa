// SPDX-License-Identifier: GPL-2.0
//! rvmx: a small Intel VMX hypervisor as a Linux kernel module.
//!
//! Loading checks that the CPU can do VMX and registers `/dev/rvmx`;
//! unloading undoes it. Where each concern lives:
//! - `uapi/`: the ABI header and its generated Rust view;
//! - `kapi/`: kernel C APIs that the 6.12 `kernel` crate lacks;
//! - `dev/`: the `/dev/rvmx` file and its ioctl table;
//! - `vmx/`: the CPU side (capability checks, VMX instructions);
//! - `vmcs/`, `ept/`: VMCS field encodings and EPT formats (pure logic,
//!   also tested on the host with `cargo test`).

use kernel::prelude::*;

mod dev;
mod ept;
mod kapi;
mod uapi;
mod vmcs;
mod vmx;

module! {
    type: Rvmx,
    name: "rvmx",
    author: "rvmx developers",
    description: "Intel VMX hypervisor (bhyve-style run loop, EPT)",
    license: "GPL",
}

struct Rvmx {
    _dev: kapi::MiscDevice,
}

impl kernel::Module for Rvmx {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        vmx::check_cpu()?;
        let dev = dev::register()?;
        pr_info!("loaded, /dev/rvmx ready (API {})\n", uapi::RVMX_API_VERSION);
        Ok(Rvmx { _dev: dev })
    }
}

impl Drop for Rvmx {
    fn drop(&mut self) {
        pr_info!("unloaded\n");
    }
}
