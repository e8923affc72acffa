// SPDX-License-Identifier: GPL-2.0
/*
 * Host state a guest must not touch: the VMM's protection-key rights
 * (PKRU) and the host's hardware breakpoints (DR7, DEBUGCTL) are the
 * host's again after every exit, while the guest keeps its own.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/hw_breakpoint.h>
#include <linux/perf_event.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "lib/util.h"
#include "lib/guest.h"

/* Long mode: turn on protection keys, set PKRU to 0xc, report it across an
 * exit to userland, then report what RDPKRU reads after that exit. */
GUEST_CODE(pkru, ".code64",
	"	mov %cr4, %rax\n"
	"	or $(1 << 22), %rax\n"		/* CR4.PKE */
	"	mov %rax, %cr4\n"
	"	mov $0xc, %eax\n"
	"	xor %ecx, %ecx\n"
	"	xor %edx, %edx\n"
	"	wrpkru\n"
	"	out %eax, $0x50\n"
	"	xor %ecx, %ecx\n"
	"	rdpkru\n"
	"	out %eax, $0x51\n"
	"	hlt\n");

/* SYSCALL: goes wherever the guest's IA32_LSTAR says. */
GUEST_CODE(do_syscall, ".code64",
	"	syscall\n"
	"	hlt\n");

/* A few exits (OUT), then halt. */
GUEST_CODE(outs, ".code16",
	"	mov $3, %cx\n"
	"1:	out %al, $0x52\n"
	"	loop 1b\n"
	"	hlt\n");

static uint32_t rdpkru(void)
{
	uint32_t eax, edx;

	asm volatile("rdpkru" : "=a"(eax), "=d"(edx) : "c"(0));
	return eax;
}

static void wrpkru(uint32_t v)
{
	asm volatile("wrpkru" : : "a"(v), "c"(0), "d"(0));
}

TEST(guest_pkru_does_not_reach_the_vmm)
{
	const uint32_t mine = 0x55555554;	/* key 0 open, every other key closed */
	struct guest g;

	if (!cpu_has_flag("ospke"))
		SKIP(return, "no protection keys in this CPU or kernel (the PKU session runs it)");
	ASSERT_EQ(0, rvmx_ensure_loaded());
	ASSERT_EQ(0, guest_create(&g, 4 << 20, 1, pkru_start, pkru_end));
	ASSERT_EQ(0, guest_long_mode(&g, 0));
	wrpkru(mine);
	ASSERT_EQ(mine, rdpkru());
	ASSERT_EQ(0xc, guest_expect_out(&g, 0, 0x50));
	EXPECT_EQ(mine, rdpkru()) TH_LOG("the guest's WRPKRU changed the VMM's PKRU");
	/* The guest's own value survives the trip to userland and back. */
	ASSERT_EQ(0xc, guest_expect_out(&g, 0, 0x51));
	EXPECT_EQ(mine, rdpkru());
	wrpkru(0);
	guest_destroy(&g);
}

/* A guest with EFER.SCE runs SYSCALL with its own STAR/LSTAR/FMASK (all 0
 * after reset: it lands at 0), never the host's, which would send it to
 * the host kernel's entry point and show that address in its CR2. */
TEST(guest_syscall_uses_guest_msrs)
{
	static const unsigned char at_zero[] = { 0xb0, 0x77, 0xe6, 0x53, 0xf4 };	/* mov $0x77,%al; out %al,$0x53; hlt */
	struct rvmx_sregs s;
	struct guest g;

	ASSERT_EQ(0, rvmx_ensure_loaded());
	ASSERT_EQ(0, guest_create(&g, 4 << 20, 1, do_syscall_start, do_syscall_end));
	ASSERT_EQ(0, guest_long_mode(&g, 0));
	memcpy(g.mem, at_zero, sizeof(at_zero));
	ASSERT_EQ(0, rvmx_get_sregs(&g.vcpu[0], &s));
	s.efer |= 1;	/* SCE */
	ASSERT_EQ(0, rvmx_set_sregs(&g.vcpu[0], &s));
	EXPECT_EQ(0x77, guest_expect_out(&g, 0, 0x53)) TH_LOG("SYSCALL in the guest did not land at its own LSTAR (0)");
	guest_destroy(&g);
}

static volatile uint32_t watched;

TEST(host_breakpoint_counts_right_after_run)
{
	struct perf_event_attr attr = {
		.type = PERF_TYPE_BREAKPOINT,
		.size = sizeof(attr),
		.bp_type = HW_BREAKPOINT_W,
		.bp_addr = (uintptr_t)&watched,
		.bp_len = HW_BREAKPOINT_LEN_4,
		.exclude_kernel = 1,
		.exclude_hv = 1,
	};
	struct guest g;
	uint64_t count = 0;
	int fd;

	ASSERT_EQ(0, rvmx_ensure_loaded());
	fd = syscall(SYS_perf_event_open, &attr, 0, -1, -1, 0);
	ASSERT_LE(0, fd) TH_LOG("perf_event_open: %s", strerror(errno));
	watched = 1;
	ASSERT_EQ(sizeof(count), read(fd, &count, sizeof(count)));
	ASSERT_EQ(1, count);
	ASSERT_EQ(0, guest_create(&g, 1 << 20, 1, outs_start, outs_end));
	ASSERT_EQ(0, guest_real_mode(&g, 0));
	for (int i = 0; i < 3; i++) {
		ASSERT_LE(0, guest_expect_out(&g, 0, 0x52));
		/* Right after RUN, on the same CPU, no context switch between. */
		watched = i + 2;
	}
	ASSERT_EQ(sizeof(count), read(fd, &count, sizeof(count)));
	EXPECT_EQ(4, count) TH_LOG("the host's breakpoint missed writes after RUN");
	close(fd);
	guest_destroy(&g);
}

TEST_HARNESS_MAIN
