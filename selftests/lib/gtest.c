// SPDX-License-Identifier: GPL-2.0
/*
 * The guest test library (gtest.h): host side builds a 64-bit guest out of
 * the test binary; guest side is the ucall and the exception entry.
 */
#include "gtest.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* CR0, CR4 and EFER bits (SDM Vol. 3A 2.5, 2.2.1). */
#define CR0_PE		(1ull << 0)
#define CR0_MP		(1ull << 1)
#define CR0_ET		(1ull << 4)
#define CR0_NE		(1ull << 5)
#define CR0_WP		(1ull << 16)
#define CR0_PG		(1ull << 31)
#define CR4_PAE		(1ull << 5)
#define CR4_OSFXSR	(1ull << 9)
#define CR4_OSXMMEXCPT	(1ull << 10)
#define EFER_LME	(1ull << 8)
#define EFER_LMA	(1ull << 10)
#define EFER_NXE	(1ull << 11)
#define PDE_PS		(1ull << 7)
#define PTE_ADDR	0x000ffffffffff000ull

/* The guest's handler table: the host writes the guest's copy. */
gt_handler_fn gt_handlers[GT_IDT_ALL];

/* Entry stubs (gt_exc_stub_table[v] is vector v's) and the address a guest
 * function returns to; defined in the assembly below. */
extern const uint64_t gt_exc_stub_table[GT_IDT_ALL];
extern const char gt_guest_return[];

/* ---------------- guest side ----------------
 * No SSE here: the #NM tests run this code with CR0.TS set. */
#pragma GCC push_options
#pragma GCC target("general-regs-only")

static void ucall_out(struct gt_ucall_msg *m)
{
	/* The record is below 4 GiB (guest stacks are in low memory). */
	asm volatile("outl %%eax, %%dx"
		     : : "a"((uint32_t)(uintptr_t)m), "d"((uint16_t)GT_UCALL_PORT) : "memory");
}

void gt_ucall(uint64_t kind, const char *file, uint64_t line, const char *expr,
	      uint64_t a0, uint64_t a1)
{
	struct gt_ucall_msg m;

	m.kind = kind;
	m.args[0] = a0;
	m.args[1] = a1;
	m.args[2] = 0;
	m.args[3] = 0;
	m.line = line;
	m.file = (uintptr_t)file;
	m.expr = (uintptr_t)expr;
	do
		ucall_out(&m);
	while (kind == UCALL_DONE || kind == UCALL_ASSERT);
}

void gt_touch_tables(void)
{
	(void)*(volatile uint64_t *)GT_IDT_GPA;
	(void)*(volatile uint64_t *)GT_GDT_GPA;
}

/* A guest function returning lands here (via gt_guest_return). */
__attribute__((used, noreturn)) void gt_guest_done(void)
{
	for (;;)
		GUEST_DONE();
}

/* Called by the entry stubs with the saved frame. */
__attribute__((used)) void gt_exc_dispatch(struct gt_exc_frame *f)
{
	gt_handler_fn h = f->vector < GT_IDT_ALL ? ((gt_handler_fn volatile *)gt_handlers)[f->vector] : NULL;
	struct gt_ucall_msg m;
	uint64_t cr2 = 0;

	if (h) {
		h(f);
		return;
	}
	if (f->vector == 14)	/* #PF: the linear address (SDM Vol. 3A 6.15) */
		asm volatile("mov %%cr2, %0" : "=r"(cr2));
	m.kind = UCALL_EXCEPTION;
	m.args[GT_EXC_VECTOR] = f->vector;
	m.args[GT_EXC_ERROR] = f->error_code;
	m.args[GT_EXC_RIP] = f->rip;
	m.args[GT_EXC_CR2] = cr2;
	m.line = 0;
	m.file = 0;
	m.expr = 0;
	for (;;)
		ucall_out(&m);
}

#pragma GCC pop_options

/*
 * One stub per exception vector: vectors for which the CPU pushes no error
 * code get a 0 pushed, so every frame looks alike (SDM Vol. 3A 6.13: 8,
 * 10-14, 17, 21, 29 and 30 have one). Then the vector, the general
 * registers, and a call of gt_exc_dispatch() on a 16-byte aligned stack;
 * back with IRETQ. Guest code is built with -mno-red-zone (the frames are
 * pushed on the interrupted stack).
 */
asm(".pushsection .text\n"
    ".macro gt_stub v\n"
    "gt_exc_stub_\\v:\n"
    "	.if (\\v == 8) || ((\\v >= 10) && (\\v <= 14)) || (\\v == 17) || (\\v == 21) || (\\v == 29) || (\\v == 30)\n"
    "	.else\n"
    "	pushq $0\n"
    "	.endif\n"
    "	pushq $\\v\n"
    "	jmp gt_exc_common\n"
    ".endm\n"
    ".irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31\n"
    "	gt_stub \\v\n"
    ".endr\n"
    /* Interrupts 0x20-0xff (no error code), named by their hex digits. */
    ".irp hi, 2,3,4,5,6,7,8,9,a,b,c,d,e,f\n"
    ".irp lo, 0,1,2,3,4,5,6,7,8,9,a,b,c,d,e,f\n"
    "gt_irq_stub_\\hi\\lo:\n"
    "	pushq $0\n"
    "	pushq $0x\\hi\\lo\n"
    "	jmp gt_exc_common\n"
    ".endr\n"
    ".endr\n"
    "gt_exc_common:\n"
    "	push %rax\n push %rcx\n push %rdx\n push %rbx\n push %rbp\n push %rsi\n push %rdi\n"
    "	push %r8\n push %r9\n push %r10\n push %r11\n push %r12\n push %r13\n push %r14\n push %r15\n"
    "	mov %rsp, %rdi\n"
    "	mov %rsp, %rbx\n"	/* callee-saved: the frame, across the call */
    "	and $-16, %rsp\n"
    "	cld\n"
    "	call gt_exc_dispatch\n"
    "	mov %rbx, %rsp\n"
    "	pop %r15\n pop %r14\n pop %r13\n pop %r12\n pop %r11\n pop %r10\n pop %r9\n pop %r8\n"
    "	pop %rdi\n pop %rsi\n pop %rbp\n pop %rbx\n pop %rdx\n pop %rcx\n pop %rax\n"
    "	add $16, %rsp\n"	/* vector and error code */
    "	iretq\n"
    /* A guest function returns here, with RSP 16-byte aligned. */
    "gt_guest_return:\n"
    "	call gt_guest_done\n"
    "	ud2\n"
    ".popsection\n"
    ".pushsection .rodata\n"
    ".balign 8\n"
    "gt_exc_stub_table:\n"
    ".irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31\n"
    "	.quad gt_exc_stub_\\v\n"
    ".endr\n"
    ".irp hi, 2,3,4,5,6,7,8,9,a,b,c,d,e,f\n"
    ".irp lo, 0,1,2,3,4,5,6,7,8,9,a,b,c,d,e,f\n"
    "	.quad gt_irq_stub_\\hi\\lo\n"
    ".endr\n"
    ".endr\n"
    ".purgem gt_stub\n"
    ".popsection\n");

/* ---------------- host side ---------------- */

void *gt_hva(struct gt_vm *vm, uint64_t gpa)
{
	return gpa < vm->mem_size ? vm->mem + gpa : NULL;
}

/* Copies the binary's PT_LOAD segments, as they are in this process now,
 * to guest memory at GPA = VA (a static non-PIE binary runs at its link
 * addresses). */
static int load_image(struct gt_vm *vm)
{
	Elf64_Ehdr eh;
	Elf64_Phdr ph;
	int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC), r = 0;

	if (fd < 0)
		return -errno;
	if (pread(fd, &eh, sizeof(eh), 0) != sizeof(eh) || memcmp(eh.e_ident, ELFMAG, SELFMAG) ||
	    eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_type != ET_EXEC || eh.e_phentsize != sizeof(ph)) {
		fprintf(stderr, "# gtest: /proc/self/exe is not a static non-PIE 64-bit executable\n");
		r = -ENOEXEC;
		goto out;
	}
	for (int i = 0; i < eh.e_phnum; i++) {
		if (pread(fd, &ph, sizeof(ph), eh.e_phoff + i * sizeof(ph)) != sizeof(ph)) {
			r = -EIO;
			goto out;
		}
		if (ph.p_type != PT_LOAD)
			continue;
		if (ph.p_vaddr + ph.p_memsz > GT_TABLES_GPA) {
			fprintf(stderr, "# gtest: segment at %#llx+%#llx overlaps the library's area\n",
				(unsigned long long)ph.p_vaddr, (unsigned long long)ph.p_memsz);
			r = -E2BIG;
			goto out;
		}
		memcpy(vm->mem + ph.p_vaddr, (const void *)(uintptr_t)ph.p_vaddr, ph.p_memsz);
	}
out:
	close(fd);
	return r;
}

/* 4-level paging, the low 4 GiB identity-mapped with 2-MiB pages
 * (SDM Vol. 3A 4.5); GDT with a 64-bit TSS; IDT of interrupt gates to the
 * stubs (SDM Vol. 3A 6.14.1), all 256 (the IDT limit decides how many the
 * guest has). */
static void build_tables(struct gt_vm *vm)
{
	uint64_t *pml4 = gt_hva(vm, GT_TABLES_GPA), *pdpt = pml4 + 512, *pd = pml4 + 1024;
	uint64_t *gdt = gt_hva(vm, GT_GDT_GPA), *idt = gt_hva(vm, GT_IDT_GPA);
	uint64_t tss = GT_TSS_GPA, limit = 0x67;

	pml4[0] = (GT_TABLES_GPA + 0x1000) | GT_PTE_P | GT_PTE_W;
	pdpt[0] = (GT_TABLES_GPA + 0x2000) | GT_PTE_P | GT_PTE_W;
	for (uint64_t i = 0; i < 512; i++)
		pd[i] = (i << 21) | PDE_PS | GT_PTE_P | GT_PTE_W;
	for (uint64_t g = 1; g < 4; g++) {
		uint64_t pd_gpa = GT_PD_HI_GPA + (g - 1) * 0x1000;
		uint64_t *hi = gt_hva(vm, pd_gpa);

		pdpt[g] = pd_gpa | GT_PTE_P | GT_PTE_W;
		for (uint64_t i = 0; i < 512; i++)
			hi[i] = (g << 30 | i << 21) | PDE_PS | GT_PTE_P | GT_PTE_W;
	}

	gdt[0] = 0;
	gdt[1] = 0x00af9b000000ffffull;	/* code: L, P, DPL 0, execute/read, accessed */
	gdt[2] = 0x00cf93000000ffffull;	/* data: G, D/B, P, read/write, accessed */
	/* 64-bit TSS, busy (type 11), 16 bytes (SDM Vol. 3A 8.2.3) */
	gdt[3] = (limit & 0xffff) | (tss & 0xffffff) << 16 | 0x8bull << 40 |
		 ((limit >> 16) & 0xf) << 48 | ((tss >> 24) & 0xff) << 56;
	gdt[4] = tss >> 32;

	for (int v = 0; v < GT_IDT_ALL; v++) {
		uint64_t off = gt_exc_stub_table[v];

		/* 64-bit interrupt gate, P, DPL 0, IST 0 */
		idt[2 * v] = (off & 0xffff) | (uint64_t)GT_CS << 16 | 0x8eull << 40 |
			     ((off >> 16) & 0xffff) << 48;
		idt[2 * v + 1] = off >> 32;
	}
}

int gt_vcpu_start(struct gt_vcpu *vcpu, gt_guest_fn fn, uint64_t arg)
{
	struct gt_vm *vm = vcpu->vm;
	struct rvmx_segment data = { .limit = 0xffffffff, .selector = GT_DS, .ar = 0xc093 };
	uint64_t top = GT_STACKS_GPA + (vcpu->id + 1) * GT_STACK_SIZE;
	struct rvmx_sregs s = {
		.cs = { .limit = 0xffffffff, .selector = GT_CS, .ar = 0xa09b },	/* L = 1 */
		.ds = data, .es = data, .fs = data, .gs = data, .ss = data,
		.tr = { .base = GT_TSS_GPA, .limit = 0x67, .selector = GT_TR, .ar = 0x8b },
		.ldtr = { .ar = 1 << 16 },	/* unusable */
		.gdt = { .base = GT_GDT_GPA, .limit = GT_GDT_LIMIT },
		.idt = { .base = GT_IDT_GPA, .limit = vm->idt_vectors * 16 - 1 },
		.cr0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_PG,
		.cr3 = GT_TABLES_GPA,
		.cr4 = CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT,
		.efer = EFER_LME | EFER_LMA | EFER_NXE,
	};
	/* As after a CALL: the return address on a 16-byte aligned stack. */
	struct rvmx_regs regs = {
		.rip = (uintptr_t)fn, .rdi = arg, .rsp = top - 8,
		.rflags = 0x202,	/* IF: host interrupts exit at once in Bochs */
	};
	int r;

	*(uint64_t *)gt_hva(vm, top - 8) = (uintptr_t)gt_guest_return;
	r = rvmx_set_sregs(&vcpu->rv, &s);
	return r ? r : rvmx_set_regs(&vcpu->rv, &regs);
}

int gt_create_vcpus(struct gt_vm *vm, int nr, gt_guest_fn fn)
{
	int r;

	memset(vm, 0, sizeof(*vm));
	vm->sys = -1;
	vm->rv.fd = -1;
	for (int i = 0; i < GT_MAX_VCPUS; i++)
		vm->vcpu[i].rv.fd = -1;
	if (nr < 1 || nr > GT_MAX_VCPUS)
		return -EINVAL;
	vm->sys = rvmx_open();
	if (vm->sys < 0)
		return vm->sys;
	r = rvmx_create_vm(vm->sys, &vm->rv);
	if (r)
		return r;
	vm->mem = mmap(NULL, GT_MEM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (vm->mem == MAP_FAILED) {
		vm->mem = NULL;
		return -ENOMEM;
	}
	vm->mem_size = GT_MEM_SIZE;
	vm->idt_vectors = GT_IDT_VECTORS;
	r = load_image(vm);
	if (r)
		return r;
	build_tables(vm);
	r = rvmx_set_memory(&vm->rv, 0, 0, vm->mem, vm->mem_size);
	if (r)
		return r;
	for (int i = 0; i < nr; i++) {
		struct gt_vcpu *v = &vm->vcpu[i];

		v->vm = vm;
		v->id = i;
		r = rvmx_create_vcpu(&vm->rv, i, &v->rv);
		if (r)
			return r;
		vm->nr_vcpus++;
		r = gt_vcpu_start(v, fn, i);
		if (r)
			return r;
	}
	return 0;
}

int gt_create(struct gt_vm *vm, gt_guest_fn fn)
{
	return gt_create_vcpus(vm, 1, fn);
}

void gt_destroy(struct gt_vm *vm)
{
	/* A never-created (zeroed) vm has no mapping and no vCPUs. */
	for (int i = 0; i < vm->nr_vcpus; i++)
		rvmx_vcpu_close(&vm->vcpu[i].rv);
	vm->nr_vcpus = 0;
	if (vm->mem) {
		munmap(vm->mem, vm->mem_size);
		vm->mem = NULL;
		rvmx_vm_close(&vm->rv);
		if (vm->sys >= 0)
			close(vm->sys);
		vm->sys = -1;
	}
}

int gt_install_handler(struct gt_vm *vm, int vector, gt_handler_fn fn)
{
	if (vector < 0 || vector >= 32 || !vm->mem)
		return -EINVAL;
	*(gt_handler_fn *)gt_hva(vm, (uintptr_t)&gt_handlers[vector]) = fn;
	return 0;
}

int gt_install_irq_handler(struct gt_vm *vm, int vector, gt_handler_fn fn)
{
	struct rvmx_sregs s;
	int r;

	if (vector < 32 || vector >= GT_IDT_ALL || !vm->mem)
		return -EINVAL;
	*(gt_handler_fn *)gt_hva(vm, (uintptr_t)&gt_handlers[vector]) = fn;
	vm->idt_vectors = GT_IDT_ALL;
	for (int i = 0; i < vm->nr_vcpus; i++) {
		r = rvmx_get_sregs(&vm->vcpu[i].rv, &s);
		if (r)
			return r;
		s.idt.limit = GT_IDT_ALL * 16 - 1;
		r = rvmx_set_sregs(&vm->vcpu[i].rv, &s);
		if (r)
			return r;
	}
	return 0;
}

uint64_t *gt_pte(struct gt_vm *vm, uint64_t gva)
{
	uint64_t *pd = gt_hva(vm, GT_TABLES_GPA + 0x2000), *pde, *pt;

	if (gva >= (1ull << 30))
		return NULL;
	pde = &pd[gva >> 21];
	if (*pde & PDE_PS) {
		uint64_t pt_gpa = GT_TABLES_GPA + 0x3000 + vm->nr_pts * 0x1000ull;
		uint64_t flags = *pde & (GT_PTE_P | GT_PTE_W | GT_PTE_NX);

		if (vm->nr_pts == GT_NR_PTS)
			return NULL;
		vm->nr_pts++;
		pt = gt_hva(vm, pt_gpa);
		for (uint64_t j = 0; j < 512; j++)
			pt[j] = (((gva >> 21) << 21) + (j << 12)) | flags;
		*pde = pt_gpa | GT_PTE_P | GT_PTE_W;
	}
	pt = gt_hva(vm, *pde & PTE_ADDR);
	return &pt[(gva >> 12) & 511];
}

static int read_ucall(struct gt_vcpu *vcpu, struct gt_ucall *uc);

/* A NUL-terminated string from guest memory. */
static void read_str(struct gt_vm *vm, uint64_t gva, char *buf, size_t n)
{
	size_t i = 0;

	if (gva && gva < vm->mem_size) {
		for (; i < n - 1 && gva + i < vm->mem_size && vm->mem[gva + i]; i++)
			buf[i] = vm->mem[gva + i];
	} else if (gva) {
		snprintf(buf, n, "(bad address %#llx)", (unsigned long long)gva);
		return;
	}
	buf[i] = 0;
}

static void print_exit(struct gt_vcpu *vcpu)
{
	struct rvmx_run *run = vcpu->rv.run;
	struct rvmx_regs regs;

	fprintf(stderr, "# vCPU %d: exit %s (%u), not a ucall\n", vcpu->id,
		rvmx_exit_name(run->exit_reason), run->exit_reason);
	switch (run->exit_reason) {
	case RVMX_EXIT_IO:
		fprintf(stderr, "#   io: %s port %#x size %u data %#llx\n",
			run->io.direction == RVMX_IO_OUT ? "out" : "in", run->io.port, run->io.size,
			(unsigned long long)run->io.data);
		break;
	case RVMX_EXIT_MMIO:
		fprintf(stderr, "#   mmio: gpa %#llx access %#x qualification %#llx\n",
			(unsigned long long)run->mmio.gpa, run->mmio.access,
			(unsigned long long)run->mmio.qualification);
		break;
	case RVMX_EXIT_FAIL_ENTRY:
		fprintf(stderr, "#   fail_entry: reason %#x instruction error %u qualification %#llx: %.240s\n",
			run->fail_entry.reason, run->fail_entry.vm_instruction_error,
			(unsigned long long)run->fail_entry.qualification, run->fail_entry.account);
		break;
	case RVMX_EXIT_VMX:
		fprintf(stderr, "#   vmx: reason %u qualification %#llx length %u gpa %#llx gla %#llx intr_info %#x\n",
			run->vmx.reason, (unsigned long long)run->vmx.qualification,
			run->vmx.instruction_length, (unsigned long long)run->vmx.guest_physical_address,
			(unsigned long long)run->vmx.guest_linear_address, run->vmx.intr_info);
		break;
	}
	if (!rvmx_get_regs(&vcpu->rv, &regs))
		fprintf(stderr, "#   rip %#llx rsp %#llx rflags %#llx rax %#llx rdi %#llx\n",
			(unsigned long long)regs.rip, (unsigned long long)regs.rsp,
			(unsigned long long)regs.rflags, (unsigned long long)regs.rax,
			(unsigned long long)regs.rdi);
}

/* Whether the last exit is a ucall's OUT. */
static int is_ucall_exit(const struct rvmx_run *run)
{
	return run->exit_reason == RVMX_EXIT_IO && run->io.direction == RVMX_IO_OUT &&
	       run->io.port == GT_UCALL_PORT && run->io.size == 4 && run->io.count == 1;
}

int gt_exit_ucall(struct gt_vcpu *vcpu, struct gt_ucall *uc)
{
	memset(uc, 0, sizeof(*uc));
	return is_ucall_exit(vcpu->rv.run) ? read_ucall(vcpu, uc) : UCALL_NONE;
}

int gt_run(struct gt_vcpu *vcpu, struct gt_ucall *uc)
{
	int r;

	memset(uc, 0, sizeof(*uc));
	r = rvmx_run(&vcpu->rv);
	if (r) {
		fprintf(stderr, "# vCPU %d: RVMX_RUN: %s\n", vcpu->id, strerror(-r));
		return UCALL_NONE;
	}
	if (!is_ucall_exit(vcpu->rv.run)) {
		print_exit(vcpu);
		return UCALL_NONE;
	}
	return read_ucall(vcpu, uc);
}

/* The ucall record the last exit (a ucall's OUT) points at. */
static int read_ucall(struct gt_vcpu *vcpu, struct gt_ucall *uc)
{
	struct rvmx_run *run = vcpu->rv.run;
	struct gt_vm *vm = vcpu->vm;
	struct gt_ucall_msg m;
	uint64_t gpa;

	gpa = (uint32_t)run->io.data;
	if (gpa > vm->mem_size - sizeof(m)) {
		fprintf(stderr, "# vCPU %d: ucall record at %#llx outside memory\n", vcpu->id,
			(unsigned long long)gpa);
		return UCALL_NONE;
	}
	memcpy(&m, vm->mem + gpa, sizeof(m));
	if (m.kind == UCALL_NONE || m.kind > UCALL_EXCEPTION) {
		fprintf(stderr, "# vCPU %d: unknown ucall %llu\n", vcpu->id, (unsigned long long)m.kind);
		return UCALL_NONE;
	}
	uc->kind = m.kind;
	memcpy(uc->args, m.args, sizeof(uc->args));
	uc->line = m.line;
	read_str(vm, m.file, uc->file, sizeof(uc->file));
	read_str(vm, m.expr, uc->expr, sizeof(uc->expr));
	return m.kind;
}

static const char *const exc_names[32] = {
	"#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF", "?", "#TS", "#NP", "#SS",
	"#GP", "#PF", "?", "#MF", "#AC", "#MC", "#XM", "#VE", "#CP", "?", "?", "?", "?", "?", "?",
	"#HV", "#VC", "#SX", "?",
};

void gt_ucall_print(FILE *f, const struct gt_ucall *uc)
{
	unsigned long long *a = (unsigned long long *)uc->args;

	switch (uc->kind) {
	case UCALL_SYNC:
		fprintf(f, "# ucall: sync %#llx\n", a[0]);
		break;
	case UCALL_DONE:
		fprintf(f, "# ucall: done\n");
		break;
	case UCALL_ASSERT:
		fprintf(f, "# ucall: guest assertion failed at %s:%llu: %s (%#llx, %#llx)\n",
			uc->file, (unsigned long long)uc->line, uc->expr, a[0], a[1]);
		break;
	case UCALL_EXCEPTION:
		fprintf(f, "# ucall: guest exception %llu %s, error code %#llx, rip %#llx, cr2 %#llx\n",
			a[GT_EXC_VECTOR], a[GT_EXC_VECTOR] < 32 ? exc_names[a[GT_EXC_VECTOR]] : "?",
			a[GT_EXC_ERROR], a[GT_EXC_RIP], a[GT_EXC_CR2]);
		break;
	default:
		fprintf(f, "# ucall: none\n");
	}
}
