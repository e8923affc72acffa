// SPDX-License-Identifier: GPL-2.0
/*
 * The module and /dev/rvmx: loading, unloading, the device node, the system
 * ioctls and their error paths. Runs inside the emulated host as root.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "lib/util.h"
#include "../uapi/rvmx.h"

/* On a CPU with VMX and what rvmx needs (EPT, VPID, unrestricted guest)
 * the module loads; otherwise it refuses with -ENODEV and says why. */
TEST(load_matches_cpu)
{
	bool vmx = cpu_has_flag("vmx");
	bool ug = cpu_has_vmx_flag("unrestricted_guest");
	bool usable = vmx && ug && cpu_has_vmx_flag("ept") && cpu_has_vmx_flag("vpid");
	int ret;

	if (module_loaded("rvmx"))
		ASSERT_EQ(0, module_unload("rvmx"));
	ASSERT_EQ(0, dmesg_mark());
	ret = module_load(RVMX_KO, NULL);
	if (usable) {
		ASSERT_EQ(0, ret) TH_LOG("insmod rvmx failed: %s", strerror(-ret));
		ASSERT_EQ(0, module_unload("rvmx"));
		return;
	}
	ASSERT_EQ(-ENODEV, ret) TH_LOG("rvmx loaded on a CPU it cannot use");
	ASSERT_FALSE(module_loaded("rvmx"));
	if (!vmx) {
		ASSERT_TRUE(dmesg_contains("rvmx: this CPU has no VMX"));
	} else if (!ug) {
		ASSERT_TRUE(dmesg_contains("rvmx:   missing: unrestricted guest"));
	}
}

TEST(load_unload_twice)
{
	struct stat st;

	if (!cpu_has_vmx_flag("unrestricted_guest"))
		SKIP(return, "CPU model unusable by rvmx: load_matches_cpu covers it");
	if (module_loaded("rvmx"))
		ASSERT_EQ(0, module_unload("rvmx"));
	for (int i = 0; i < 2; i++) {
		ASSERT_EQ(0, module_load(RVMX_KO, NULL));
		ASSERT_TRUE(module_loaded("rvmx"));
		ASSERT_EQ(0, stat("/dev/rvmx", &st));
		ASSERT_EQ(-EEXIST, module_load(RVMX_KO, NULL));
		ASSERT_EQ(0, module_unload("rvmx"));
		ASSERT_FALSE(module_loaded("rvmx"));
		ASSERT_EQ(-1, stat("/dev/rvmx", &st));
		ASSERT_EQ(ENOENT, errno);
	}
}

FIXTURE(dev) {
	int fd;
};

FIXTURE_SETUP(dev)
{
	if (!cpu_has_vmx_flag("unrestricted_guest"))
		SKIP(return, "CPU model unusable by rvmx: load_matches_cpu covers it");
	ASSERT_EQ(0, rvmx_ensure_loaded());
	self->fd = open("/dev/rvmx", O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, self->fd) TH_LOG("open /dev/rvmx: %s", strerror(errno));
}

FIXTURE_TEARDOWN(dev)
{
	if (self->fd >= 0)
		close(self->fd);
}

/* A character device that only root may open. */
TEST_F(dev, node_mode)
{
	struct stat st;

	ASSERT_EQ(0, fstat(self->fd, &st));
	ASSERT_TRUE(S_ISCHR(st.st_mode));
	ASSERT_EQ(0600u, st.st_mode & 07777);
	ASSERT_EQ(0u, st.st_uid);
}

TEST_F(dev, api_version)
{
	struct rvmx_version v;

	memset(&v, 0xa5, sizeof(v));
	ASSERT_EQ(0, ioctl(self->fd, RVMX_GET_VERSION, &v));
	ASSERT_EQ(RVMX_API_VERSION, v.api);
	ASSERT_EQ(0, v.reserved);
}

TEST_F(dev, unknown_ioctl_is_enotty)
{
	struct rvmx_version v;

	ASSERT_EQ(-1, ioctl(self->fd, _IO(RVMX_IOC, 0x7f)));
	ASSERT_EQ(ENOTTY, errno);
	/* The right number with another size or direction is another command. */
	ASSERT_EQ(-1, ioctl(self->fd, _IOR(RVMX_IOC, 0x00, __u64[2]), &v));
	ASSERT_EQ(ENOTTY, errno);
	ASSERT_EQ(-1, ioctl(self->fd, _IOW(RVMX_IOC, 0x00, struct rvmx_version), &v));
	ASSERT_EQ(ENOTTY, errno);
	/* A KVM ioctl is not ours. */
	ASSERT_EQ(-1, ioctl(self->fd, _IO(0xAE, 0x00)));
	ASSERT_EQ(ENOTTY, errno);
}

TEST_F(dev, bad_pointer_is_efault)
{
	ASSERT_EQ(-1, ioctl(self->fd, RVMX_GET_VERSION, NULL));
	ASSERT_EQ(EFAULT, errno);
	ASSERT_EQ(-1, ioctl(self->fd, RVMX_GET_VERSION, (void *)1));
	ASSERT_EQ(EFAULT, errno);
	/* A kernel address is not a user address. */
	ASSERT_EQ(-1, ioctl(self->fd, RVMX_GET_VERSION, (void *)0xffffffff81000000ul));
	ASSERT_EQ(EFAULT, errno);
}

/* An open fd pins the module: rmmod must fail while it is open. */
TEST_F(dev, open_fd_pins_module)
{
	/* delete_module(O_NONBLOCK) on a module in use: -EWOULDBLOCK. */
	ASSERT_EQ(-EWOULDBLOCK, module_unload("rvmx")) TH_LOG("module unloaded under an open fd");
	ASSERT_TRUE(module_loaded("rvmx"));
	close(self->fd);
	self->fd = -1;
	ASSERT_EQ(0, module_unload("rvmx"));
}

TEST_HARNESS_MAIN
