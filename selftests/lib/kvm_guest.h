/* SPDX-License-Identifier: GPL-2.0 */
#ifndef RVMX_SELFTEST_KVM_GUEST_H
#define RVMX_SELFTEST_KVM_GUEST_H
/* Runs a real-mode guest under KVM ("mov al, 0x42; out 0x10, al; hlt") and
 * checks both exits. Returns 0, or -errno / a positive line number of the
 * check that failed. Proves kvm_intel is alive and running guests. */
int kvm_run_tiny_guest(void);
#endif
