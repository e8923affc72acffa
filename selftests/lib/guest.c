// SPDX-License-Identifier: GPL-2.0
#include "guest.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int guest_create(struct guest *g, size_t mem_size, int nr_vcpus,
		 const unsigned char *code, const unsigned char *code_end)
{
	int r;

	memset(g, 0, sizeof(*g));
	g->vm.fd = -1;
	g->sys = rvmx_open();
	if (g->sys < 0)
		return g->sys;
	r = rvmx_create_vm(g->sys, &g->vm);
	if (r)
		return r;
	g->mem = mmap(NULL, mem_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (g->mem == MAP_FAILED) {
		g->mem = NULL;
		return -ENOMEM;
	}
	g->mem_size = mem_size;
	if (code)
		memcpy(g->mem + GUEST_CODE_GPA, code, code_end - code);
	r = rvmx_set_memory(&g->vm, 0, 0, g->mem, mem_size);
	if (r)
		return r;
	for (int i = 0; i < nr_vcpus; i++) {
		r = rvmx_create_vcpu(&g->vm, i, &g->vcpu[i]);
		if (r)
			return r;
		g->nr_vcpus++;
	}
	return 0;
}

void guest_destroy(struct guest *g)
{
	for (int i = 0; i < g->nr_vcpus; i++)
		rvmx_vcpu_close(&g->vcpu[i]);
	rvmx_vm_close(&g->vm);
	if (g->mem)
		munmap(g->mem, g->mem_size);
	if (g->sys >= 0)
		close(g->sys);
	g->sys = -1;
	g->mem = NULL;
	g->nr_vcpus = 0;
}

static int set_start(struct guest *g, int i, struct rvmx_sregs *s)
{
	struct rvmx_regs regs = { .rip = GUEST_CODE_GPA, .rflags = 2, .rsp = 0x8000 };
	int r = rvmx_set_sregs(&g->vcpu[i], s);

	return r ? r : rvmx_set_regs(&g->vcpu[i], &regs);
}

int guest_real_mode(struct guest *g, int i)
{
	struct rvmx_sregs s;
	int r = rvmx_get_sregs(&g->vcpu[i], &s);

	if (r)
		return r;
	s.cs.selector = 0;
	s.cs.base = 0;
	return set_start(g, i, &s);
}

static void flat_segments(struct rvmx_sregs *s, uint32_t code_ar)
{
	struct rvmx_segment data = { .base = 0, .limit = 0xffffffff, .selector = 0x10, .ar = 0xc093 };

	memset(s, 0, sizeof(*s));
	s->cs = (struct rvmx_segment){ .base = 0, .limit = 0xffffffff, .selector = 0x08, .ar = code_ar };
	s->ds = s->es = s->fs = s->gs = s->ss = data;
	s->tr = (struct rvmx_segment){ .limit = 0xffff, .ar = 0x8b };
	s->ldtr = (struct rvmx_segment){ .ar = 1 << 16 };	/* unusable */
	s->gdt = (struct rvmx_dtable){ .base = GUEST_GDT_GPA, .limit = 3 * 8 - 1 };
	s->idt = (struct rvmx_dtable){ .base = 0, .limit = 0 };
}

static void write_gdt(struct guest *g, uint64_t code)
{
	uint64_t gdt[3] = { 0, code, 0x00cf93000000ffffull };

	memcpy(g->mem + GUEST_GDT_GPA, gdt, sizeof(gdt));
}

int guest_protected_mode(struct guest *g, int i)
{
	struct rvmx_sregs s;

	write_gdt(g, 0x00cf9b000000ffffull);
	flat_segments(&s, 0xc09b);
	s.cr0 = 0x11;	/* PE | ET */
	return set_start(g, i, &s);
}

int guest_long_mode(struct guest *g, int i)
{
	uint64_t *pml4 = (uint64_t *)(g->mem + GUEST_PML4_GPA);
	uint64_t *pdpt = pml4 + 512, *pd = pml4 + 1024;
	struct rvmx_sregs s;

	if (g->mem_size < GUEST_PML4_GPA + 3 * 4096)
		return -EINVAL;
	pml4[0] = (GUEST_PML4_GPA + 0x1000) | 3;
	pdpt[0] = (GUEST_PML4_GPA + 0x2000) | 3;
	for (int j = 0; j < 512; j++)
		pd[j] = ((uint64_t)j << 21) | 0x83;	/* 2 MiB, present, writable */
	write_gdt(g, 0x00af9b000000ffffull);
	flat_segments(&s, 0xa09b);	/* L = 1 */
	s.cr0 = 0x80000011;	/* PG | ET | PE */
	s.cr3 = GUEST_PML4_GPA;
	s.cr4 = 0x20;		/* PAE */
	s.efer = 0x500;		/* LME | LMA */
	return set_start(g, i, &s);
}

int64_t guest_expect_out(struct guest *g, int i, uint16_t port)
{
	struct rvmx_run *run = g->vcpu[i].run;
	int r = rvmx_run(&g->vcpu[i]);

	if (r) {
		fprintf(stderr, "# vCPU %d: RVMX_RUN: %s\n", i, strerror(-r));
		return -1;
	}
	if (run->exit_reason != RVMX_EXIT_IO || run->io.direction != RVMX_IO_OUT || run->io.port != port) {
		fprintf(stderr, "# vCPU %d: expected OUT to %#x, got exit %s (port %#x dir %u, vmx reason %u qual %#llx)\n",
			i, port, rvmx_exit_name(run->exit_reason), run->io.port, run->io.direction,
			run->vmx.reason, (unsigned long long)run->vmx.qualification);
		return -1;
	}
	return (int64_t)run->io.data;
}

int rvmx_refcnt(void)
{
	FILE *f = fopen("/sys/module/rvmx/refcnt", "r");
	int n = -1;

	if (f) {
		if (fscanf(f, "%d", &n) != 1)
			n = -1;
		fclose(f);
	}
	return n;
}

/* Real mode: spins until the byte at 0x2000 is set, then OUTs 0x77 to port
 * 0x70 and halts (tests that interrupt or move a running guest). */
asm(".pushsection .rodata\n.globl spin_start, spin_end\nspin_start:\n.code16\n"
    "1:	cmpb $0, (0x2000)\n"
    "	je 1b\n"
    "	mov $0x77, %al\n"
    "	out %al, $0x70\n"
    "	hlt\n"
    ".code64\nspin_end:\n.popsection\n");
