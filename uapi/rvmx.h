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

#endif /* _UAPI_RVMX_H */
