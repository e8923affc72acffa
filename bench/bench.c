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
 *  - MMIO: the guest stores to an address outside its memory; userland
 *    times N RUNs (rvmx reports the access; KVM also decodes and emulates
 *    the store, so it does more per exit);
 *  - create: VM + 64 MiB memory slot + vCPU + RUN to the first exit, with
 *    private (anonymous) and with shared (shmem) memory;
 *  - touch: a long-mode guest writes one byte in each 4-KiB page of 60 MiB
 *    it never touched: the EPT fault-in cost per page;
 *  - with --trace: one OUT round trip of each backend between two Bochs
 *    magic breakpoints (xchg %bx,%bx), for tools/host.sh to trace and
 *    count VMREAD, VMWRITE, VMPTRLD, VMCLEAR, VMLAUNCH/VMRESUME and WRMSR.
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

/* Store to guest-physical 0x8000000 (DS base; outside the 64 MiB) forever. */
extern const unsigned char mmio_loop_start[], mmio_loop_end[];
asm(".pushsection .rodata\nmmio_loop_start:\n.code16\n"
    "1:	movb %al, (0)\n"
    "	jmp 1b\n"
    ".code64\nmmio_loop_end:\n.popsection\n");

/* Long mode: one byte in each page from 4 MiB to 64 MiB, then OUT. */
extern const unsigned char touch_loop_start[], touch_loop_end[];
asm(".pushsection .rodata\ntouch_loop_start:\n.code64\n"
    "	mov $0x400000, %rdi\n"
    "1:	movb $1, (%rdi)\n"
    "	add $4096, %rdi\n"
    "	cmp $0x4000000, %rdi\n"
    "	jb 1b\n"
    "	out %al, $0xb2\n"
    "	hlt\n"
    "touch_loop_end:\n.popsection\n");
#define TOUCH_PAGES ((0x4000000 - 0x400000) / 4096)

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

/* How the guest starts: real mode at 0x1000, optionally with DS at 128 MiB,
 * or long mode (identity-mapped first GiB, 2 MiB pages) at 0x1000. */
enum mode { REAL, REAL_DS_HIGH, LONG };

/* Page tables and GDT for LONG, in guest memory. */
static void long_mode_tables(unsigned char *mem)
{
	uint64_t *pml4 = (uint64_t *)(mem + 0x10000), *pdpt = pml4 + 512, *pd = pml4 + 1024;
	uint64_t gdt[3] = { 0, 0x00af9b000000ffffull, 0x00cf93000000ffffull };

	pml4[0] = 0x11000 | 3;
	pdpt[0] = 0x12000 | 3;
	for (int j = 0; j < 512; j++)
		pd[j] = ((uint64_t)j << 21) | 0x83;
	memcpy(mem + 0x500, gdt, sizeof(gdt));
}

static int shared_mem;	/* back guest memory with shmem instead of anonymous memory */

static void vm_create_mode(struct vm *v, int kvm, const unsigned char *code, size_t len, enum mode mode);

static void vm_create(struct vm *v, int kvm, const unsigned char *code, size_t len)
{
	vm_create_mode(v, kvm, code, len, REAL);
}

static void vm_create_mode(struct vm *v, int kvm, const unsigned char *code, size_t len, enum mode mode)
{
	memset(v, 0, sizeof(*v));
	v->kvm = kvm;
	v->sys = open(kvm ? "/dev/kvm" : "/dev/rvmx", O_RDWR | O_CLOEXEC);
	if (v->sys < 0)
		die("open");
	v->vm = ioctl(v->sys, kvm ? KVM_CREATE_VM : RVMX_CREATE_VM, 0);
	if (v->vm < 0)
		die("create VM");
	v->mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE,
		      (shared_mem ? MAP_SHARED : MAP_PRIVATE) | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (v->mem == MAP_FAILED)
		die("mmap");
	memcpy(v->mem + 0x1000, code, len);
	if (mode == LONG)
		long_mode_tables(v->mem);
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

		if (mode == LONG) {
			/* KVM refuses EFER.LME unless the guest's CPUID has long mode. */
			static struct {
				struct kvm_cpuid2 c;
				struct kvm_cpuid_entry2 e[100];
			} cpuid = { .c.nent = 100 };

			cpuid.c.nent = 100;
			if (ioctl(v->sys, KVM_GET_SUPPORTED_CPUID, &cpuid) || ioctl(v->vcpu, KVM_SET_CPUID2, &cpuid))
				die("KVM CPUID");
		}
		if (ioctl(v->vcpu, KVM_GET_SREGS, &s))
			die("KVM_GET_SREGS");
		s.cs.base = 0;
		s.cs.selector = 0;
		if (mode == REAL_DS_HIGH)
			s.ds.base = 0x8000000;
		if (mode == LONG) {
			struct kvm_segment code = { .limit = 0xffffffff, .selector = 8, .type = 11, .present = 1,
						    .s = 1, .l = 1, .g = 1 };
			struct kvm_segment data = { .limit = 0xffffffff, .selector = 16, .type = 3, .present = 1,
						    .s = 1, .db = 1, .g = 1 };

			s.cs = code;
			s.ds = s.es = s.fs = s.gs = s.ss = data;
			s.gdt.base = 0x500;
			s.gdt.limit = 23;
			s.cr0 = 0x80000011;
			s.cr3 = 0x10000;
			s.cr4 = 0x20;
			s.efer = 0x500;
		}
		if (ioctl(v->vcpu, KVM_SET_SREGS, &s))
			die(mode == LONG ? "KVM_SET_SREGS (long mode)" : "KVM_SET_SREGS");
		if (ioctl(v->vcpu, KVM_SET_REGS, &r))
			die("KVM_SET_REGS");
	} else {
		struct rvmx_sregs s;
		struct rvmx_regs r = { .rip = 0x1000, .rflags = 2 };

		if (ioctl(v->vcpu, RVMX_GET_SREGS, &s))
			die("RVMX_GET_SREGS");
		s.cs.base = 0;
		s.cs.selector = 0;
		if (mode == REAL_DS_HIGH)
			s.ds.base = 0x8000000;
		if (mode == LONG) {
			struct rvmx_segment data = { .limit = 0xffffffff, .selector = 16, .ar = 0xc093 };

			s.cs = (struct rvmx_segment){ .limit = 0xffffffff, .selector = 8, .ar = 0xa09b };
			s.ds = s.es = s.fs = s.gs = s.ss = data;
			s.gdt = (struct rvmx_dtable){ .base = 0x500, .limit = 23 };
			s.cr0 = 0x80000011;
			s.cr3 = 0x10000;
			s.cr4 = 0x20;
			s.efer = 0x500;
		}
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

/* Runs to the next exit, which must be an MMIO write to 0x8000000. */
static void vm_run_mmio(struct vm *v)
{
	if (ioctl(v->vcpu, v->kvm ? KVM_RUN : RVMX_RUN, 0))
		die("run");
	if (v->kvm) {
		struct kvm_run *r = v->run;

		if (r->exit_reason == KVM_EXIT_MMIO && r->mmio.phys_addr == 0x8000000 && r->mmio.is_write)
			return;
		fprintf(stderr, "bench: kvm: unexpected exit %u\n", r->exit_reason);
	} else {
		struct rvmx_run *r = v->run;

		if (r->exit_reason == RVMX_EXIT_MMIO && r->mmio.gpa == 0x8000000)
			return;
		fprintf(stderr, "bench: rvmx: unexpected exit %s\n", rvmx_exit_name(r->exit_reason));
	}
	exit(1);
}

struct results {
	long exit_in_kernel, round_trip, mmio, create_min, create_median, create_shared_min, touch_per_page;
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

	vm_create_mode(&v, kvm, mmio_loop_start, mmio_loop_end - mmio_loop_start, REAL_DS_HIGH);
	for (int i = 0; i < 100; i++)
		vm_run_mmio(&v);
	t0 = __rdtsc();
	for (int i = 0; i < ROUND_TRIPS; i++)
		vm_run_mmio(&v);
	res->mmio = (long)(__rdtsc() - t0) / ROUND_TRIPS;
	vm_destroy(&v);

	for (int shared = 0; shared < 2; shared++) {
		shared_mem = shared;
		for (int i = 0; i < CREATE_REPEATS; i++) {
			t0 = __rdtsc();
			vm_create(&v, kvm, out_loop_start, out_loop_end - out_loop_start);
			vm_run_out(&v);
			create[i] = (long)(__rdtsc() - t0);
			vm_destroy(&v);
		}
		qsort(create, CREATE_REPEATS, sizeof(long), cmp_long);
		if (shared) {
			res->create_shared_min = create[0];
		} else {
			res->create_min = create[0];
			res->create_median = create[CREATE_REPEATS / 2];
		}
	}
	shared_mem = 0;

	vm_create_mode(&v, kvm, touch_loop_start, touch_loop_end - touch_loop_start, LONG);
	t0 = __rdtsc();
	vm_run_out(&v);
	res->touch_per_page = (long)(__rdtsc() - t0) / TOUCH_PAGES;
	vm_destroy(&v);
}

/* A Bochs magic breakpoint: tools/host.sh turns instruction tracing on at
 * the first and off at the second. */
static void magic_break(void)
{
	asm volatile("xchg %%bx, %%bx" ::: "memory");
}

/* One warm OUT round trip of `kvm` between two magic breakpoints. */
static void trace_round_trip(int kvm)
{
	struct vm v;

	vm_create(&v, kvm, out_loop_start, out_loop_end - out_loop_start);
	for (int i = 0; i < 100; i++)
		vm_run_out(&v);
	magic_break();
	vm_run_out(&v);
	magic_break();
	vm_destroy(&v);
}

static void keep_min(struct results *best, const struct results *now)
{
	long *b = (long *)best;
	const long *n = (const long *)now;

	for (size_t i = 0; i < sizeof(*best) / sizeof(long); i++)
		if (b[i] == 0 || n[i] < b[i])
			b[i] = n[i];
}

int main(int argc, char **argv)
{
	struct results r = { 0 }, k = { 0 }, now;
	int err;

	module_unload("rvmx");
	kvm_unload();
	if (argc > 1 && !strcmp(argv[1], "--trace")) {
		if ((err = module_load(RVMX_KO, NULL)))
			return 1;
		printf("bench-trace rvmx\n");
		fflush(stdout);
		trace_round_trip(0);
		module_unload("rvmx");
		if ((err = kvm_load()))
			return 1;
		printf("bench-trace kvm\n");
		fflush(stdout);
		trace_round_trip(1);
		kvm_unload();
		return 0;
	}
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
	printf("bench mmio-round-trip rvmx=%ld kvm=%ld\n", r.mmio, k.mmio);
	printf("bench create-64MiB-to-first-exit-min rvmx=%ld kvm=%ld\n", r.create_min, k.create_min);
	printf("bench create-64MiB-to-first-exit-median rvmx=%ld kvm=%ld\n", r.create_median, k.create_median);
	printf("bench create-64MiB-shared-to-first-exit-min rvmx=%ld kvm=%ld\n", r.create_shared_min, k.create_shared_min);
	printf("bench ept-fault-in-per-page rvmx=%ld kvm=%ld\n", r.touch_per_page, k.touch_per_page);
	return 0;
}
