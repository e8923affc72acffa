// SPDX-License-Identifier: GPL-2.0
/* rvmx_info: print what /dev/rvmx reports. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "../../uapi/rvmx.h"

int main(void)
{
	struct rvmx_version v = { 0 };
	int fd = open("/dev/rvmx", O_RDWR | O_CLOEXEC);

	if (fd < 0) {
		fprintf(stderr, "rvmx_info: open /dev/rvmx: %s\n", strerror(errno));
		return 1;
	}
	if (ioctl(fd, RVMX_GET_VERSION, &v)) {
		fprintf(stderr, "rvmx_info: RVMX_GET_VERSION: %s\n", strerror(errno));
		return 1;
	}
	printf("rvmx API version %u\n", v.api);
	close(fd);
	return 0;
}
