// SPDX-License-Identifier: GPL-2.0
/*
 * The run loop holds no host-wide lock and does not pin its task while a
 * guest runs: other ioctls on a running vCPU fail with EBUSY at once, a
 * CPU can go offline and online and the vCPU thread can be moved by
 * sched_setaffinity while its guest spins, and immediate_exit gives
 * control back before entry (after completing a pending IN).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "lib/util.h"
#include "lib/guest.h"


/* IN from port 0x71, OUT the value to 0x72, halt. */
GUEST_CODE(in_out, ".code16",
	"	in $0x71, %al\n"
	"	out %al, $0x72\n"
	"	hlt\n");

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

struct runner {
	struct guest *g;
	int cpu;		/* pin to this CPU first, or -1 */
	volatile pid_t tid;
	volatile int started;
	int ret;
	uint32_t exit_reason;
	uint16_t port;
	uint64_t data;
};

static void *run_guest(void *arg)
{
	struct runner *r = arg;
	struct rvmx_vcpu *v = &r->g->vcpu[0];

	if (r->cpu >= 0) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(r->cpu, &set);
		sched_setaffinity(0, sizeof(set), &set);
	}
	r->tid = syscall(SYS_gettid);
	r->started = 1;
	r->ret = rvmx_run(v);
	r->exit_reason = v->run->exit_reason;
	r->port = v->run->io.port;
	r->data = v->run->io.data;
	return NULL;
}

/* The CPU a thread last ran on (/proc/self/task/TID/stat, field 39). */
static int thread_cpu(pid_t tid)
{
	char path[64], buf[1024], *p;
	FILE *f;
	int field = 1;

	snprintf(path, sizeof(path), "/proc/self/task/%d/stat", tid);
	f = fopen(path, "r");
	if (!f || !fgets(buf, sizeof(buf), f)) {
		if (f)
			fclose(f);
		return -1;
	}
	fclose(f);
	p = strrchr(buf, ')');	/* the name may hold spaces */
	if (!p)
		return -1;
	field = 2;
	for (p = strtok(p + 1, " "); p; p = strtok(NULL, " ")) {
		if (++field == 39)
			return atoi(p);
	}
	return -1;
}

/* Starts the spinning guest in a thread (pinned to `cpu` if >= 0) and
 * waits until it is in the guest. */
static void start_spinner(struct __test_metadata *_metadata, struct guest *g, struct runner *r,
			  pthread_t *t, int cpu)
{
	ASSERT_EQ(0, rvmx_ensure_loaded());
	ASSERT_EQ(0, guest_create(g, 1 << 20, 1, spin_start, spin_end));
	ASSERT_EQ(0, guest_real_mode(g, 0));
	*r = (struct runner){ .g = g, .cpu = cpu };
	ASSERT_EQ(0, pthread_create(t, NULL, run_guest, r));
	while (!r->started)
		usleep(1000);
	usleep(100 * 1000);	/* well inside RVMX_RUN by now */
}

/* Lets the guest finish; the run must end with its OUT. */
static void finish_spinner(struct __test_metadata *_metadata, struct guest *g, struct runner *r, pthread_t t)
{
	g->mem[0x2000] = 1;
	ASSERT_EQ(0, pthread_join(t, NULL));
	ASSERT_EQ(0, r->ret);
	ASSERT_EQ(RVMX_EXIT_IO, r->exit_reason);
	ASSERT_EQ(0x70, r->port);
	ASSERT_EQ(0x77, r->data);
	guest_destroy(g);
}

TEST(ioctls_get_ebusy_at_once_while_running)
{
	struct rvmx_regs regs;
	struct rvmx_sregs sregs;
	struct guest g;
	struct runner r;
	pthread_t t;
	double t0;

	start_spinner(_metadata, &g, &r, &t, -1);
	t0 = now_ms();
	EXPECT_EQ(-EBUSY, rvmx_get_regs(&g.vcpu[0], &regs));
	EXPECT_EQ(-EBUSY, rvmx_set_regs(&g.vcpu[0], &regs));
	EXPECT_EQ(-EBUSY, rvmx_get_sregs(&g.vcpu[0], &sregs));
	EXPECT_EQ(-EBUSY, rvmx_run(&g.vcpu[0]));
	EXPECT_GT(100.0, now_ms() - t0) TH_LOG("the ioctls took %.0f ms", now_ms() - t0);
	printf("# four ioctls on the running vCPU returned EBUSY in %.2f ms\n", now_ms() - t0);
	finish_spinner(_metadata, &g, &r, t);
}

TEST(cpu_offline_online_and_affinity_while_guest_spins)
{
	struct rvmx_regs regs;
	struct guest g;
	struct runner r;
	pthread_t t;
	cpu_set_t set;
	double t0;
	int cpu = -1;

	if (sysconf(_SC_NPROCESSORS_ONLN) < 2)
		SKIP(return, "needs 2 CPUs (the 2-CPU session runs it)");
	/* This thread on CPU 0, the guest on CPU 1. */
	CPU_ZERO(&set);
	CPU_SET(0, &set);
	ASSERT_EQ(0, sched_setaffinity(0, sizeof(set), &set));
	start_spinner(_metadata, &g, &r, &t, 1);
	ASSERT_EQ(1, thread_cpu(r.tid));

	/* CPU 1 goes offline under the spinning guest and comes back. */
	t0 = now_ms();
	ASSERT_EQ(0, cpu_set_online(1, false));
	EXPECT_GT(1000.0, now_ms() - t0) TH_LOG("offlining CPU 1 took %.0f ms", now_ms() - t0);
	printf("# CPU 1 offline under the spinning guest in %.0f ms\n", now_ms() - t0);
	EXPECT_EQ(0, thread_cpu(r.tid));
	EXPECT_EQ(-EBUSY, rvmx_get_regs(&g.vcpu[0], &regs));
	t0 = now_ms();
	ASSERT_EQ(0, cpu_set_online(1, true));
	EXPECT_GT(1000.0, now_ms() - t0) TH_LOG("onlining CPU 1 took %.0f ms", now_ms() - t0);
	printf("# CPU 1 online again in %.0f ms\n", now_ms() - t0);

	/* sched_setaffinity moves the vCPU thread at once. */
	CPU_ZERO(&set);
	CPU_SET(1, &set);
	t0 = now_ms();
	ASSERT_EQ(0, sched_setaffinity(r.tid, sizeof(set), &set));
	for (int i = 0; i < 100 && (cpu = thread_cpu(r.tid)) != 1; i++)
		usleep(10 * 1000);
	EXPECT_EQ(1, cpu);
	EXPECT_GT(1000.0, now_ms() - t0) TH_LOG("moving the vCPU thread took %.0f ms", now_ms() - t0);
	printf("# the vCPU thread moved to CPU 1 in %.0f ms\n", now_ms() - t0);
	/* The guest still runs there, and finishes. */
	finish_spinner(_metadata, &g, &r, t);
}

TEST(immediate_exit_returns_eintr_before_entry)
{
	struct rvmx_regs regs, after;
	struct guest g;

	ASSERT_EQ(0, rvmx_ensure_loaded());
	ASSERT_EQ(0, guest_create(&g, 1 << 20, 1, in_out_start, in_out_end));
	ASSERT_EQ(0, guest_real_mode(&g, 0));
	ASSERT_EQ(0, rvmx_get_regs(&g.vcpu[0], &regs));
	g.vcpu[0].run->immediate_exit = 1;
	ASSERT_EQ(-EINTR, rvmx_run(&g.vcpu[0]));
	ASSERT_EQ(0, rvmx_get_regs(&g.vcpu[0], &after));
	EXPECT_EQ(regs.rip, after.rip);		/* the guest did not run */
	g.vcpu[0].run->immediate_exit = 0;
	/* rvmx never writes the bytes userland owns (immediate_exit and
	 * request_interrupt_window): a flag set by another thread is never
	 * lost. It writes ready_for_interrupt_injection and if_flag. */
	g.vcpu[0].run->request_interrupt_window = 0;
	g.vcpu[0].run->ready_for_interrupt_injection = 0xa5;
	g.vcpu[0].run->if_flag = 0xa5;
	ASSERT_EQ(0, rvmx_run(&g.vcpu[0]));
	ASSERT_EQ(RVMX_EXIT_IO, g.vcpu[0].run->exit_reason);
	ASSERT_EQ(0x71, g.vcpu[0].run->io.port);
	EXPECT_EQ(0, g.vcpu[0].run->immediate_exit);
	EXPECT_EQ(0, g.vcpu[0].run->request_interrupt_window);
	/* The guest runs with IF=0 (RFLAGS 2): no interrupt could go in. */
	EXPECT_EQ(0, g.vcpu[0].run->ready_for_interrupt_injection);
	EXPECT_EQ(0, g.vcpu[0].run->if_flag);
	/* The IN is completed, then immediate_exit returns before entry. */
	g.vcpu[0].run->io.data = 0x5c;
	g.vcpu[0].run->immediate_exit = 1;
	ASSERT_EQ(-EINTR, rvmx_run(&g.vcpu[0]));
	ASSERT_EQ(0, rvmx_get_regs(&g.vcpu[0], &after));
	EXPECT_EQ(0x5c, after.rax & 0xff);
	EXPECT_EQ(regs.rip + 2, after.rip);	/* past the 2-byte IN */
	g.vcpu[0].run->immediate_exit = 0;
	ASSERT_EQ(0x5c, guest_expect_out(&g, 0, 0x72));
	guest_destroy(&g);
}

TEST_HARNESS_MAIN
