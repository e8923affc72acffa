// SPDX-License-Identifier: GPL-2.0
//! rvmx: a small Intel VMX hypervisor as a Linux kernel module.
//!
//! Loading checks the CPU, turns VMX on in every online CPU and registers
//! `/dev/rvmx`; unloading undoes it. Where each concern lives:
//! - `uapi/`: the ABI header and its generated Rust view;
//! - `kapi/`: kernel C APIs that the 6.12 `kernel` crate lacks;
//! - `dev/`: the `/dev/rvmx` file and its ioctl table;
//! - `vm/`: VMs, vCPUs and guest memory, and their file descriptors;
//! - `vmx/`: the CPU side (capabilities, VMX on/off per CPU, instructions,
//!   the entry/exit stub, the run loop and the exit handlers);
//! - `vmcs/`, `ept/`: the VMCS (typed fields, defaults) and the EPT;
//! - `x86/`: architectural bits and MSR numbers.
//!
//! Pure logic (no `kernel` crate) is also built on the host by `hosttest/`.

use kernel::prelude::*;

mod dev;
mod ept;
mod kapi;
mod uapi;
mod vm;
mod vmcs;
mod vmx;
#[allow(unreachable_pub)] // pure: `pub` for the host crate (hosttest/)
mod x86;

module! {
    type: Rvmx,
    name: "rvmx",
    author: "rvmx developers",
    description: "Intel VMX hypervisor (bhyve-style run loop, EPT)",
    license: "GPL",
}

// Fields drop in order: the device goes first (no file is open then: each
// open file pins the module), VMX is turned off last.
struct Rvmx {
    _dev: kapi::MiscDevice,
    _vmx: vmx::cpu::VmxCpus,
}

impl kernel::Module for Rvmx {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let caps = vmx::check_cpu()?;
        let vmx = vmx::cpu::VmxCpus::enable(caps)?;
        let dev = dev::register()?;
        pr_info!("loaded: VMX on in every online CPU, /dev/rvmx ready (API {})\n", uapi::RVMX_API_VERSION);
        Ok(Rvmx { _dev: dev, _vmx: vmx })
    }
}

impl Drop for Rvmx {
    fn drop(&mut self) {
        pr_info!("unloading\n");
    }
}
