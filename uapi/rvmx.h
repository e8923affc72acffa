/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * rvmx: the userland ABI. This header is the single source of the ABI: the
 * module's Rust view is generated from it by bindgen, and C and Rust clients
 * use it as is.
 *
 * Rules for every struct: fixed-size types only, explicit padding, and
 * reserved fields that the caller must zero (else -EINVAL), so the ABI can
 * grow without new ioctl numbers.
 */
#ifndef _UAPI_RVMX_H
#define _UAPI_RVMX_H

#include <linux/types.h>
#include <linux/ioctl.h>

#define RVMX_API_VERSION 1

/* ioctl type byte; 0xBA is free in Documentation/userspace-api/ioctl/ioctl-number.rst */
#define RVMX_IOC 0xBA

/* ---- /dev/rvmx (system fd) ---- */

struct rvmx_version {
	__u32 api;		/* RVMX_API_VERSION */
	__u32 reserved;		/* written as zero */
};

#define RVMX_GET_VERSION	_IOR(RVMX_IOC, 0x00, struct rvmx_version)

/* What the hardware and rvmx support: check before use. */
struct rvmx_caps {
	__u64 flags;			/* RVMX_CAP_* */
	__u32 max_vcpus;		/* per VM */
	__u32 max_mem_slots;		/* per VM */
	__u32 vmcs_revision;		/* IA32_VMX_BASIC[30:0] */
	__u32 preemption_timer_shift;	/* timer ticks every 2^n TSC cycles */
	__u64 vmx_basic;		/* raw IA32_VMX_BASIC */
	__u64 ept_vpid_cap;		/* raw IA32_VMX_EPT_VPID_CAP */
	__u64 reserved[10];		/* zero */
};

#define RVMX_CAP_EPT			(1ULL << 0)
#define RVMX_CAP_VPID			(1ULL << 1)
#define RVMX_CAP_UNRESTRICTED_GUEST	(1ULL << 2)
#define RVMX_CAP_PREEMPTION_TIMER	(1ULL << 3)
#define RVMX_CAP_VIRTUAL_NMI		(1ULL << 4)
#define RVMX_CAP_EPT_AD			(1ULL << 5)
#define RVMX_CAP_EPT_2M			(1ULL << 6)
#define RVMX_CAP_EPT_1G			(1ULL << 7)
#define RVMX_CAP_EPT_EXEC_ONLY		(1ULL << 8)
#define RVMX_CAP_INVVPID		(1ULL << 9)
#define RVMX_CAP_PML			(1ULL << 10)

#define RVMX_GET_CAPS		_IOR(RVMX_IOC, 0x01, struct rvmx_caps)

/* Which CPUs are online and which are in VMX operation right now (read
 * from CR4.VMXE on each CPU). Bit n is CPU n; CPUs >= 64 are not shown. */
struct rvmx_cpu_status {
	__u64 online;
	__u64 vmx_on;
	__u32 nr_cpu_ids;
	__u32 reserved;
};

#define RVMX_GET_CPU_STATUS	_IOR(RVMX_IOC, 0x02, struct rvmx_cpu_status)

#endif /* _UAPI_RVMX_H */
