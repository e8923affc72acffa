// SPDX-License-Identifier: GPL-2.0
#define _GNU_SOURCE
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/klog.h>
#include <sys/syscall.h>
#include <unistd.h>

int module_load(const char *path, const char *params)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int ret;

	if (fd < 0)
		return -errno;
	ret = syscall(SYS_finit_module, fd, params ? params : "", 0) ? -errno : 0;
	close(fd);
	return ret;
}

int module_unload(const char *name)
{
	return syscall(SYS_delete_module, name, O_NONBLOCK) ? -errno : 0;
}

bool module_loaded(const char *name)
{
	char line[256];
	size_t n = strlen(name);
	bool found = false;
	FILE *f = fopen("/proc/modules", "r");

	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f))
		found = !strncmp(line, name, n) && line[n] == ' ';
	fclose(f);
	return found;
}

int rvmx_ensure_loaded(void)
{
	int ret = module_load(RVMX_KO, NULL);

	return ret == -EEXIST ? 0 : ret;
}

int dmesg_read(char *buf, size_t size)
{
	int n = klogctl(3 /* SYSLOG_ACTION_READ_ALL */, buf, size - 1);

	if (n < 0)
		return -errno;
	buf[n] = 0;
	return n;
}

static char last_mark[64];

int dmesg_mark(void)
{
	static unsigned int seq;
	int fd = open("/dev/kmsg", O_WRONLY | O_CLOEXEC), ret = 0;

	if (fd < 0)
		return -errno;
	snprintf(last_mark, sizeof(last_mark), "rvmx-selftest-mark %d.%u", getpid(), ++seq);
	if (write(fd, last_mark, strlen(last_mark)) < 0)
		ret = -errno;
	close(fd);
	return ret;
}

bool dmesg_contains(const char *s)
{
	static char buf[1 << 20];
	const char *from;

	if (dmesg_read(buf, sizeof(buf)) < 0)
		return false;
	from = last_mark[0] ? strstr(buf, last_mark) : buf;
	return from && strstr(from, s);
}

const char *dmesg_first_problem(char *buf, size_t size, const char *after)
{
	static const char *const bad[] = {
		"WARNING:", "BUG:", "Oops", "Kernel panic", "Call Trace",
		"general protection fault", "UBSAN", "refcount_t:", NULL,
	};
	const char *first = NULL;

	const char *from;

	if (dmesg_read(buf, size) < 0)
		return "cannot read the kernel log";
	from = strstr(buf, after);
	if (!from)
		return "the start mark is not in the kernel log";
	for (int i = 0; bad[i]; i++) {
		const char *p = strstr(from, bad[i]);

		if (p && (!first || p < first))
			first = p;
	}
	if (first) {
		char *nl = strchr(first, '\n');

		if (nl)
			*nl = 0;
	}
	return first;
}

/* Whether the first /proc/cpuinfo line starting with `key` lists flag. */
static bool cpuinfo_has(const char *key, const char *flag)
{
	char line[4096];
	size_t n = strlen(flag), k = strlen(key);
	bool found = false;
	FILE *f = fopen("/proc/cpuinfo", "r");

	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f)) {
		char *p;

		if (strncmp(line, key, k) || (line[k] != ' ' && line[k] != '\t'))
			continue;
		for (p = strstr(line, flag); p; p = strstr(p + 1, flag))
			if (p[-1] == ' ' && (p[n] == ' ' || p[n] == '\n')) {
				found = true;
				break;
			}
		break;
	}
	fclose(f);
	return found;
}

bool cpu_has_flag(const char *flag)
{
	return cpuinfo_has("flags", flag);
}

bool cpu_has_vmx_flag(const char *flag)
{
	return cpuinfo_has("vmx flags", flag);
}

int rvmx_cpu_status(struct rvmx_cpu_status *st)
{
	int fd = open("/dev/rvmx", O_RDWR | O_CLOEXEC), ret;

	if (fd < 0)
		return -errno;
	ret = ioctl(fd, RVMX_GET_CPU_STATUS, st) ? -errno : 0;
	close(fd);
	return ret;
}

int cpu_set_online(int cpu, bool online)
{
	char path[64];
	int fd, ret = 0;

	snprintf(path, sizeof(path), "/sys/devices/system/cpu/cpu%d/online", cpu);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (write(fd, online ? "1" : "0", 1) != 1)
		ret = -errno;
	close(fd);
	return ret;
}

int kvm_load(void)
{
	int ret = module_load(IRQBYPASS_KO, NULL);

	if (ret && ret != -EEXIST)
		return ret;
	ret = module_load(KVM_KO, NULL);

	if (ret && ret != -EEXIST)
		return ret;
	ret = module_load(KVM_INTEL_KO, NULL);
	if (ret && ret != -EEXIST) {
		module_unload("kvm");
		return ret;
	}
	return 0;
}

void kvm_unload(void)
{
	module_unload("kvm_intel");
	module_unload("kvm");
}
