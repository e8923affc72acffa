/* SPDX-License-Identifier: GPL-2.0 */
/* Helpers shared by the rvmx selftests: module load/unload, dmesg, CPU flags. */
#ifndef RVMX_SELFTEST_UTIL_H
#define RVMX_SELFTEST_UTIL_H

#include <stdbool.h>
#include <stddef.h>

/* Where the emulated host's initramfs puts the modules. */
#define RVMX_KO		"/modules/rvmx.ko"
#define KVM_KO		"/modules/kvm.ko"
#define KVM_INTEL_KO	"/modules/kvm-intel.ko"

/* finit_module(path); returns 0 or -errno. */
int module_load(const char *path, const char *params);
/* delete_module(name); returns 0 or -errno. */
int module_unload(const char *name);
/* Whether a module of that name is loaded (/proc/modules). */
bool module_loaded(const char *name);
/* Loads rvmx unless it is loaded already; 0 or -errno. */
int rvmx_ensure_loaded(void);

/* Reads the whole kernel log into buf (NUL-terminated); length or -errno. */
int dmesg_read(char *buf, size_t size);
/* Clears the kernel log, so a test can look only at what it caused. */
int dmesg_clear(void);
/* Whether the kernel log contains s. */
bool dmesg_contains(const char *s);
/* The first line of the log with a warning, BUG, oops or panic, or NULL. */
const char *dmesg_first_problem(char *buf, size_t size);

/* Whether /proc/cpuinfo's flags line lists flag (e.g. "vmx"). */
bool cpu_has_flag(const char *flag);

#endif
