/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Guest tests in C, like KVM's selftest library: the guest runs plain C
 * functions of the test binary itself.
 *
 * gt_create() makes a VM with 64 MiB of memory at GPA 0, copies the
 * binary's loadable segments there at GPA = VA (the selftests are static,
 * non-PIE), identity-maps the low 4 GiB (above 64 MiB: no memory, so
 * accesses there are MMIO), and starts each vCPU in 64-bit mode
 * at the guest function with RDI = its argument, on a stack of its own.
 * Results travel by "ucall": an OUT of the address of a small record to
 * GT_UCALL_PORT; the host reads the record from guest memory.
 *
 * Guest code must not call libc (string functions are ifunc'd to AVX
 * versions, and the guest has no XCR0), nor use thread-locals (FS base 0).
 * The guest's globals are a copy taken at gt_create(): writes on either side
 * do not reach the other (use GT_GUEST() for the guest's copy).
 */
#ifndef RVMX_SELFTEST_GTEST_H
#define RVMX_SELFTEST_GTEST_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "../../clients/c/rvmx.h"

/* ---- guest memory layout (guest-physical = guest-virtual) ---- */
#define GT_MEM_SIZE	(64ull << 20)
#define GT_TABLES_GPA	0x2000000ull	/* PML4, PDPT, PD, then 4-KiB page tables */
#define GT_NR_PTS	16		/* 2-MiB pages gt_pte() may split */
#define GT_PD_HI_GPA	(GT_TABLES_GPA + 0x3000 + GT_NR_PTS * 0x1000ull) /* PDs for 1-4 GiB */
#define GT_GDT_GPA	0x2020000ull
#define GT_TSS_GPA	0x2021000ull
#define GT_IDT_GPA	0x2022000ull
#define GT_STACKS_GPA	0x2100000ull	/* GT_STACK_SIZE per vCPU */
#define GT_STACK_SIZE	0x10000ull
#define GT_SCRATCH_GPA	0x3000000ull	/* [48 MiB, 64 MiB): free for tests */
#define GT_MAX_VCPUS	8

/* Selectors in the library's GDT. */
#define GT_CS		0x08	/* 64-bit code */
#define GT_DS		0x10	/* data, also SS */
#define GT_TR		0x18	/* 64-bit TSS (16-byte descriptor) */
#define GT_GDT_LIMIT	(5 * 8 - 1)
#define GT_IDT_VECTORS	32	/* IDT limit covers the exceptions only... */
#define GT_IDT_ALL	256	/* ...until gt_install_irq_handler() */

/* 4-KiB page-table entry bits (SDM Vol. 3A 4.5, Table 4-20). */
#define GT_PTE_P	(1ull << 0)
#define GT_PTE_W	(1ull << 1)
#define GT_PTE_NX	(1ull << 63)

/* The port a ucall writes to (32-bit OUT of the record's address). */
#define GT_UCALL_PORT	0xe7

enum gt_ucall_kind {
	UCALL_NONE = 0,		/* no ucall: gt_run() saw another exit */
	UCALL_SYNC,		/* GUEST_SYNC(v): args[0] = v */
	UCALL_DONE,		/* GUEST_DONE(), or the guest function returned */
	UCALL_ASSERT,		/* GUEST_ASSERT*(): expr, file, line, args[0..1] */
	UCALL_EXCEPTION,	/* an exception with no handler: args[GT_EXC_*] */
};

/* args[] of UCALL_EXCEPTION. */
#define GT_EXC_VECTOR	0
#define GT_EXC_ERROR	1	/* 0 for vectors without an error code */
#define GT_EXC_RIP	2	/* as saved by the CPU (SDM Vol. 3A 6.14.2) */
#define GT_EXC_CR2	3	/* #PF only */

/* The record the guest passes; in guest memory (its stack). */
struct gt_ucall_msg {
	uint64_t kind;
	uint64_t args[4];
	uint64_t line;
	uint64_t file;		/* guest address of a string, or 0 */
	uint64_t expr;		/* guest address of a string, or 0 */
};

/* What gt_run() hands back: the record with its strings read. */
struct gt_ucall {
	uint64_t kind;
	uint64_t args[4];
	uint64_t line;
	char file[96];
	char expr[160];
};

/* What an exception stub saves (lowest address first): the general
 * registers it pushes, the vector, the error code (0 pushed by the stub
 * where the CPU pushes none), then the CPU's frame. A handler may change
 * any of it; IRETQ then resumes at `rip`. */
struct gt_exc_frame {
	uint64_t r15, r14, r13, r12, r11, r10, r9, r8;
	uint64_t rdi, rsi, rbp, rbx, rdx, rcx, rax;
	uint64_t vector, error_code;
	uint64_t rip, cs, rflags, rsp, ss;
};

typedef void (*gt_guest_fn)(uint64_t arg);
typedef void (*gt_handler_fn)(struct gt_exc_frame *frame);

struct gt_vm;

struct gt_vcpu {
	struct rvmx_vcpu rv;
	struct gt_vm *vm;
	int id;
};

struct gt_vm {
	int sys;
	struct rvmx_vm rv;
	struct gt_vcpu vcpu[GT_MAX_VCPUS];
	int nr_vcpus;
	uint8_t *mem;
	size_t mem_size;
	int nr_pts;		/* page tables used by gt_pte() */
	int idt_vectors;	/* the IDT limit vCPUs get: GT_IDT_VECTORS or GT_IDT_ALL */
};

/* ---- host side ---- */

/* A VM with one vCPU that runs fn(0). 0 or -errno. */
int gt_create(struct gt_vm *vm, gt_guest_fn fn);
/* A VM with `nr` vCPUs; vCPU i runs fn(i). 0 or -errno. */
int gt_create_vcpus(struct gt_vm *vm, int nr, gt_guest_fn fn);
/* (Re)starts a vCPU at fn(arg) in 64-bit mode on its stack, with the
 * library's registers (also CR0, CR4, EFER, segments). 0 or -errno. */
int gt_vcpu_start(struct gt_vcpu *vcpu, gt_guest_fn fn, uint64_t arg);
void gt_destroy(struct gt_vm *vm);
/* The host address of guest-physical `gpa` (NULL outside memory). */
void *gt_hva(struct gt_vm *vm, uint64_t gpa);
/* The guest's copy of global `var`, as an lvalue. */
#define GT_GUEST(vm, var) (*(__typeof__(&(var)))gt_hva(vm, (uintptr_t)&(var)))
/* Makes `fn` (a function of this binary) the guest's handler for
 * exception `vector` (< 32); NULL restores the default (UCALL_EXCEPTION).
 * 0 or -EINVAL. */
int gt_install_handler(struct gt_vm *vm, int vector, gt_handler_fn fn);
/* Makes `fn` the guest's handler for interrupt `vector` (32..255; the stub
 * pushes error code 0) and extends every vCPU's IDT limit to all 256
 * vectors (vCPUs started later get it too). The handler runs with IF 0 (an
 * interrupt gate); there is no APIC to EOI. NULL: back to UCALL_EXCEPTION.
 * 0 or -EINVAL. */
int gt_install_irq_handler(struct gt_vm *vm, int vector, gt_handler_fn fn);
/* The 4-KiB PTE that maps guest-virtual `gva` (< 1 GiB), splitting its
 * 2-MiB page first; NULL if no page table is left. Change it before the
 * guest runs, or have the guest INVLPG. */
uint64_t *gt_pte(struct gt_vm *vm, uint64_t gva);
/* The ucall the vCPU's last exit (RVMX_RUN returned 0) is, filling *uc;
 * UCALL_NONE, silently, for any other exit. */
int gt_exit_ucall(struct gt_vcpu *vcpu, struct gt_ucall *uc);
/* Runs the vCPU to its next ucall and returns its kind (filling *uc).
 * Any other exit (or a failed RVMX_RUN) is printed with the exit record
 * and gives UCALL_NONE. */
int gt_run(struct gt_vcpu *vcpu, struct gt_ucall *uc);
/* Prints a ucall ("# " lines, for TAP) to f. */
void gt_ucall_print(FILE *f, const struct gt_ucall *uc);

/* In a kselftest_harness test: the next ucall must be of `kind` (else it
 * is printed and the test fails). */
#define GT_RUN_EXPECT(vcpu, uc, want)					\
	do {								\
		int __k = gt_run(vcpu, uc);				\
		if (__k != (want) && __k != UCALL_NONE)			\
			gt_ucall_print(stderr, uc);			\
		ASSERT_EQ(want, __k);					\
	} while (0)

/* ---- guest side ---- */

/* Sends a ucall; for UCALL_DONE and UCALL_ASSERT it never returns (it
 * repeats the ucall if the host runs the vCPU again). */
void gt_ucall(uint64_t kind, const char *file, uint64_t line, const char *expr,
	      uint64_t a0, uint64_t a1);

/* Touches the IDT and GDT, which exception delivery reads: rvmx maps guest
 * pages on first touch, and an exit in the middle of a delivery loses a
 * trap (rvmx does not yet re-inject from the IDT-vectoring information,
 * SDM Vol. 3C 28.2.4), so tests of traps call this first. */
void gt_touch_tables(void);

#define GUEST_SYNC(v)	gt_ucall(UCALL_SYNC, NULL, 0, NULL, (uint64_t)(v), 0)
#define GUEST_DONE()	gt_ucall(UCALL_DONE, NULL, 0, NULL, 0, 0)
#define GUEST_ASSERT(cond)						\
	do {								\
		if (!(cond))						\
			gt_ucall(UCALL_ASSERT, __FILE__, __LINE__, #cond, 0, 0); \
	} while (0)
#define GUEST_ASSERT_EQ(a, b)						\
	do {								\
		uint64_t __a = (uint64_t)(a), __b = (uint64_t)(b);	\
		if (__a != __b)						\
			gt_ucall(UCALL_ASSERT, __FILE__, __LINE__,	\
				 #a " == " #b, __a, __b);		\
	} while (0)

#endif
