// SPDX-License-Identifier: GPL-2.0
/*
 * A hostile caller and a hostile guest: random register state through the
 * ioctls, random bytes as guest code. Whatever happens, RVMX_RUN must come
 * back (an exit, an entry failure, an errno) and the host must stay well:
 * the health test after this one reads the kernel log. Seeded, so a
 * failure can be replayed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <sys/time.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "lib/util.h"
#include "lib/guest.h"

static uint64_t rng = 0x2545f4914f6cdd1dull;

static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* Mostly plausible values, sometimes anything. */
static uint64_t pick(uint64_t plausible)
{
	switch (next() % 4) {
	case 0:
		return next();
	case 1:
		return plausible ^ (1ull << (next() % 64));
	default:
		return plausible;
	}
}

static void on_alarm(int sig)
{
	(void)sig;
}

/* Runs until an exit, an error or a 20 ms alarm; returns the RUN result. */
static int run_bounded(struct rvmx_vcpu *v)
{
	struct itimerval t = { .it_value = { .tv_usec = 20000 } };
	struct itimerval off = { 0 };
	int r;

	setitimer(ITIMER_REAL, &t, NULL);
	r = rvmx_run(v);
	setitimer(ITIMER_REAL, &off, NULL);
	return r;
}

GUEST_CODE(halt, ".code16", "	hlt\n");

TEST(random_register_state)
{
	struct sigaction sa = { .sa_handler = on_alarm };
	int entries = 0, failures = 0, refused = 0;

	ASSERT_EQ(0, rvmx_ensure_loaded());
	ASSERT_EQ(0, sigaction(SIGALRM, &sa, NULL));
	for (int i = 0; i < 100; i++) {
		struct guest g;
		struct rvmx_sregs s;
		struct rvmx_regs r;
		struct rvmx_segment *segs[8];
		int ret;

		ASSERT_EQ(0, guest_create(&g, 1 << 20, 1, halt_start, halt_end));
		ASSERT_EQ(0, i % 2 ? guest_long_mode(&g, 0) : guest_real_mode(&g, 0));
		ASSERT_EQ(0, rvmx_get_sregs(&g.vcpu[0], &s));
		ASSERT_EQ(0, rvmx_get_regs(&g.vcpu[0], &r));
		segs[0] = &s.cs; segs[1] = &s.ds; segs[2] = &s.es; segs[3] = &s.fs;
		segs[4] = &s.gs; segs[5] = &s.ss; segs[6] = &s.tr; segs[7] = &s.ldtr;
		for (int j = 0; j < 8; j++) {
			segs[j]->base = pick(segs[j]->base);
			segs[j]->limit = pick(segs[j]->limit);
			segs[j]->selector = pick(segs[j]->selector);
			/* Flip one defined bit (not the reserved 11:8), or anything
			 * defined; reserved bits get -EINVAL, tested elsewhere. */
			segs[j]->ar = next() % 8 ? segs[j]->ar ^ (1u << "\0\1\2\3\4\5\6\7\14\15\16\17\20"[next() % 13])
						  : (uint32_t)next() & ~0xfffe0f00u;
		}
		s.cr0 = pick(s.cr0);
		s.cr3 = pick(s.cr3);
		s.cr4 = pick(s.cr4);
		s.efer = pick(s.efer);
		s.gdt.limit = pick(s.gdt.limit);
		s.idt.base = pick(s.idt.base);
		r.rip = pick(r.rip);
		r.rflags = pick(r.rflags);
		r.rsp = pick(r.rsp);
		ret = rvmx_set_sregs(&g.vcpu[0], &s);
		if (ret) {
			ASSERT_EQ(-EINVAL, ret);
			refused++;
		}
		ASSERT_EQ(0, rvmx_set_regs(&g.vcpu[0], &r));
		for (int k = 0; k < 3; k++) {
			ret = run_bounded(&g.vcpu[0]);
			ASSERT_TRUE(ret == 0 || ret == -EINTR || ret == -EFAULT) TH_LOG("iteration %d: %s", i, strerror(-ret));
			if (ret)
				break;
			entries++;
			if (g.vcpu[0].run->exit_reason == RVMX_EXIT_FAIL_ENTRY) {
				failures++;
				break;
			}
		}
		guest_destroy(&g);
	}
	TH_LOG("100 states: %d refused by SET_SREGS, %d runs, %d VM-entry failures", refused, entries, failures);
	/* The fuzzing reached both sides of the entry checks. */
	ASSERT_GT(failures, 0);
	ASSERT_GT(entries, failures);
}

TEST(random_guest_code)
{
	struct sigaction sa = { .sa_handler = on_alarm };
	int exits[8] = { 0 };

	ASSERT_EQ(0, rvmx_ensure_loaded());
	ASSERT_EQ(0, sigaction(SIGALRM, &sa, NULL));
	for (int i = 0; i < 60; i++) {
		struct guest g;

		ASSERT_EQ(0, guest_create(&g, 1 << 20, 1, NULL, NULL));
		for (int j = 0; j < 4096; j += 8)
			*(uint64_t *)(g.mem + 0x1000 + j) = next();
		ASSERT_EQ(0, i % 2 ? guest_long_mode(&g, 0) : guest_real_mode(&g, 0));
		for (int k = 0; k < 20; k++) {
			int ret = run_bounded(&g.vcpu[0]);

			ASSERT_TRUE(ret == 0 || ret == -EINTR || ret == -EFAULT) TH_LOG("iteration %d: %s", i, strerror(-ret));
			if (ret)
				break;
			exits[g.vcpu[0].run->exit_reason & 7]++;
			/* Answer INs; move on after anything else. */
			if (g.vcpu[0].run->exit_reason == RVMX_EXIT_IO)
				g.vcpu[0].run->io.data = next();
			else if (g.vcpu[0].run->exit_reason != RVMX_EXIT_HLT)
				break;
		}
		guest_destroy(&g);
	}
	TH_LOG("exits: io %d, hlt %d, mmio %d, shutdown %d, fail_entry %d, vmx %d",
	       exits[1], exits[2], exits[3], exits[4], exits[5], exits[6]);
	ASSERT_GT(exits[1] + exits[2] + exits[3] + exits[4] + exits[6], 20);
}

TEST_HARNESS_MAIN
