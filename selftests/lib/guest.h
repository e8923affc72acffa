/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A VM with one memory slot (guest-physical 0) and vCPUs, and the guest
 * modes the tests use. Guest code is assembled into the test binary
 * (GUEST_CODE) and copied into guest memory.
 */
#ifndef RVMX_SELFTEST_GUEST_H
#define RVMX_SELFTEST_GUEST_H

#include <stddef.h>
#include <stdint.h>
#include "../../clients/c/rvmx.h"

#define GUEST_CODE_GPA	0x1000	/* code is loaded and entered here */
#define GUEST_GDT_GPA	0x500
#define GUEST_PML4_GPA	0x10000	/* long mode: PML4, PDPT, PD: 1 GiB identity-mapped */

struct guest {
	int sys;
	struct rvmx_vm vm;
	struct rvmx_vcpu vcpu[8];
	int nr_vcpus;
	unsigned char *mem;
	size_t mem_size;
};

/* Defines code blob `name` (name##_start .. name##_end) from assembly. */
#define GUEST_CODE(name, mode, body)					\
	extern const unsigned char name##_start[], name##_end[];	\
	asm(".pushsection .rodata\n" #name "_start:\n" mode "\n" body	\
	    "\n.code64\n" #name "_end:\n.popsection\n")

/* The address in guest memory of `label` in blob `name`. */
#define GUEST_ADDR(name, label) \
	"(" #label " - " #name "_start + 0x1000)"

/* Real mode: spins until the byte at 0x2000 is set, then OUTs 0x77 to port
 * 0x70 and halts. */
extern const unsigned char spin_start[], spin_end[];

/* VM + memory (slot 0 at 0) + `nr_vcpus` vCPUs; code copied to 0x1000. */
int guest_create(struct guest *g, size_t mem_size, int nr_vcpus,
		 const unsigned char *code, const unsigned char *code_end);
void guest_destroy(struct guest *g);
/* Sets vCPU `i` up to start at GUEST_CODE_GPA in each mode. */
int guest_real_mode(struct guest *g, int i);
int guest_protected_mode(struct guest *g, int i);
int guest_long_mode(struct guest *g, int i);
/* Runs vCPU `i` and checks the exit is an OUT to `port`; returns the data
 * or -1 (after printing what came instead). */
int64_t guest_expect_out(struct guest *g, int i, uint16_t port);
/* /sys/module/rvmx/refcnt, or -1. */
int rvmx_refcnt(void);

#endif
