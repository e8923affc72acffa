// SPDX-License-Identifier: GPL-2.0
/* Runs last in every emulated-host session: the kernel log must hold no
 * warning, BUG, oops or panic from anything the earlier tests did (from the
 * init's mark on; tools/report.py judges the boot part). */
#include "kselftest_harness.h"
#include "lib/util.h"

TEST(no_kernel_warnings)
{
	static char buf[1 << 20];
	const char *bad = dmesg_first_problem(buf, sizeof(buf), "rvmx-init: tests start");

	ASSERT_EQ(NULL, bad) TH_LOG("kernel log: %s", bad);
}

TEST_HARNESS_MAIN
