// SPDX-License-Identifier: GPL-2.0
/*
 * VMX operation in every CPU: rvmx turns it on in each online CPU at load
 * and off at unload, follows CPU hotplug, refuses to share VMX with
 * kvm_intel, and reports capabilities that match the CPU.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "lib/util.h"
#include "lib/kvm_guest.h"

static void unload_all(void)
{
	module_unload("rvmx");
	kvm_unload();
}

/* Each online CPU is in VMX operation exactly when `expect_on`. */
#define ASSERT_VMX_ON_ALL_ONLINE(expect_on) do {				\
	struct rvmx_cpu_status st_;						\
	ASSERT_EQ(0, rvmx_cpu_status(&st_));					\
	ASSERT_NE(0, st_.online);						\
	ASSERT_EQ((expect_on) ? st_.online : 0, st_.vmx_on)			\
		TH_LOG("online %#llx, in VMX operation %#llx",		\
		       (unsigned long long)st_.online, (unsigned long long)st_.vmx_on); \
} while (0)

TEST(load_unload_20_times)
{
	unload_all();
	for (int i = 0; i < 20; i++) {
		ASSERT_EQ(0, module_load(RVMX_KO, NULL)) TH_LOG("load %d", i);
		ASSERT_VMX_ON_ALL_ONLINE(true);
		ASSERT_EQ(0, module_unload("rvmx")) TH_LOG("unload %d", i);
	}
	/* Nothing left in VMX operation: kvm_intel turns VMX on in every
	 * online CPU at load and fails if any CPU already has CR4.VMXE. */
	ASSERT_EQ(0, kvm_load());
	ASSERT_EQ(0, kvm_run_tiny_guest());
	kvm_unload();
	ASSERT_FALSE(module_loaded("kvm_intel"));
}

/*
 * Not tested: loading kvm_intel while rvmx is loaded. kvm_intel does refuse
 * (-EBUSY, CR4.VMXE is set), but on the way it WARNs twice, because the
 * kernel has one emergency-virtualization callback slot and rvmx holds it.
 * RVMX_GET_CPU_STATUS reads CR4.VMXE on each CPU instead.
 */

TEST(rvmx_refused_while_kvm_intel_loaded)
{
	unload_all();
	ASSERT_EQ(0, kvm_load());
	ASSERT_EQ(0, dmesg_mark());
	ASSERT_EQ(-EBUSY, module_load(RVMX_KO, NULL));
	ASSERT_FALSE(module_loaded("rvmx"));
	ASSERT_TRUE(dmesg_contains("VMX is already in use (CR4.VMXE = 1), probably by kvm_intel"));
	ASSERT_TRUE(dmesg_contains("rmmod kvm_intel"));
	/* kvm_intel kept VMX: it still runs guests. */
	ASSERT_EQ(0, kvm_run_tiny_guest());
	kvm_unload();
	/* And rvmx loads once kvm_intel is gone. */
	ASSERT_EQ(0, module_load(RVMX_KO, NULL));
	ASSERT_VMX_ON_ALL_ONLINE(true);
	ASSERT_EQ(0, module_unload("rvmx"));
}

TEST(cpu_hotplug)
{
	struct rvmx_cpu_status st;

	if (sysconf(_SC_NPROCESSORS_ONLN) < 2)
		SKIP(return, "needs 2 CPUs: runs in the 2-CPU session");
	unload_all();
	ASSERT_EQ(0, module_load(RVMX_KO, NULL));
	ASSERT_EQ(0, rvmx_cpu_status(&st));
	ASSERT_EQ(3, st.online & 3);
	ASSERT_EQ(st.online, st.vmx_on);

	ASSERT_EQ(0, cpu_set_online(1, false));
	ASSERT_EQ(0, rvmx_cpu_status(&st));
	ASSERT_EQ(0, st.online & 2);
	ASSERT_EQ(st.online, st.vmx_on);

	ASSERT_EQ(0, cpu_set_online(1, true));
	ASSERT_EQ(0, rvmx_cpu_status(&st));
	ASSERT_EQ(2, st.online & 2);
	ASSERT_EQ(st.online, st.vmx_on) TH_LOG("CPU 1 came back without VMX");

	ASSERT_EQ(0, module_unload("rvmx"));
	/* Neither CPU is left in VMX operation. */
	ASSERT_EQ(0, kvm_load());
	kvm_unload();
	/* A CPU offline while rvmx loads gets VMX when it comes online. */
	ASSERT_EQ(0, cpu_set_online(1, false));
	ASSERT_EQ(0, module_load(RVMX_KO, NULL));
	ASSERT_EQ(0, cpu_set_online(1, true));
	ASSERT_EQ(0, rvmx_cpu_status(&st));
	ASSERT_EQ(3, st.vmx_on & 3);
	ASSERT_EQ(0, module_unload("rvmx"));
}

/* RVMX_GET_CAPS agrees with the kernel's own reading of the VMX MSRs. */
TEST(caps_match_cpuinfo)
{
	static const struct { __u64 cap; const char *flag; } map[] = {
		{ RVMX_CAP_EPT, "ept" },
		{ RVMX_CAP_VPID, "vpid" },
		{ RVMX_CAP_UNRESTRICTED_GUEST, "unrestricted_guest" },
		{ RVMX_CAP_PREEMPTION_TIMER, "preemption_timer" },
		{ RVMX_CAP_VIRTUAL_NMI, "vnmi" },
		{ RVMX_CAP_EPT_AD, "ept_ad" },
		{ RVMX_CAP_EPT_1G, "ept_1gb" },
		{ RVMX_CAP_EPT_EXEC_ONLY, "ept_x_only" },
		{ RVMX_CAP_INVVPID, "invvpid" },
		{ RVMX_CAP_PML, "pml" },
		{ RVMX_CAP_MTF, "mtf" },
	};
	struct rvmx_caps caps;
	int fd;

	unload_all();
	ASSERT_EQ(0, module_load(RVMX_KO, NULL));
	fd = open("/dev/rvmx", O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, fd);
	memset(&caps, 0xa5, sizeof(caps));
	ASSERT_EQ(0, ioctl(fd, RVMX_GET_CAPS, &caps));
	close(fd);
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		EXPECT_EQ(cpu_has_vmx_flag(map[i].flag), !!(caps.flags & map[i].cap))
			TH_LOG("capability %s: rvmx says %d", map[i].flag, !!(caps.flags & map[i].cap));
	}
	/* Bits beyond the defined ones, and reserved fields, are zero. */
	EXPECT_EQ(0, caps.flags & ~((RVMX_CAP_XSAVE << 1) - 1));
	/* Guests get XSAVE exactly when the host uses it. */
	EXPECT_EQ(cpu_has_flag("xsave"), !!(caps.flags & RVMX_CAP_XSAVE));
	for (int i = 0; i < 10; i++) {
		EXPECT_EQ(0, caps.reserved[i]);
	}
	EXPECT_GE(caps.max_vcpus, 64);
	EXPECT_NE(0, caps.vmcs_revision);
	EXPECT_EQ(caps.vmcs_revision, caps.vmx_basic & 0x7fffffff);
	ASSERT_EQ(0, module_unload("rvmx"));
}

TEST_HARNESS_MAIN
