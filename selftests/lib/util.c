// SPDX-License-Identifier: GPL-2.0
#define _GNU_SOURCE
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

int dmesg_clear(void)
{
	return klogctl(5 /* SYSLOG_ACTION_CLEAR */, NULL, 0) ? -errno : 0;
}

bool dmesg_contains(const char *s)
{
	static char buf[1 << 17];

	return dmesg_read(buf, sizeof(buf)) >= 0 && strstr(buf, s);
}

const char *dmesg_first_problem(char *buf, size_t size)
{
	static const char *const bad[] = {
		"WARNING:", "BUG:", "Oops", "Kernel panic", "Call Trace",
		"general protection fault", "UBSAN", "refcount_t:", NULL,
	};
	const char *first = NULL;

	if (dmesg_read(buf, size) < 0)
		return "cannot read the kernel log";
	for (int i = 0; bad[i]; i++) {
		const char *p = strstr(buf, bad[i]);

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

bool cpu_has_flag(const char *flag)
{
	char line[4096];
	size_t n = strlen(flag);
	bool found = false;
	FILE *f = fopen("/proc/cpuinfo", "r");

	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f)) {
		char *p;

		if (strncmp(line, "flags", 5))
			continue;
		for (p = strstr(line, flag); p; p = strstr(p + 1, flag))
			if (p[-1] == ' ' && (p[n] == ' ' || p[n] == '\n')) {
				found = true;
				break;
			}
	}
	fclose(f);
	return found;
}
