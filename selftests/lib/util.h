/* SPDX-License-Identifier: GPL-2.0 */
/* Helpers shared by the rvmx selftests: module load/unload, dmesg, CPU flags. */
#ifndef RVMX_SELFTEST_UTIL_H
#define RVMX_SELFTEST_UTIL_H

#include <stdbool.h>
#include <stddef.h>

/* Where the emulated host's initramfs puts the modules. */
#define RVMX_KO		"/modules/rvmx.ko"
#define IRQBYPASS_KO	"/modules/irqbypass.ko"
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
/* Writes a unique mark into the kernel log; later calls of
 * dmesg_contains() look only at what follows the latest mark. */
int dmesg_mark(void);
/* Whether the kernel log after the latest mark contains s. */
bool dmesg_contains(const char *s);
/* The first line with a warning, BUG, oops or panic in the kernel log after
 * `after` (a string in the log, e.g. the init's "tests start" mark), or NULL. */
const char *dmesg_first_problem(char *buf, size_t size, const char *after);

/* Whether /proc/cpuinfo's flags line lists flag (e.g. "vmx"). */
bool cpu_has_flag(const char *flag);


#include "../../uapi/rvmx.h"
/* RVMX_GET_CPU_STATUS on a fresh /dev/rvmx fd; 0 or -errno. */
int rvmx_cpu_status(struct rvmx_cpu_status *st);
/* Writes "0"/"1" to /sys/devices/system/cpu/cpuN/online; 0 or -errno. */
int cpu_set_online(int cpu, bool online);
/* Loads kvm and kvm_intel; 0 or the -errno of the one that failed. */
int kvm_load(void);
/* Unloads kvm_intel and kvm. */
void kvm_unload(void);
/* Whether the "vmx flags" line of /proc/cpuinfo lists flag. */
bool cpu_has_vmx_flag(const char *flag);

#endif
