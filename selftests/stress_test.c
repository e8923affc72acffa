// SPDX-License-Identifier: GPL-2.0
/*
 * rvmx under pressure: many vCPU threads in several VMs migrating between
 * CPUs, signals while a guest spins, kill -9 during a run, closing fds in
 * every order, and 1,000 VM create/destroy cycles with memory.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "lib/util.h"
#include "lib/guest.h"

/* Counts in EAX, one OUT per step. */
GUEST_CODE(count, ".code16",
	"1:	inc %eax\n"
	"	out %eax, $0x60\n"
	"	jmp 1b\n");


#define EXITS_PER_VCPU 2000

struct worker {
	struct guest *g;
	int vcpu;
	int ncpus;
	int failed;	/* 0, or the exit count at which it went wrong */
	int migrations;
};

static void *count_worker(void *arg)
{
	struct worker *w = arg;
	struct rvmx_vcpu *v = &w->g->vcpu[w->vcpu];
	struct rvmx_regs regs;
	uint32_t expect = 0;

	if (rvmx_get_regs(v, &regs)) {
		w->failed = -1;
		return NULL;
	}
	regs.rax = (uint64_t)w->vcpu << 24;	/* each vCPU counts in its own range */
	expect = regs.rax;
	if (rvmx_set_regs(v, &regs)) {
		w->failed = -1;
		return NULL;
	}
	for (int i = 1; i <= EXITS_PER_VCPU; i++) {
		/* Hop between CPUs: the VMCS must follow the thread. */
		if (w->ncpus > 1 && i % 50 == 0) {
			cpu_set_t set;

			CPU_ZERO(&set);
			CPU_SET((i / 50) % w->ncpus, &set);
			if (sched_setaffinity(0, sizeof(set), &set) == 0)
				w->migrations++;
		}
		if (rvmx_run(v) || v->run->exit_reason != RVMX_EXIT_IO || v->run->io.port != 0x60 ||
		    v->run->io.data != (uint32_t)(expect + 1)) {
			w->failed = i;
			return NULL;
		}
		expect++;
	}
	return NULL;
}

TEST(two_vms_four_vcpus_migrating)
{
	struct guest g[2];
	struct worker w[4];
	pthread_t t[4];
	int ncpus = sysconf(_SC_NPROCESSORS_ONLN);

	ASSERT_EQ(0, rvmx_ensure_loaded());
	for (int i = 0; i < 2; i++) {
		ASSERT_EQ(0, guest_create(&g[i], 1 << 20, 2, count_start, count_end));
		ASSERT_EQ(0, guest_real_mode(&g[i], 0));
		ASSERT_EQ(0, guest_real_mode(&g[i], 1));
	}
	for (int i = 0; i < 4; i++) {
		w[i] = (struct worker){ .g = &g[i / 2], .vcpu = i % 2, .ncpus = ncpus };
		ASSERT_EQ(0, pthread_create(&t[i], NULL, count_worker, &w[i]));
	}
	for (int i = 0; i < 4; i++) {
		ASSERT_EQ(0, pthread_join(t[i], NULL));
		EXPECT_EQ(0, w[i].failed) TH_LOG("VM %d vCPU %d went wrong at exit %d", i / 2, i % 2, w[i].failed);
		if (ncpus > 1)
			EXPECT_LE(EXITS_PER_VCPU / 50 - 1, w[i].migrations);
	}
	for (int i = 0; i < 2; i++)
		guest_destroy(&g[i]);
}

static void on_signal(int sig)
{
	(void)sig;
}

struct kicker {
	pthread_t target;
	int delay_ms;
};

static void *kick(void *arg)
{
	struct kicker *k = arg;

	usleep(k->delay_ms * 1000);
	pthread_kill(k->target, SIGUSR1);
	return NULL;
}

/* A guest that never exits on its own is interrupted by a signal, RUN
 * returns -EINTR, and the guest resumes where it was. */
static void spin_and_signal(struct __test_metadata *_metadata, uint64_t rflags)
{
	struct sigaction sa = { .sa_handler = on_signal };	/* no SA_RESTART */
	struct kicker k = { .target = pthread_self(), .delay_ms = 100 };
	struct rvmx_regs regs;
	struct guest g;
	pthread_t t;

	ASSERT_EQ(0, rvmx_ensure_loaded());
	ASSERT_EQ(0, sigaction(SIGUSR1, &sa, NULL));
	ASSERT_EQ(0, guest_create(&g, 1 << 20, 1, spin_start, spin_end));
	ASSERT_EQ(0, guest_real_mode(&g, 0));
	ASSERT_EQ(0, rvmx_get_regs(&g.vcpu[0], &regs));
	regs.rflags = rflags;
	ASSERT_EQ(0, rvmx_set_regs(&g.vcpu[0], &regs));
	ASSERT_EQ(0, pthread_create(&t, NULL, kick, &k));
	ASSERT_EQ(-EINTR, rvmx_run(&g.vcpu[0]));
	pthread_join(t, NULL);
	ASSERT_EQ(0, rvmx_get_regs(&g.vcpu[0], &regs));
	/* Still in the spin loop (its first 7 bytes). */
	ASSERT_LE(GUEST_CODE_GPA, regs.rip);
	ASSERT_GT(GUEST_CODE_GPA + 7, regs.rip);
	ASSERT_EQ(rflags, regs.rflags & 0x202);
	g.mem[0x2000] = 1;
	ASSERT_EQ(0x77, guest_expect_out(&g, 0, 0x70));
	guest_destroy(&g);
}

TEST(signal_interrupts_spinning_guest_if1)
{
	spin_and_signal(_metadata, 0x202);
}

/* With IF=0 the host's timer cannot make the guest exit in Bochs; the
 * VMX-preemption timer bounds the time in the guest instead. */
TEST(signal_interrupts_spinning_guest_if0)
{
	spin_and_signal(_metadata, 0x2);
}

static int wait_refcnt_zero(void)
{
	for (int i = 0; i < 200; i++) {
		if (rvmx_refcnt() == 0)
			return 0;
		usleep(10000);
	}
	return rvmx_refcnt();
}

TEST(kill9_during_run)
{
	int ready[2];
	pid_t pid;
	char c;
	int status;

	ASSERT_EQ(0, rvmx_ensure_loaded());
	ASSERT_EQ(0, wait_refcnt_zero());
	ASSERT_EQ(0, pipe(ready));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct guest g;
		struct rvmx_regs regs;

		if (guest_create(&g, 1 << 20, 2, spin_start, spin_end) || guest_real_mode(&g, 0))
			_exit(1);
		rvmx_get_regs(&g.vcpu[0], &regs);
		regs.rflags = 0x202;
		rvmx_set_regs(&g.vcpu[0], &regs);
		if (write(ready[1], "r", 1) != 1)
			_exit(1);
		rvmx_run(&g.vcpu[0]);
		_exit(2);
	}
	ASSERT_EQ(1, read(ready[0], &c, 1));
	usleep(200000);
	ASSERT_GT(rvmx_refcnt(), 0);	/* the child's fds pin the module */
	ASSERT_EQ(0, kill(pid, SIGKILL));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFSIGNALED(status));
	ASSERT_EQ(0, wait_refcnt_zero());
	close(ready[0]);
	close(ready[1]);
}

TEST(close_in_every_order)
{
	for (int order = 0; order < 3; order++) {
		struct guest g;

		ASSERT_EQ(0, rvmx_ensure_loaded());
		ASSERT_EQ(0, guest_create(&g, 1 << 20, 2, count_start, count_end));
		ASSERT_EQ(0, guest_real_mode(&g, 0));
		ASSERT_EQ(1, guest_expect_out(&g, 0, 0x60));
		ASSERT_GT(rvmx_refcnt(), 0);
		switch (order) {
		case 0:	/* VM first, then vCPUs: the vCPUs keep the VM alive */
			rvmx_vm_close(&g.vm);
			ASSERT_EQ(2, guest_expect_out(&g, 0, 0x60));
			break;
		case 1:	/* vCPU fds first, the record stays mapped */
			close(g.vcpu[0].fd);
			close(g.vcpu[1].fd);
			g.vcpu[0].fd = g.vcpu[1].fd = -1;
			ASSERT_EQ(RVMX_EXIT_IO, g.vcpu[0].run->exit_reason);
			break;
		case 2:	/* the system fd first */
			close(g.sys);
			g.sys = -1;
			break;
		}
		guest_destroy(&g);
		ASSERT_EQ(0, wait_refcnt_zero()) TH_LOG("order %d", order);
	}
	ASSERT_EQ(0, module_unload("rvmx"));
}

/* A counter from /proc/vmstat, after folding the per-CPU deltas. */
static long vmstat(const char *name)
{
	char key[64];
	long v, found = -1;
	FILE *f;
	int fd = open("/proc/sys/vm/stat_refresh", O_WRONLY);

	if (fd >= 0) {
		if (write(fd, "1", 1) < 0)
			found = -2;
		close(fd);
	}
	f = fopen("/proc/vmstat", "r");

	while (f && fscanf(f, "%63s %ld", key, &v) == 2)
		if (!strcmp(key, name))
			found = v;
	if (f)
		fclose(f);
	return found;
}

static long mem_free_kb(void)
{
	char key[64];
	long v, found = -1;
	FILE *f = fopen("/proc/meminfo", "r");

	while (f && fscanf(f, "%63s %ld kB", key, &v) == 2)
		if (!strcmp(key, "MemFree:"))
			found = v;
	if (f)
		fclose(f);
	return found;
}

static int one_cycle(void)
{
	struct guest g;
	int ok = guest_create(&g, 1 << 20, 1, count_start, count_end) == 0 &&
		 guest_real_mode(&g, 0) == 0 && guest_expect_out(&g, 0, 0x60) == 1;

	guest_destroy(&g);
	return ok ? 0 : -1;
}

TEST(create_destroy_1000)
{
	long pins0, unpins0, free0, pins, unpins, free1;

	ASSERT_EQ(0, rvmx_ensure_loaded());
	for (int i = 0; i < 20; i++)	/* warm the kernel's caches */
		ASSERT_EQ(0, one_cycle());
	pins0 = vmstat("nr_foll_pin_acquired");
	unpins0 = vmstat("nr_foll_pin_released");
	free0 = mem_free_kb();
	ASSERT_LE(0, pins0);
	for (int i = 0; i < 1000; i++) {
		ASSERT_EQ(0, one_cycle()) TH_LOG("cycle %d", i);
	}
	pins = vmstat("nr_foll_pin_acquired") - pins0;
	unpins = vmstat("nr_foll_pin_released") - unpins0;
	free1 = mem_free_kb();
	TH_LOG("1000 cycles: %ld pages pinned, %ld unpinned, MemFree %ld -> %ld kB", pins, unpins, free0, free1);
	ASSERT_GE(pins, 1000);	/* the guests really touched their memory */
	ASSERT_EQ(pins, unpins);
	ASSERT_GT(free1, free0 - 2048);	/* a page a cycle would be 4000 kB */
	ASSERT_EQ(0, wait_refcnt_zero());
}

TEST_HARNESS_MAIN
