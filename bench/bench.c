// SPDX-License-Identifier: GPL-2.0
/*
 * rvmx against kvm_intel, in the same emulated host, with the same guests
 * and the same measurements (TSC cycles; with one emulated CPU, Bochs's TSC
 * advances about once per emulated instruction, so these are path
 * lengths, repeatable run to run):
 *
 *  - in-kernel exit: a real-mode guest runs CPUID leaf 0 N times and times
 *    itself with RDTSC; minus the same loop with NOPs, per iteration;
 *  - exit to userland and back: the guest loops on OUT; userland times N
 *    RUNs;
 *  - create: VM + 64 MiB memory slot + vCPU + RUN to the first exit.
 *
 * Each backend's module is loaded alone (rvmx and kvm_intel cannot share
 * VMX). The backends take turns, ROUNDS times each, and the lowest figure
 * of each counts: background work in the emulated host (timer ticks,
 * periodic kernel work) only ever adds cycles. Prints one line per
 * measurement: "bench <what> rvmx=<n> kvm=<n>".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>
#include <x86intrin.h>

#include "../clients/c/rvmx.h"
#include "../selftests/lib/util.h"

#define LOOPS 10000
#define ROUND_TRIPS 2000
#define CREATE_REPEATS 5
#define ROUNDS 3
#define MEM_SIZE (64ul << 20)

/* CPUID (or NOP NOP) LOOPS times between two RDTSCs; OUT the cycles. */
#define TIMED_LOOP(name, insn)						\
	extern const unsigned char name##_start[], name##_end[];	\
	asm(".pushsection .rodata\n" #name "_start:\n.code16\n"		\
	    "	mov $" "10000" ", %esi\n"					\
	    "	rdtsc\n"						\
	    "	mov %eax, %edi\n"					\
	    "1:	xor %eax, %eax\n"					\
	    "	" insn "\n"						\
	    "	dec %esi\n"						\
	    "	jnz 1b\n"						\
	    "	rdtsc\n"						\
	    "	sub %edi, %eax\n"					\
	    "	out %eax, $0xb0\n"					\
	    "	hlt\n"							\
	    ".code64\n" #name "_end:\n.popsection\n")

TIMED_LOOP(cpuid_loop, "cpuid");
TIMED_LOOP(nop_loop, "nop; nop");

/* OUT forever. */
extern const unsigned char out_loop_start[], out_loop_end[];
asm(".pushsection .rodata\nout_loop_start:\n.code16\n"
    "1:	out %al, $0xb1\n"
    "	jmp 1b\n"
    ".code64\nout_loop_end:\n.popsection\n");

/* One backend: a VM with memory at 0 and one vCPU in real mode at 0x1000. */
struct vm {
	int sys, vm, vcpu;
	unsigned char *mem;
	void *run;
	size_t run_size;
	int kvm;
};

static void die(const char *what)
{
	fprintf(stderr, "bench: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void vm_create(struct vm *v, int kvm, const unsigned char *code, size_t len)
{
	memset(v, 0, sizeof(*v));
	v->kvm = kvm;
	v->sys = open(kvm ? "/dev/kvm" : "/dev/rvmx", O_RDWR | O_CLOEXEC);
	if (v->sys < 0)
		die("open");
	v->vm = ioctl(v->sys, kvm ? KVM_CREATE_VM : RVMX_CREATE_VM, 0);
	if (v->vm < 0)
		die("create VM");
	v->mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (v->mem == MAP_FAILED)
		die("mmap");
	memcpy(v->mem + 0x1000, code, len);
	if (kvm) {
		struct kvm_userspace_memory_region r = { .memory_size = MEM_SIZE, .userspace_addr = (uintptr_t)v->mem };

		if (ioctl(v->vm, KVM_SET_USER_MEMORY_REGION, &r))
			die("KVM_SET_USER_MEMORY_REGION");
		v->vcpu = ioctl(v->vm, KVM_CREATE_VCPU, 0);
		v->run_size = ioctl(v->sys, KVM_GET_VCPU_MMAP_SIZE, 0);
	} else {
		struct rvmx_memory_region r = { .memory_size = MEM_SIZE, .userspace_addr = (uintptr_t)v->mem };

		if (ioctl(v->vm, RVMX_SET_MEMORY_REGION, &r))
			die("RVMX_SET_MEMORY_REGION");
		v->vcpu = ioctl(v->vm, RVMX_CREATE_VCPU, 0);
		v->run_size = 4096;
	}
	if (v->vcpu < 0)
		die("create vCPU");
	v->run = mmap(NULL, v->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->vcpu, 0);
	if (v->run == MAP_FAILED)
		die("mmap run");
	if (kvm) {
		struct kvm_sregs s;
		struct kvm_regs r = { .rip = 0x1000, .rflags = 2 };

		if (ioctl(v->vcpu, KVM_GET_SREGS, &s))
			die("KVM_GET_SREGS");
		s.cs.base = 0;
		s.cs.selector = 0;
		if (ioctl(v->vcpu, KVM_SET_SREGS, &s) || ioctl(v->vcpu, KVM_SET_REGS, &r))
			die("KVM_SET_*REGS");
	} else {
		struct rvmx_sregs s;
		struct rvmx_regs r = { .rip = 0x1000, .rflags = 2 };

		if (ioctl(v->vcpu, RVMX_GET_SREGS, &s))
			die("RVMX_GET_SREGS");
		s.cs.base = 0;
		s.cs.selector = 0;
		if (ioctl(v->vcpu, RVMX_SET_SREGS, &s) || ioctl(v->vcpu, RVMX_SET_REGS, &r))
			die("RVMX_SET_*REGS");
	}
}

/* Runs to the next exit; returns the OUT data, or dies on anything else. */
static uint32_t vm_run_out(struct vm *v)
{
	if (ioctl(v->vcpu, v->kvm ? KVM_RUN : RVMX_RUN, 0))
		die("run");
	if (v->kvm) {
		struct kvm_run *r = v->run;

		if (r->exit_reason != KVM_EXIT_IO || r->io.direction != KVM_EXIT_IO_OUT) {
			fprintf(stderr, "bench: kvm: unexpected exit %u\n", r->exit_reason);
			exit(1);
		}
		return *(uint32_t *)((char *)r + r->io.data_offset) & (r->io.size == 4 ? ~0u : 0xff);
	} else {
		struct rvmx_run *r = v->run;

		if (r->exit_reason != RVMX_EXIT_IO || r->io.direction != RVMX_IO_OUT) {
			fprintf(stderr, "bench: rvmx: unexpected exit %s\n", rvmx_exit_name(r->exit_reason));
			exit(1);
		}
		return (uint32_t)r->io.data;
	}
}

static void vm_destroy(struct vm *v)
{
	munmap(v->run, v->run_size);
	munmap(v->mem, MEM_SIZE);
	close(v->vcpu);
	close(v->vm);
	close(v->sys);
}

struct results {
	long exit_in_kernel, round_trip, create_min, create_median;
};

static int cmp_long(const void *a, const void *b)
{
	return *(const long *)a < *(const long *)b ? -1 : *(const long *)a > *(const long *)b;
}

static void measure(int kvm, struct results *res)
{
	struct vm v;
	uint32_t with_cpuid, with_nop;
	long create[CREATE_REPEATS];
	uint64_t t0;

	vm_create(&v, kvm, cpuid_loop_start, cpuid_loop_end - cpuid_loop_start);
	with_cpuid = vm_run_out(&v);
	vm_destroy(&v);
	vm_create(&v, kvm, nop_loop_start, nop_loop_end - nop_loop_start);
	with_nop = vm_run_out(&v);
	vm_destroy(&v);
	res->exit_in_kernel = ((long)with_cpuid - (long)with_nop) / LOOPS;

	vm_create(&v, kvm, out_loop_start, out_loop_end - out_loop_start);
	for (int i = 0; i < 100; i++)	/* warm up: pin and map, fill caches */
		vm_run_out(&v);
	t0 = __rdtsc();
	for (int i = 0; i < ROUND_TRIPS; i++)
		vm_run_out(&v);
	res->round_trip = (long)(__rdtsc() - t0) / ROUND_TRIPS;
	vm_destroy(&v);

	for (int i = 0; i < CREATE_REPEATS; i++) {
		t0 = __rdtsc();
		vm_create(&v, kvm, out_loop_start, out_loop_end - out_loop_start);
		vm_run_out(&v);
		create[i] = (long)(__rdtsc() - t0);
		vm_destroy(&v);
	}
	qsort(create, CREATE_REPEATS, sizeof(long), cmp_long);
	res->create_min = create[0];
	res->create_median = create[CREATE_REPEATS / 2];
}

static void keep_min(struct results *best, const struct results *now)
{
	long *b = (long *)best;
	const long *n = (const long *)now;

	for (size_t i = 0; i < sizeof(*best) / sizeof(long); i++)
		if (b[i] == 0 || n[i] < b[i])
			b[i] = n[i];
}

int main(void)
{
	struct results r = { 0 }, k = { 0 }, now;
	int err;

	module_unload("rvmx");
	kvm_unload();
	for (int round = 0; round < ROUNDS; round++) {
		if ((err = module_load(RVMX_KO, NULL))) {
			fprintf(stderr, "bench: load rvmx: %s\n", strerror(-err));
			return 1;
		}
		measure(0, &now);
		keep_min(&r, &now);
		module_unload("rvmx");
		if ((err = kvm_load())) {
			fprintf(stderr, "bench: load kvm_intel: %s\n", strerror(-err));
			return 1;
		}
		measure(1, &now);
		keep_min(&k, &now);
		kvm_unload();
	}

	printf("bench in-kernel-exit-cpuid rvmx=%ld kvm=%ld\n", r.exit_in_kernel, k.exit_in_kernel);
	printf("bench userland-round-trip-out rvmx=%ld kvm=%ld\n", r.round_trip, k.round_trip);
	printf("bench create-64MiB-to-first-exit-min rvmx=%ld kvm=%ld\n", r.create_min, k.create_min);
	printf("bench create-64MiB-to-first-exit-median rvmx=%ld kvm=%ld\n", r.create_median, k.create_median);
	return 0;
}
