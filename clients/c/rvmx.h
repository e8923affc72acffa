/* SPDX-License-Identifier: LGPL-2.1 OR MIT */
/*
 * librvmx: a thin C library over /dev/rvmx (uapi/rvmx.h). Every function
 * returns 0 (or an fd) on success and -errno on failure.
 */
#ifndef LIBRVMX_H
#define LIBRVMX_H

#include <stddef.h>
#include <stdint.h>
#include "../../uapi/rvmx.h"

struct rvmx_vm {
	int fd;
};

struct rvmx_vcpu {
	int fd;
	struct rvmx_run *run;	/* the shared exit record */
};

/* Opens /dev/rvmx and checks the API version. */
int rvmx_open(void);
int rvmx_get_caps(int sys_fd, struct rvmx_caps *caps);
int rvmx_create_vm(int sys_fd, struct rvmx_vm *vm);
/* Maps `size` bytes at `host` to guest-physical `gpa` in `slot`. */
int rvmx_set_memory(struct rvmx_vm *vm, uint32_t slot, uint64_t gpa, void *host, uint64_t size);
int rvmx_create_vcpu(struct rvmx_vm *vm, uint32_t id, struct rvmx_vcpu *vcpu);
/* Runs until an exit for userland (see vcpu->run), or a signal (-EINTR). */
int rvmx_run(struct rvmx_vcpu *vcpu);
int rvmx_get_regs(struct rvmx_vcpu *vcpu, struct rvmx_regs *regs);
int rvmx_set_regs(struct rvmx_vcpu *vcpu, const struct rvmx_regs *regs);
int rvmx_get_sregs(struct rvmx_vcpu *vcpu, struct rvmx_sregs *sregs);
int rvmx_set_sregs(struct rvmx_vcpu *vcpu, const struct rvmx_sregs *sregs);
/* Queues an exception, NMI or interrupt for the guest. */
int rvmx_inject(struct rvmx_vcpu *vcpu, const struct rvmx_event *event);
int rvmx_get_events(struct rvmx_vcpu *vcpu, struct rvmx_events *events);
int rvmx_set_events(struct rvmx_vcpu *vcpu, const struct rvmx_events *events);
int rvmx_get_debugregs(struct rvmx_vcpu *vcpu, struct rvmx_debugregs *d);
int rvmx_set_debugregs(struct rvmx_vcpu *vcpu, const struct rvmx_debugregs *d);
/* Per-vCPU capabilities: RVMX_VCPU_CAP_*. */
int rvmx_get_cap(struct rvmx_vcpu *vcpu, uint32_t cap, uint32_t *value);
int rvmx_set_cap(struct rvmx_vcpu *vcpu, uint32_t cap, uint32_t value);
/* MSRs: `n` entries; returns how many were done (it stops at one rvmx
 * refuses) or -errno. */
int rvmx_get_msrs(struct rvmx_vcpu *vcpu, struct rvmx_msr_entry *entries, uint32_t n);
int rvmx_set_msrs(struct rvmx_vcpu *vcpu, const struct rvmx_msr_entry *entries, uint32_t n);
/* One MSR: 0 or -EINVAL if rvmx refuses it. */
int rvmx_get_msr(struct rvmx_vcpu *vcpu, uint32_t index, uint64_t *value);
int rvmx_set_msr(struct rvmx_vcpu *vcpu, uint32_t index, uint64_t value);
/* The MSRs to save and restore (/dev/rvmx): up to *n indices; *n becomes
 * how many there are (-E2BIG if more than asked). */
int rvmx_get_msr_list(int sys_fd, uint32_t *indices, uint32_t *n);
int rvmx_set_msr_filter(struct rvmx_vm *vm, const struct rvmx_msr_filter *filter);
/* CPUID tables: up to *n entries; *n becomes the table's size (-E2BIG if
 * more than asked). */
int rvmx_get_supported_cpuid(int sys_fd, struct rvmx_cpuid_entry *entries, uint32_t *n);
int rvmx_get_cpuid(struct rvmx_vcpu *vcpu, struct rvmx_cpuid_entry *entries, uint32_t *n);
int rvmx_set_cpuid(struct rvmx_vcpu *vcpu, const struct rvmx_cpuid_entry *entries, uint32_t n);
void rvmx_vcpu_close(struct rvmx_vcpu *vcpu);
void rvmx_vm_close(struct rvmx_vm *vm);
/* A readable name for an exit reason. */
const char *rvmx_exit_name(uint32_t exit_reason);

#endif
