// SPDX-License-Identifier: GPL-2.0
/*
 * A complete vCPU, seen from the guest: a guest that goes from real mode to
 * protected mode and long mode by itself and back (CR0/CR4/EFER as it wrote
 * them), MSRs through the guest's RDMSR/WRMSR and through RVMX_GET_MSRS /
 * RVMX_SET_MSRS / RVMX_SET_MSR_FILTER / RVMX_GET_MSR_LIST, and the CPUID
 * table (RVMX_GET/SET_CPUID) with the features it offers working. Each
 * check compares values only the guest produces.
 */
#define _GNU_SOURCE
#include <cpuid.h>
#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>

#include "kselftest_harness.h"
#include "lib/util.h"
#include "lib/guest.h"
#include "lib/gtest.h"

/* An asm label `name` at this point of the guest code. */
#define LABEL(name) #name ":\n"
/* Guest functions that hold labels: one copy each, never inlined. */
#define GUEST_FN static __attribute__((noinline, noclone)) void

/* MSRs (SDM Vol. 4 Table 2-2). */
#define MSR_APIC_BASE		0x1b
#define MSR_MTRRCAP		0xfe
#define MSR_SYSENTER_CS		0x174
#define MSR_SYSENTER_ESP	0x175
#define MSR_SYSENTER_EIP	0x176
#define MSR_MISC_ENABLE		0x1a0
#define MSR_MTRR_PHYSBASE0	0x200
#define MSR_MTRR_PHYSMASK0	0x201
#define MSR_MTRR_PHYSBASE7	0x20e
#define MSR_MTRR_PHYSMASK7	0x20f
#define MSR_MTRR_FIX64K		0x250
#define MSR_PAT			0x277
#define MSR_MTRR_DEF_TYPE	0x2ff
#define MSR_TSC			0x10
#define MSR_TSC_ADJUST		0x3b
#define MSR_EFER		0xc0000080
#define MSR_STAR		0xc0000081
#define MSR_LSTAR		0xc0000082
#define MSR_CSTAR		0xc0000083
#define MSR_SFMASK		0xc0000084
#define MSR_GS_BASE		0xc0000101
#define MSR_KERNEL_GS_BASE	0xc0000102
#define MSR_TSC_AUX		0xc0000103
#define MSR_UNKNOWN		0x12345678

#define EFER_SCE	(1ull << 0)
#define EFER_LME	(1ull << 8)
#define EFER_LMA	(1ull << 10)
#define EFER_NXE	(1ull << 11)

/* ================= real mode to long mode and back ================= */

/*
 * Real mode at 0x1000 (CS base 0) with the reset CR0. The guest loads its
 * own GDT (0x08: 32-bit code, 0x10: data, 0x18: 64-bit code), sets PE,
 * builds its own page tables at 0x10000 (the first 2 MiB identity-mapped),
 * sets CR4.PAE and EFER.LME, and turns paging on in the same MOV to CR0
 * that clears CD and NW (host-owned: that write exits to rvmx, which must
 * switch IA-32e mode on). A far jump to 0x18 runs 64-bit code. A far
 * return to 0x08 is compatibility mode, where clearing CR0.PG leaves
 * IA-32e mode (SDM Vol. 3A 10.8.5.4; this write changes no host-owned bit,
 * so the CPU does it without an exit); then EFER.LME is cleared. Paging on
 * again, without an exit this time, enters IA-32e mode a second time.
 * Each step OUTs what the guest reads back (SDM Vol. 3A 10.8.5).
 */
GUEST_CODE(modes, ".code16",
	"	mov %cr0, %eax\n"
	"	out %eax, $0x80\n"				/* 0x60000010 */
	"	cli\n"
	"	lgdtl " GUEST_ADDR(modes, modes_gdtr) "\n"
	"	mov %cr0, %eax\n"
	"	or $1, %eax\n"
	"	mov %eax, %cr0\n"
	"	ljmpl $0x08, $" GUEST_ADDR(modes, modes_pm) "\n"
	".code32\n"
	"modes_pm:\n"
	"	mov $0x10, %eax\n"
	"	mov %eax, %ds\n"
	"	mov %eax, %es\n"
	"	mov %eax, %ss\n"
	"	mov $0x8000, %esp\n"
	"	mov %cr0, %eax\n"
	"	out %eax, $0x81\n"				/* 0x60000011 */
	"	mov %cs, %eax\n"
	"	out %eax, $0x8f\n"				/* 0x08 */
	/* PML4 at 0x10000 -> PDPT 0x11000 -> PD 0x12000 -> 2-MiB page 0. */
	"	movl $0x11003, 0x10000\n"
	"	movl $0x12003, 0x11000\n"
	"	movl $0x83, 0x12000\n"
	"	mov $0x10000, %eax\n"
	"	mov %eax, %cr3\n"
	"	mov %cr4, %eax\n"
	"	or $0x20, %eax\n"
	"	mov %eax, %cr4\n"
	"	mov %cr4, %eax\n"
	"	out %eax, $0x82\n"				/* 0x20 */
	"	mov $0xc0000080, %ecx\n"
	"	rdmsr\n"
	"	or $0x100, %eax\n"
	"	wrmsr\n"
	"	rdmsr\n"
	"	out %eax, $0x83\n"				/* 0x100 */
	"	mov $0x80000011, %eax\n"
	"	mov %eax, %cr0\n"
	"	mov %cr0, %eax\n"
	"	out %eax, $0x84\n"				/* 0x80000011 */
	"	rdmsr\n"
	"	out %eax, $0x85\n"				/* 0x500 */
	"	ljmp $0x18, $" GUEST_ADDR(modes, modes_lm) "\n"
	".code64\n"
	"modes_lm:\n"
	/* Only a 64-bit operand keeps bit 40. */
	"	mov $1, %eax\n"
	"	shl $40, %rax\n"
	"	shr $32, %rax\n"
	"	out %eax, $0x86\n"				/* 0x100 */
	"	pushq $0x08\n"
	"	pushq $" GUEST_ADDR(modes, modes_compat) "\n"
	"	lretq\n"
	".code32\n"
	"modes_compat:\n"
	"	mov %cr0, %eax\n"
	"	and $0x7fffffff, %eax\n"
	"	mov %eax, %cr0\n"
	"	mov $0xc0000080, %ecx\n"
	"	rdmsr\n"
	"	out %eax, $0x87\n"				/* 0x100: LMA off */
	"	and $~0x100, %eax\n"
	"	wrmsr\n"
	"	rdmsr\n"
	"	out %eax, $0x88\n"				/* 0 */
	"	mov %cr0, %eax\n"
	"	out %eax, $0x89\n"				/* 0x11 */
	"	rdmsr\n"
	"	or $0x100, %eax\n"
	"	wrmsr\n"
	"	mov %cr0, %eax\n"
	"	or $0x80000000, %eax\n"
	"	mov %eax, %cr0\n"
	"	rdmsr\n"
	"	out %eax, $0x8a\n"				/* 0x500 */
	"	ljmp $0x18, $" GUEST_ADDR(modes, modes_lm2) "\n"
	".code64\n"
	"modes_lm2:\n"
	"	mov $1, %eax\n"
	"	shl $33, %rax\n"
	"	shr $32, %rax\n"
	"	out %eax, $0x8b\n"				/* 2 */
	"	hlt\n"
	"modes_gdt:\n"
	"	.quad 0\n"
	"	.quad 0x00cf9b000000ffff\n"			/* 0x08: 32-bit code */
	"	.quad 0x00cf93000000ffff\n"			/* 0x10: data */
	"	.quad 0x00af9b000000ffff\n"			/* 0x18: 64-bit code (L) */
	"modes_gdtr:\n"
	"	.word 4 * 8 - 1\n"
	"	.long " GUEST_ADDR(modes, modes_gdt) "\n");

FIXTURE(raw) {
	struct guest g;
};

FIXTURE_SETUP(raw)
{
	self->g.sys = -1;
	ASSERT_EQ(0, rvmx_ensure_loaded());
}

FIXTURE_TEARDOWN(raw)
{
	guest_destroy(&self->g);
}

TEST_F(raw, real_to_long_mode_and_back)
{
	struct guest *g = &self->g;
	struct rvmx_sregs s;
	struct rvmx_regs regs;

	ASSERT_EQ(0, guest_create(g, 1 << 20, 1, modes_start, modes_end));
	/* A new vCPU is at reset: CR0 = 0x60000010 (SDM Vol. 3A 10.1.1). */
	ASSERT_EQ(0, rvmx_get_sregs(&g->vcpu[0], &s));
	EXPECT_EQ(0x60000010, s.cr0);
	EXPECT_EQ(0, s.efer);
	ASSERT_EQ(0, guest_real_mode(g, 0));

	EXPECT_EQ(0x60000010, guest_expect_out(g, 0, 0x80));
	EXPECT_EQ(0x60000011, guest_expect_out(g, 0, 0x81));
	EXPECT_EQ(0x08, guest_expect_out(g, 0, 0x8f));
	EXPECT_EQ(0x20, guest_expect_out(g, 0, 0x82));
	EXPECT_EQ(EFER_LME, guest_expect_out(g, 0, 0x83));
	EXPECT_EQ(0x80000011, guest_expect_out(g, 0, 0x84));
	EXPECT_EQ(EFER_LME | EFER_LMA, guest_expect_out(g, 0, 0x85));
	ASSERT_EQ(0, rvmx_get_sregs(&g->vcpu[0], &s));
	EXPECT_EQ(0x80000011, s.cr0);
	EXPECT_EQ(0x10000, s.cr3);
	EXPECT_EQ(0x20, s.cr4);
	EXPECT_EQ(EFER_LME | EFER_LMA, s.efer);
	/* 64-bit code. */
	EXPECT_EQ(0x100, guest_expect_out(g, 0, 0x86));
	ASSERT_EQ(0, rvmx_get_sregs(&g->vcpu[0], &s));
	EXPECT_EQ(0x18, s.cs.selector);
	EXPECT_EQ(1 << 13, s.cs.ar & (1 << 13));	/* L */
	/* Compatibility mode, paging off: IA-32e mode off. */
	EXPECT_EQ(EFER_LME, guest_expect_out(g, 0, 0x87));
	EXPECT_EQ(0, guest_expect_out(g, 0, 0x88));
	EXPECT_EQ(0x11, guest_expect_out(g, 0, 0x89));
	ASSERT_EQ(0, rvmx_get_sregs(&g->vcpu[0], &s));
	EXPECT_EQ(0x11, s.cr0);
	EXPECT_EQ(0, s.efer);
	EXPECT_EQ(0x08, s.cs.selector);
	/* And IA-32e mode again, without an exit on the MOV to CR0. */
	EXPECT_EQ(EFER_LME | EFER_LMA, guest_expect_out(g, 0, 0x8a));
	EXPECT_EQ(2, guest_expect_out(g, 0, 0x8b));
	ASSERT_EQ(0, rvmx_run(&g->vcpu[0]));
	ASSERT_EQ(RVMX_EXIT_HLT, g->vcpu[0].run->exit_reason);
	ASSERT_EQ(0, rvmx_get_sregs(&g->vcpu[0], &s));
	EXPECT_EQ(0x80000011, s.cr0);
	EXPECT_EQ(EFER_LME | EFER_LMA, s.efer);
	ASSERT_EQ(0, rvmx_get_regs(&g->vcpu[0], &regs));
	EXPECT_EQ(0x8000, regs.rsp);
}

/* ================= MSRs ================= */

static inline uint64_t rdmsr(uint32_t index)
{
	uint32_t lo, hi;

	asm volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(index));
	return (uint64_t)hi << 32 | lo;
}

static inline void wrmsr(uint32_t index, uint64_t v)
{
	asm volatile("wrmsr" : : "c"(index), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)) : "memory");
}

struct msr_val {
	uint32_t index;
	uint64_t guest;		/* what the guest writes */
	uint64_t host;		/* what userland writes */
};

/* Values valid for any MAXPHYADDR >= 36: canonical addresses, valid memory
 * types (SDM Vol. 3A 12.11, 12.12). */
static const struct msr_val msr_vals[] = {
	{ MSR_STAR, 0x0023001000000000ull, 0x001b000800000000ull },
	{ MSR_LSTAR, 0xffffffff81000000ull, 0xffffffff82000040ull },
	{ MSR_CSTAR, 0xffffffff81000040ull, 0x00007fffffff0000ull },
	{ MSR_SFMASK, 0x47700, 0x700 },
	{ MSR_KERNEL_GS_BASE, 0xffff888012345000ull, 0x00007f0011223344ull },
	{ MSR_GS_BASE, 0x0000000012340000ull, 0x0000000056780000ull },
	{ MSR_SYSENTER_CS, 0x10, 0x60 },
	{ MSR_SYSENTER_ESP, 0xffffc90000001000ull, 0x0000000000123000ull },
	{ MSR_SYSENTER_EIP, 0xffffffff81001234ull, 0x0000000000405060ull },
	{ MSR_PAT, 0x0001050400010504ull, 0x0007040600070406ull },
	{ MSR_MTRR_PHYSBASE0, 0x80000006, 0xc0000000 },
	{ MSR_MTRR_PHYSMASK0, 0xf80000800ull, 0xfc0000800ull },
	{ MSR_MTRR_PHYSBASE7, 0x00100005, 0x00200004 },
	{ MSR_MTRR_PHYSMASK7, 0xffff00800ull, 0xfffe00800ull },
	{ MSR_MTRR_FIX64K, 0x0606060606060606ull, 0x0001040506000104ull },
	{ MSR_MTRR_DEF_TYPE, 0xc06, 0x800 },
	{ MSR_MISC_ENABLE, 0x1801 | (1ull << 16), 0x1801 },	/* EIST writable */
};
#define NR_MSR_VALS (sizeof(msr_vals) / sizeof(msr_vals[0]))

/* What the guest's #GP handler saw (gp_skip_msr). */
static uint64_t gp_count, gp_rip, gp_error;

/* #GP from RDMSR/WRMSR (2 bytes: 0F 32 / 0F 30): count it and go on. */
static void gp_skip_msr(struct gt_exc_frame *f)
{
	gp_count++;
	gp_rip = f->rip;
	gp_error = f->error_code;
	f->rip += 2;
}

#define GUEST_FAIL(what, a, b) gt_ucall(UCALL_ASSERT, __FILE__, __LINE__, what, a, b)

extern const char unknown_rd[], unknown_wr[], aux_rd[];

GUEST_FN guest_msrs(uint64_t arg)
{
	uint32_t a, b, c, d, e1d;
	uint64_t t0, t1, adj;

	/* What the library started the guest with, and fixed values. */
	GUEST_ASSERT_EQ(rdmsr(MSR_EFER), EFER_LME | EFER_LMA | EFER_NXE);
	GUEST_ASSERT_EQ(rdmsr(MSR_MTRRCAP), 0x508);
	GUEST_ASSERT_EQ(rdmsr(MSR_APIC_BASE), 0xfee00000 | (1 << 11) | (1 << 8));
	GUEST_ASSERT_EQ(rdmsr(MSR_MISC_ENABLE), 0x1801);
	/* Round trips in the guest. */
	for (unsigned int i = 0; i < NR_MSR_VALS; i++) {
		wrmsr(msr_vals[i].index, msr_vals[i].guest);
		if (rdmsr(msr_vals[i].index) != msr_vals[i].guest)
			GUEST_FAIL("rdmsr after wrmsr", msr_vals[i].index, rdmsr(msr_vals[i].index));
	}
	/* EFER.SCE: CPUID offers SYSCALL. */
	wrmsr(MSR_EFER, rdmsr(MSR_EFER) | EFER_SCE);
	GUEST_ASSERT_EQ(rdmsr(MSR_EFER), EFER_LME | EFER_LMA | EFER_NXE | EFER_SCE);
	GUEST_SYNC(1);	/* userland reads them, then writes its own */
	for (unsigned int i = 0; i < NR_MSR_VALS; i++) {
		if (rdmsr(msr_vals[i].index) != msr_vals[i].host)
			GUEST_FAIL("rdmsr after RVMX_SET_MSRS", msr_vals[i].index, rdmsr(msr_vals[i].index));
	}
	GUEST_ASSERT_EQ(rdmsr(MSR_EFER), EFER_LME | EFER_LMA | EFER_NXE);

	/* TSC_ADJUST (offered by rvmx whatever the host has) moves the TSC
	 * by as much (SDM Vol. 3B 19.17.3). */
	__cpuid_count(7, 0, a, b, c, d);
	GUEST_ASSERT(b & (1u << 1));
	adj = rdmsr(MSR_TSC_ADJUST);
	t0 = rdmsr(MSR_TSC);
	wrmsr(MSR_TSC_ADJUST, adj + (1ull << 40));
	t1 = rdmsr(MSR_TSC);
	GUEST_ASSERT(t1 - t0 >= (1ull << 40) && t1 - t0 < (1ull << 40) + (1ull << 34));
	/* Writing the TSC moves TSC_ADJUST by as much as the TSC jumped:
	 * 2^41 less the time since t1 was read. */
	wrmsr(MSR_TSC, t1 + (1ull << 41));
	t0 = rdmsr(MSR_TSC);
	GUEST_ASSERT(t0 - t1 >= (1ull << 41) && t0 - t1 < (1ull << 41) + (1ull << 34));
	adj = rdmsr(MSR_TSC_ADJUST) - adj;
	GUEST_ASSERT(adj <= (3ull << 40) && adj > (3ull << 40) - (1ull << 34));

	/* An MSR rvmx does not have: #GP(0) at the instruction. */
	asm volatile("mov %0, %%ecx\n" LABEL(unknown_rd) "rdmsr" : : "i"(MSR_UNKNOWN) : "eax", "ecx", "edx");
	GUEST_ASSERT_EQ(gp_count, 1);
	GUEST_ASSERT_EQ(gp_rip, (uintptr_t)unknown_rd);
	GUEST_ASSERT_EQ(gp_error, 0);
	asm volatile("mov %0, %%ecx\n xor %%eax, %%eax\n xor %%edx, %%edx\n" LABEL(unknown_wr) "wrmsr"
		     : : "i"(MSR_UNKNOWN) : "eax", "ecx", "edx");
	GUEST_ASSERT_EQ(gp_count, 2);
	GUEST_ASSERT_EQ(gp_rip, (uintptr_t)unknown_wr);
	/* Reserved bits: an invalid PAT type (2), a non-canonical LSTAR. */
	wrmsr(MSR_PAT, 0x0007040600070402ull);
	GUEST_ASSERT_EQ(gp_count, 3);
	wrmsr(MSR_LSTAR, 0x0000800000000000ull);
	GUEST_ASSERT_EQ(gp_count, 4);
	GUEST_ASSERT_EQ(rdmsr(MSR_LSTAR), 0xffffffff82000040ull);
	/* IA32_TSC_AUX exists only with RDTSCP or RDPID in CPUID. */
	__cpuid(0x80000001, a, b, c, e1d);
	__cpuid_count(7, 0, a, b, c, d);
	if (!(e1d & (1u << 27)) && !(c & (1u << 22))) {
		asm volatile("mov %0, %%ecx\n" LABEL(aux_rd) "rdmsr" : : "i"(MSR_TSC_AUX) : "eax", "ecx", "edx");
		GUEST_ASSERT_EQ(gp_count, 5);
		GUEST_ASSERT_EQ(gp_rip, (uintptr_t)aux_rd);
		GUEST_SYNC(0);
	} else {
		wrmsr(MSR_TSC_AUX, 0x1234);
		GUEST_ASSERT_EQ(rdmsr(MSR_TSC_AUX), 0x1234);
		GUEST_SYNC(1);
	}
}

FIXTURE(gt) {
	struct gt_vm vm;
	struct gt_ucall uc;
};

FIXTURE_SETUP(gt)
{
	ASSERT_EQ(0, rvmx_ensure_loaded());
}

FIXTURE_TEARDOWN(gt)
{
	gt_destroy(&self->vm);
}

#define RUN_SYNC(vcpu, v)							\
	do {									\
		GT_RUN_EXPECT(vcpu, &self->uc, UCALL_SYNC);			\
		EXPECT_EQ((uint64_t)(v), self->uc.args[0]);			\
	} while (0)

TEST_F(gt, msr_round_trips)
{
	struct gt_vcpu *v = &self->vm.vcpu[0];
	struct rvmx_msr_entry e[NR_MSR_VALS + 2];
	uint64_t aux;

	ASSERT_EQ(0, gt_create(&self->vm, guest_msrs));
	ASSERT_EQ(0, gt_install_handler(&self->vm, 13, gp_skip_msr));
	RUN_SYNC(v, 1);
	/* The guest's values, the pass-through ones (KERNEL_GS_BASE, GS base,
	 * SYSENTER_*) included. */
	for (unsigned int i = 0; i < NR_MSR_VALS; i++)
		e[i] = (struct rvmx_msr_entry){ .index = msr_vals[i].index };
	e[NR_MSR_VALS] = (struct rvmx_msr_entry){ .index = MSR_EFER };
	ASSERT_EQ(NR_MSR_VALS + 1, rvmx_get_msrs(&v->rv, e, NR_MSR_VALS + 1));
	for (unsigned int i = 0; i < NR_MSR_VALS; i++) {
		EXPECT_EQ(msr_vals[i].guest, e[i].data) TH_LOG("MSR %#x", msr_vals[i].index);
		e[i].data = msr_vals[i].host;
	}
	EXPECT_EQ(EFER_LME | EFER_LMA | EFER_NXE | EFER_SCE, e[NR_MSR_VALS].data);
	e[NR_MSR_VALS].data = EFER_LME | EFER_LMA | EFER_NXE;
	ASSERT_EQ(NR_MSR_VALS + 1, rvmx_set_msrs(&v->rv, e, NR_MSR_VALS + 1));
	/* GET and SET stop at an MSR rvmx does not have. */
	e[0] = (struct rvmx_msr_entry){ .index = MSR_STAR };
	e[1] = (struct rvmx_msr_entry){ .index = MSR_UNKNOWN };
	e[2] = (struct rvmx_msr_entry){ .index = MSR_LSTAR };
	EXPECT_EQ(1, rvmx_get_msrs(&v->rv, e, 3));
	EXPECT_EQ(msr_vals[0].host, e[0].data);
	EXPECT_EQ(0, rvmx_set_msrs(&v->rv, &e[1], 2));
	/* A value the guest could not write either. */
	EXPECT_EQ(-EINVAL, rvmx_set_msr(&v->rv, MSR_PAT, 0x0007040600070402ull));
	/* The host may use TSC_AUX whatever CPUID says. */
	ASSERT_EQ(0, rvmx_set_msr(&v->rv, MSR_TSC_AUX, 0x77));
	ASSERT_EQ(0, rvmx_get_msr(&v->rv, MSR_TSC_AUX, &aux));
	EXPECT_EQ(0x77, aux);
	GT_RUN_EXPECT(v, &self->uc, UCALL_SYNC);
	if (self->uc.args[0] == 0)
		TH_LOG("IA32_TSC_AUX: not offered by CPUID, #GP checked");
	GT_RUN_EXPECT(v, &self->uc, UCALL_DONE);
}

extern const char filt_rd[], filt_wr[], filt_pat[], filt_err_rd[], filt_err_wr[], filt_unknown[];

GUEST_FN guest_msr_filter(uint64_t arg)
{
	uint32_t lo, hi;
	uint64_t pat;

	asm volatile("mov $0x40000100, %%ecx\n" LABEL(filt_rd) "rdmsr" : "=a"(lo), "=d"(hi) : : "ecx");
	GUEST_SYNC((uint64_t)hi << 32 | lo);
	asm volatile("mov $0x40000101, %%ecx\n" LABEL(filt_wr) "wrmsr"
		     : : "a"(0x89abcdef), "d"(0x01234567) : "ecx", "memory");
	/* PAT writes go to userland, reads to rvmx: the write did not reach
	 * rvmx. */
	pat = rdmsr(MSR_PAT);
	asm volatile("mov $0x277, %%ecx\n" LABEL(filt_pat) "wrmsr"
		     : : "a"(0x00010504), "d"(0x00010504) : "ecx", "memory");
	GUEST_ASSERT_EQ(rdmsr(MSR_PAT), pat);
	/* Userland makes an MSR rvmx does not have. */
	asm volatile("mov %2, %%ecx\n" LABEL(filt_unknown) "rdmsr" : "=a"(lo), "=d"(hi) : "i"(MSR_UNKNOWN) : "ecx");
	GUEST_SYNC((uint64_t)hi << 32 | lo);
	/* Userland answers with an error: #GP at the instruction. */
	asm volatile("mov $0x40000100, %%ecx\n" LABEL(filt_err_rd) "rdmsr" : : : "eax", "ecx", "edx");
	GUEST_ASSERT_EQ(gp_count, 1);
	GUEST_ASSERT_EQ(gp_rip, (uintptr_t)filt_err_rd);
	asm volatile("mov $0x40000101, %%ecx\n" LABEL(filt_err_wr) "wrmsr" : : "a"(1), "d"(0) : "ecx", "memory");
	GUEST_ASSERT_EQ(gp_count, 2);
	GUEST_ASSERT_EQ(gp_rip, (uintptr_t)filt_err_wr);
	GUEST_SYNC(gp_error);
}

/* The next exit is a filtered MSR access at `rip`. */
#define EXPECT_MSR_EXIT(dir, idx, at)						\
	do {									\
		struct rvmx_regs __r;						\
		ASSERT_EQ(0, rvmx_run(&v->rv));					\
		ASSERT_EQ(RVMX_EXIT_MSR, run->exit_reason)			\
			TH_LOG("exit %s", rvmx_exit_name(run->exit_reason));	\
		EXPECT_EQ(dir, run->msr.direction);				\
		EXPECT_EQ(idx, run->msr.index);					\
		ASSERT_EQ(0, rvmx_get_regs(&v->rv, &__r));			\
		EXPECT_EQ((uintptr_t)(at), __r.rip);				\
	} while (0)

TEST_F(gt, msr_filter_exits_to_userland)
{
	struct gt_vcpu *v;
	struct rvmx_run *run;
	struct rvmx_msr_filter f = {
		.nranges = 3,
		.ranges = {
			{ .base = 0x40000100, .count = 2, .flags = RVMX_MSR_FILTER_READ | RVMX_MSR_FILTER_WRITE },
			{ .base = MSR_PAT, .count = 1, .flags = RVMX_MSR_FILTER_WRITE },
			{ .base = MSR_UNKNOWN, .count = 1, .flags = RVMX_MSR_FILTER_READ },
		},
	};
	struct rvmx_msr_filter bad = f;
	uint64_t pat;

	ASSERT_EQ(0, gt_create(&self->vm, guest_msr_filter));
	v = &self->vm.vcpu[0];
	run = v->rv.run;
	ASSERT_EQ(0, gt_install_handler(&self->vm, 13, gp_skip_msr));
	/* Refused: an empty range, no flags, one past 0xffffffff, reserved. */
	bad.ranges[0].count = 0;
	EXPECT_EQ(-EINVAL, rvmx_set_msr_filter(&self->vm.rv, &bad));
	bad = f;
	bad.ranges[1].flags = 0;
	EXPECT_EQ(-EINVAL, rvmx_set_msr_filter(&self->vm.rv, &bad));
	bad = f;
	bad.ranges[2].base = 0xffffffff;
	bad.ranges[2].count = 2;
	EXPECT_EQ(-EINVAL, rvmx_set_msr_filter(&self->vm.rv, &bad));
	bad = f;
	bad.ranges[0].reserved = 1;
	EXPECT_EQ(-EINVAL, rvmx_set_msr_filter(&self->vm.rv, &bad));
	bad = f;
	bad.nranges = RVMX_MSR_FILTER_MAX_RANGES + 1;
	EXPECT_EQ(-EINVAL, rvmx_set_msr_filter(&self->vm.rv, &bad));
	ASSERT_EQ(0, rvmx_set_msr_filter(&self->vm.rv, &f));

	EXPECT_MSR_EXIT(RVMX_MSR_READ, 0x40000100, filt_rd);
	run->msr.data = 0x1122334455667788ull;
	run->msr.error = 0;
	RUN_SYNC(v, 0x1122334455667788ull);

	EXPECT_MSR_EXIT(RVMX_MSR_WRITE, 0x40000101, filt_wr);
	EXPECT_EQ(0x0123456789abcdefull, run->msr.data);
	EXPECT_MSR_EXIT(RVMX_MSR_WRITE, MSR_PAT, filt_pat);
	EXPECT_EQ(0x0001050400010504ull, run->msr.data);
	/* The host's own access is not filtered. */
	ASSERT_EQ(0, rvmx_get_msr(&v->rv, MSR_PAT, &pat));
	EXPECT_EQ(0x0007040600070406ull, pat);
	EXPECT_MSR_EXIT(RVMX_MSR_READ, MSR_UNKNOWN, filt_unknown);
	run->msr.data = 0xfeedface;
	RUN_SYNC(v, 0xfeedface);

	EXPECT_MSR_EXIT(RVMX_MSR_READ, 0x40000100, filt_err_rd);
	run->msr.error = 1;
	EXPECT_MSR_EXIT(RVMX_MSR_WRITE, 0x40000101, filt_err_wr);
	EXPECT_EQ(1, run->msr.data);
	run->msr.error = 1;
	RUN_SYNC(v, 0);		/* #GP(0) */
	GT_RUN_EXPECT(v, &self->uc, UCALL_DONE);
}

GUEST_FN guest_msr_write_some(uint64_t arg)
{
	for (unsigned int i = 0; i < NR_MSR_VALS; i++)
		wrmsr(msr_vals[i].index, arg ? msr_vals[i].host : msr_vals[i].guest);
	GUEST_SYNC(0);
	for (unsigned int i = 0; i < NR_MSR_VALS; i++) {
		if (rdmsr(msr_vals[i].index) != msr_vals[i].guest)
			GUEST_FAIL("restored MSR", msr_vals[i].index, rdmsr(msr_vals[i].index));
	}
}

/* Every MSR of the list reads; saved from one vCPU, it restores into
 * another, whose guest then reads what the first guest wrote. */
TEST_F(gt, msr_list_saves_and_restores)
{
	uint32_t idx[RVMX_MAX_MSRS], n = 0;
	struct rvmx_msr_entry e[RVMX_MAX_MSRS];
	bool has[6] = { 0 };
	const uint32_t want[6] = { MSR_EFER, MSR_STAR, MSR_PAT, MSR_KERNEL_GS_BASE, MSR_TSC, MSR_MTRR_PHYSMASK7 };

	ASSERT_EQ(0, gt_create_vcpus(&self->vm, 2, guest_msr_write_some));
	ASSERT_EQ(-E2BIG, rvmx_get_msr_list(self->vm.sys, idx, &n));
	ASSERT_LT(10, n);
	ASSERT_GE(RVMX_MAX_MSRS, n);
	ASSERT_EQ(0, rvmx_get_msr_list(self->vm.sys, idx, &n));
	for (uint32_t i = 0; i < n; i++) {
		for (int j = 0; j < 6; j++)
			has[j] |= idx[i] == want[j];
	}
	for (int j = 0; j < 6; j++) {
		EXPECT_TRUE(has[j]) TH_LOG("MSR %#x not in the list", want[j]);
	}

	RUN_SYNC(&self->vm.vcpu[0], 0);	/* vCPU 0's guest wrote the guest values */
	RUN_SYNC(&self->vm.vcpu[1], 0);	/* vCPU 1's the host values */
	for (uint32_t i = 0; i < n; i++)
		e[i] = (struct rvmx_msr_entry){ .index = idx[i] };
	ASSERT_EQ(n, rvmx_get_msrs(&self->vm.vcpu[0].rv, e, n));
	ASSERT_EQ(n, rvmx_set_msrs(&self->vm.vcpu[1].rv, e, n));
	GT_RUN_EXPECT(&self->vm.vcpu[1], &self->uc, UCALL_DONE);
}

/* ================= CPUID ================= */

#define MAX_ENT RVMX_MAX_CPUID_ENTRIES

static struct rvmx_cpuid_entry *find_entry(struct rvmx_cpuid_entry *t, uint32_t n, uint32_t leaf, uint32_t sub)
{
	for (uint32_t i = 0; i < n; i++) {
		if (t[i].function == leaf &&
		    (!(t[i].flags & RVMX_CPUID_SUBLEAF_SIGNIFICANT) || t[i].index == sub))
			return &t[i];
	}
	return NULL;
}

/* The leaves the guest reads, and what it got (guest memory). */
static const uint32_t cpuid_leaves[][2] = {
	{ 0, 0 }, { 1, 0 }, { 7, 0 }, { 0x80000000, 0 }, { 0x80000001, 0 },
	{ 0x80000002, 0 }, { 0x80000003, 0 }, { 0x80000004, 0 }, { 0x40000000, 0 },
};
#define NR_LEAVES (sizeof(cpuid_leaves) / sizeof(cpuid_leaves[0]))
static uint32_t cpuid_out[NR_LEAVES][4];

extern const char sce_wr[];

GUEST_FN guest_cpuid(uint64_t arg)
{
	for (unsigned int i = 0; i < NR_LEAVES; i++)
		__cpuid_count(cpuid_leaves[i][0], cpuid_leaves[i][1], cpuid_out[i][0], cpuid_out[i][1],
			      cpuid_out[i][2], cpuid_out[i][3]);
	/* EFER.SCE needs CPUID.80000001H:EDX.SYSCALL (the table set). */
	asm volatile("mov $0xc0000080, %%ecx\n rdmsr\n or $1, %%eax\n" LABEL(sce_wr) "wrmsr"
		     : : : "eax", "ecx", "edx", "memory");
	GUEST_SYNC(gp_count);
	GUEST_SYNC(gp_rip);
}

/* The guest read table `t` for every leaf of cpuid_leaves (OSXSAVE and
 * the APIC ID follow its state: both 0 here). */
static void check_guest_cpuid(struct __test_metadata *_metadata, struct gt_vm *vm,
			      struct rvmx_cpuid_entry *t, uint32_t n)
{
	uint32_t (*out)[4] = GT_GUEST(vm, cpuid_out);

	for (unsigned int i = 0; i < NR_LEAVES; i++) {
		struct rvmx_cpuid_entry *e = find_entry(t, n, cpuid_leaves[i][0], cpuid_leaves[i][1]);
		uint32_t want[4] = { e->eax, e->ebx, e->ecx, e->edx };

		if (cpuid_leaves[i][0] == 1) {
			want[1] &= 0x00ffffff;		/* APIC ID 0 */
			want[2] &= ~(1u << 27);		/* OSXSAVE: CR4 has none */
		}
		for (int r = 0; r < 4; r++) {
			EXPECT_EQ(want[r], out[i][r]) TH_LOG("leaf %#x register %d", cpuid_leaves[i][0], r);
		}
	}
}

TEST_F(gt, cpuid_table_is_what_the_guest_reads)
{
	static struct rvmx_cpuid_entry sup[MAX_ENT], t[MAX_ENT], back[MAX_ENT];
	static const char brand[48] = "rvmx selftest vCPU, a brand string of 48 bytes.";
	uint32_t nsup = MAX_ENT, n = MAX_ENT, nback = MAX_ENT, small = 1;
	struct rvmx_cpuid_entry *e;
	struct gt_vcpu *v;

	ASSERT_EQ(0, gt_create(&self->vm, guest_cpuid));
	v = &self->vm.vcpu[0];
	ASSERT_EQ(0, gt_install_handler(&self->vm, 13, gp_skip_msr));
	ASSERT_EQ(0, rvmx_get_supported_cpuid(self->vm.sys, sup, &nsup));
	ASSERT_EQ(-E2BIG, rvmx_get_cpuid(&v->rv, t, &small));
	ASSERT_EQ(0, rvmx_get_cpuid(&v->rv, t, &n));
	EXPECT_EQ(n, small);
	/* The default table: no RDTSCP, no APIC, no VMX, the hypervisor bit
	 * and rvmx's signature; every leaf the guest reads is there. */
	for (unsigned int i = 0; i < NR_LEAVES; i++) {
		ASSERT_NE(NULL, find_entry(t, n, cpuid_leaves[i][0], cpuid_leaves[i][1]))
			TH_LOG("leaf %#x missing", cpuid_leaves[i][0]);
	}
	e = find_entry(t, n, 0x80000001, 0);
	EXPECT_EQ(0, e->edx & (1u << 27));
	EXPECT_NE(0, e->edx & (1u << 11));		/* SYSCALL */
	e = find_entry(t, n, 1, 0);
	EXPECT_EQ(0, e->edx & (1u << 9));
	EXPECT_EQ(0, e->ecx & (1u << 5));
	EXPECT_NE(0, e->ecx & (1u << 31));
	e = find_entry(t, n, 0x40000000, 0);
	EXPECT_EQ(0, memcmp(&e->ebx, "rvmxrvmxrvmx", 12));
	e = find_entry(sup, nsup, 0x80000001, 0);
	ASSERT_NE(NULL, e);
	EXPECT_EQ(0, e->edx & (1u << 27));		/* nor may a table offer it */

	/* Offering what rvmx does not give is refused, and changes nothing. */
	memcpy(back, t, sizeof(t));
	e = find_entry(back, n, 1, 0);
	e->ecx |= 1u << 5;				/* VMX */
	EXPECT_EQ(-EINVAL, rvmx_set_cpuid(&v->rv, back, n));
	e->ecx &= ~(1u << 5);
	e = find_entry(back, n, 0x80000001, 0);
	e->edx |= 1u << 27;				/* RDTSCP */
	EXPECT_EQ(-EINVAL, rvmx_set_cpuid(&v->rv, back, n));
	e->edx &= ~(1u << 27);
	find_entry(back, n, 1, 0)->edx |= 1u << 9;	/* APIC */
	EXPECT_EQ(-EINVAL, rvmx_set_cpuid(&v->rv, back, n));
	ASSERT_EQ(0, rvmx_get_cpuid(&v->rv, back, &nback));
	ASSERT_EQ(n, nback);
	EXPECT_EQ(0, memcmp(t, back, n * sizeof(t[0])));

	/* A brand string of ours and SYSCALL taken away. */
	for (int l = 0; l < 3; l++) {
		uint32_t w[4];

		memcpy(w, brand + 16 * l, 16);
		e = find_entry(t, n, 0x80000002 + l, 0);
		e->eax = w[0];
		e->ebx = w[1];
		e->ecx = w[2];
		e->edx = w[3];
	}
	find_entry(t, n, 0x80000001, 0)->edx &= ~(1u << 11);
	ASSERT_EQ(0, rvmx_set_cpuid(&v->rv, t, n));
	ASSERT_EQ(0, rvmx_get_cpuid(&v->rv, back, &nback));
	ASSERT_EQ(n, nback);
	EXPECT_EQ(0, memcmp(t, back, n * sizeof(t[0])));

	RUN_SYNC(v, 1);					/* WRMSR EFER.SCE: #GP */
	RUN_SYNC(v, (uintptr_t)sce_wr);
	check_guest_cpuid(_metadata, &self->vm, t, n);
	EXPECT_EQ(0, memcmp(GT_GUEST(&self->vm, cpuid_out)[5], brand, 48));

	/* The default table again (a new vCPU), SYSCALL offered: no #GP. */
	gt_destroy(&self->vm);
	ASSERT_EQ(0, gt_create(&self->vm, guest_cpuid));
	ASSERT_EQ(0, gt_install_handler(&self->vm, 13, gp_skip_msr));
	n = MAX_ENT;
	ASSERT_EQ(0, rvmx_get_cpuid(&self->vm.vcpu[0].rv, t, &n));
	RUN_SYNC(&self->vm.vcpu[0], 0);
	check_guest_cpuid(_metadata, &self->vm, t, n);
}

/*
 * Features the default table offers work in the guest: each instruction
 * runs without a fault (a #UD or #GP handler reports the feature). The
 * guest decides from its own CPUID; the host from the table: both must
 * agree on what was run. RDTSCP and RDPID are not offered: they #UD.
 */
enum feat {
	F_XSAVE, F_AVX, F_AVX2, F_AVX512F, F_FMA, F_F16C, F_INVPCID, F_RDRAND, F_RDSEED,
	F_POPCNT, F_SSE42, F_SSSE3, F_SSE41, F_AES, F_PCLMUL, F_MOVBE, F_BMI1, F_BMI2, F_ADX,
	F_LZCNT, F_FSGSBASE, F_SMEP, F_UMIP, F_CLFLUSHOPT, F_CLWB, F_XSAVEOPT, F_XSAVEC,
	F_PCID, F_SHA, NR_FEAT
};
static const char *const feat_names[NR_FEAT] = {
	"XSAVE", "AVX", "AVX2", "AVX512F", "FMA", "F16C", "INVPCID", "RDRAND", "RDSEED",
	"POPCNT", "SSE4.2", "SSSE3", "SSE4.1", "AES", "PCLMULQDQ", "MOVBE", "BMI1", "BMI2", "ADX",
	"LZCNT", "FSGSBASE", "SMEP", "UMIP", "CLFLUSHOPT", "CLWB", "XSAVEOPT", "XSAVEC",
	"PCID", "SHA",
};

/* Which features a CPUID (as `q(leaf, subleaf, out)`) offers, with the
 * XCR0 states the AVX ones need. */
static uint64_t offered(void (*q)(uint32_t, uint32_t, uint32_t *, void *), void *ctx)
{
	uint32_t l1[4], l7[4], e1[4], d0[4], d1[4], max[4];
	uint64_t m = 0, xcr0;

	q(0, 0, max, ctx);
	q(1, 0, l1, ctx);
	q(7, 0, l7, ctx);
	q(0x80000001, 0, e1, ctx);
	q(0xd, 0, d0, ctx);
	q(0xd, 1, d1, ctx);
	if (max[0] < 7)
		l7[0] = l7[1] = l7[2] = l7[3] = 0;	/* no libc in the guest */
	xcr0 = (uint64_t)d0[3] << 32 | d0[0];
#define F(bit, reg, n) do { if ((reg) & (1u << (bit))) m |= 1ull << (n); } while (0)
	F(26, l1[2], F_XSAVE);
	if (m & (1ull << F_XSAVE) && (xcr0 & 6) == 6) {
		F(28, l1[2], F_AVX);
		if (m & (1ull << F_AVX)) {
			F(5, l7[1], F_AVX2);
			F(12, l1[2], F_FMA);
			F(29, l1[2], F_F16C);
			if ((xcr0 & 0xe0) == 0xe0)
				F(16, l7[1], F_AVX512F);
		}
	}
	if (m & (1ull << F_XSAVE)) {
		F(0, d1[0], F_XSAVEOPT);
		F(1, d1[0], F_XSAVEC);
	}
	F(10, l7[1], F_INVPCID);
	F(30, l1[2], F_RDRAND);
	F(18, l7[1], F_RDSEED);
	F(23, l1[2], F_POPCNT);
	F(20, l1[2], F_SSE42);
	F(9, l1[2], F_SSSE3);
	F(19, l1[2], F_SSE41);
	F(25, l1[2], F_AES);
	F(1, l1[2], F_PCLMUL);
	F(22, l1[2], F_MOVBE);
	F(3, l7[1], F_BMI1);
	F(8, l7[1], F_BMI2);
	F(19, l7[1], F_ADX);
	F(5, e1[2], F_LZCNT);
	F(0, l7[1], F_FSGSBASE);
	F(7, l7[1], F_SMEP);
	F(2, l7[2], F_UMIP);
	F(23, l7[1], F_CLFLUSHOPT);
	F(24, l7[1], F_CLWB);
	F(17, l1[2], F_PCID);
	F(29, l7[1], F_SHA);
#undef F
	return m;
}

static void guest_q(uint32_t leaf, uint32_t sub, uint32_t *o, void *ctx)
{
	__cpuid_count(leaf, sub, o[0], o[1], o[2], o[3]);
}

struct table {
	struct rvmx_cpuid_entry *e;
	uint32_t n;
};

static void table_q(uint32_t leaf, uint32_t sub, uint32_t *o, void *ctx)
{
	struct table *t = ctx;
	struct rvmx_cpuid_entry *e = find_entry(t->e, t->n, leaf, sub);

	o[0] = e ? e->eax : 0;
	o[1] = e ? e->ebx : 0;
	o[2] = e ? e->ecx : 0;
	o[3] = e ? e->edx : 0;
}

static int cur_feat;
static uint64_t ud_expected, ud_seen;	/* skip this many bytes at an expected #UD */

static void feature_fault(struct gt_exc_frame *f)
{
	if (ud_expected && f->vector == 6) {
		f->rip += ud_expected;
		ud_expected = 0;
		ud_seen++;
		return;
	}
	gt_ucall(UCALL_ASSERT, __FILE__, cur_feat, feat_names[cur_feat], f->vector, f->rip);
}

static uint8_t xsave_area[8192] __attribute__((aligned(64)));
static uint8_t line[64] __attribute__((aligned(64)));

#define CR4_PCIDE	(1ull << 17)
#define CR4_OSXSAVE	(1ull << 18)
#define CR4_FSGSBASE	(1ull << 16)
#define CR4_SMEP	(1ull << 20)
#define CR4_UMIP	(1ull << 11)

static inline uint64_t read_cr4(void)
{
	uint64_t v;

	asm volatile("mov %%cr4, %0" : "=r"(v));
	return v;
}

static inline void write_cr4(uint64_t v)
{
	asm volatile("mov %0, %%cr4" : : "r"(v) : "memory");
}

static inline uint64_t xgetbv(uint32_t i)
{
	uint32_t lo, hi;

	asm volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(i));
	return (uint64_t)hi << 32 | lo;
}

GUEST_FN guest_features(uint64_t arg)
{
	uint64_t m = offered(guest_q, NULL), done = 0, xcr0 = 3;
	uint32_t a, b, c, d;

#define RUN(feat, code...)						\
	do {								\
		if (m & (1ull << (feat))) {				\
			cur_feat = feat;				\
			code;						\
			done |= 1ull << (feat);				\
		}							\
	} while (0)

	RUN(F_XSAVE, {
		write_cr4(read_cr4() | CR4_OSXSAVE);
		GUEST_ASSERT(read_cr4() & CR4_OSXSAVE);
		__cpuid(1, a, b, c, d);
		GUEST_ASSERT(c & (1u << 27));		/* OSXSAVE follows CR4 */
		GUEST_ASSERT_EQ(xgetbv(0), 1);		/* x87 after reset */
		__cpuid_count(0xd, 0, a, b, c, d);
		if (m & (1ull << F_AVX))
			xcr0 |= 4;
		if (m & (1ull << F_AVX512F))
			xcr0 |= 0xe0;
		asm volatile("xsetbv" : : "c"(0), "a"((uint32_t)xcr0), "d"(0) : "memory");
		GUEST_ASSERT_EQ(xgetbv(0), xcr0);
		__cpuid_count(0xd, 0, a, b, c, d);
		GUEST_ASSERT(b >= 576 && b <= sizeof(xsave_area));	/* size for this XCR0 */
		asm volatile("xsave (%0)\n xrstor (%0)" : : "r"(xsave_area), "a"(-1), "d"(-1) : "memory");
	});
	RUN(F_XSAVEOPT, asm volatile("xsaveopt (%0)" : : "r"(xsave_area), "a"(-1), "d"(-1) : "memory"));
	RUN(F_XSAVEC, asm volatile("xsavec (%0)" : : "r"(xsave_area), "a"(-1), "d"(-1) : "memory"));
	RUN(F_AVX, asm volatile("vxorps %%ymm0, %%ymm0, %%ymm0\n vaddps %%ymm0, %%ymm0, %%ymm1" : : : "xmm0", "xmm1"));
	RUN(F_AVX2, asm volatile("vpaddd %%ymm0, %%ymm0, %%ymm1" : : : "xmm1"));
	RUN(F_FMA, asm volatile("vfmadd132ps %%ymm0, %%ymm0, %%ymm1" : : : "xmm1"));
	RUN(F_F16C, asm volatile("vcvtph2ps %%xmm0, %%ymm1" : : : "xmm1"));
	RUN(F_AVX512F, asm volatile("vpaddd %%zmm0, %%zmm0, %%zmm1\n kmovw %%k1, %%eax" : : : "xmm1", "eax"));
	RUN(F_INVPCID, {
		uint64_t desc[2] = { 0, 0 };

		asm volatile("invpcid %0, %1" : : "m"(desc), "r"(2ull) : "memory");
	});
	RUN(F_RDRAND, asm volatile("rdrand %%eax" : : : "eax", "cc"));
	RUN(F_RDSEED, asm volatile("rdseed %%eax" : : : "eax", "cc"));
	RUN(F_POPCNT, {
		uint64_t r;

		asm volatile("popcnt %1, %0" : "=r"(r) : "r"(0xf0f0ull));
		GUEST_ASSERT_EQ(r, 8);
	});
	RUN(F_SSE42, asm volatile("crc32b %%al, %%ecx" : : : "ecx"));
	RUN(F_SSSE3, asm volatile("pshufb %%xmm0, %%xmm1" : : : "xmm1"));
	RUN(F_SSE41, asm volatile("pminud %%xmm0, %%xmm1" : : : "xmm1"));
	RUN(F_AES, asm volatile("aesenc %%xmm0, %%xmm1" : : : "xmm1"));
	RUN(F_PCLMUL, asm volatile("pclmulqdq $0, %%xmm0, %%xmm1" : : : "xmm1"));
	RUN(F_SHA, asm volatile("sha1nexte %%xmm0, %%xmm1" : : : "xmm1"));
	RUN(F_MOVBE, {
		uint32_t x = 0x11223344, y;

		asm volatile("movbe %1, %0" : "=r"(y) : "m"(x));
		GUEST_ASSERT_EQ(y, 0x44332211);
	});
	RUN(F_BMI1, asm volatile("andn %%eax, %%ecx, %%edx" : : : "edx"));
	RUN(F_BMI2, asm volatile("pdep %%eax, %%ecx, %%edx" : : : "edx"));
	RUN(F_ADX, asm volatile("adcx %%eax, %%ecx" : : : "ecx", "cc"));
	RUN(F_LZCNT, {
		uint32_t r;

		asm volatile("lzcnt %1, %0" : "=r"(r) : "r"(1u) : "cc");
		GUEST_ASSERT_EQ(r, 31);
	});
	RUN(F_FSGSBASE, {
		uint64_t gs;

		write_cr4(read_cr4() | CR4_FSGSBASE);
		asm volatile("wrgsbase %1\n rdgsbase %0" : "=r"(gs) : "r"(0x12345000ull));
		GUEST_ASSERT_EQ(gs, 0x12345000);
		asm volatile("wrgsbase %0" : : "r"(0ull));
		write_cr4(read_cr4() & ~CR4_FSGSBASE);
	});
	RUN(F_SMEP, {
		write_cr4(read_cr4() | CR4_SMEP);
		GUEST_ASSERT(read_cr4() & CR4_SMEP);
		write_cr4(read_cr4() & ~CR4_SMEP);
	});
	RUN(F_UMIP, {
		write_cr4(read_cr4() | CR4_UMIP);
		GUEST_ASSERT(read_cr4() & CR4_UMIP);
		write_cr4(read_cr4() & ~CR4_UMIP);
	});
	RUN(F_PCID, {
		write_cr4(read_cr4() | CR4_PCIDE);
		GUEST_ASSERT(read_cr4() & CR4_PCIDE);
		write_cr4(read_cr4() & ~CR4_PCIDE);
	});
	RUN(F_CLFLUSHOPT, asm volatile("clflushopt %0" : "+m"(line)));
	RUN(F_CLWB, asm volatile("clwb %0" : "+m"(line)));
#undef RUN
	/* Not offered: "enable RDTSCP" is off, so it #UDs (SDM Vol. 3C 26.3).
	 * (RDPID should too, but Bochs runs it.) */
	__cpuid(0x80000001, a, b, c, d);
	GUEST_ASSERT(!(d & (1u << 27)));
	ud_expected = 3;
	asm volatile("rdtscp" : : : "eax", "ecx", "edx");
	GUEST_ASSERT_EQ(ud_seen, 1);
	GUEST_SYNC(done);
}

TEST_F(gt, offered_features_work)
{
	static struct rvmx_cpuid_entry t[MAX_ENT];
	struct table tab = { t, MAX_ENT };
	uint32_t a, b, c, d;
	uint64_t want;
	char list[512] = "";

	ASSERT_EQ(0, gt_create(&self->vm, guest_features));
	ASSERT_EQ(0, gt_install_handler(&self->vm, 6, feature_fault));
	ASSERT_EQ(0, gt_install_handler(&self->vm, 13, feature_fault));
	ASSERT_EQ(0, rvmx_get_cpuid(&self->vm.vcpu[0].rv, t, &tab.n));
	want = offered(table_q, &tab);
	/* rvmx offers XSAVE where the host kernel uses it (vm/cpuid.rs). */
	__cpuid(1, a, b, c, d);
	if (c & (1u << 27)) {
		EXPECT_TRUE(want & (1ull << F_XSAVE));
	} else {
		TH_LOG("the host has no CR4.OSXSAVE: XSAVE not offered");
	}
	for (int i = 0; i < NR_FEAT; i++) {
		if (want & (1ull << i)) {
			strcat(list, " ");
			strcat(list, feat_names[i]);
		}
	}
	TH_LOG("offered and exercised:%s", list);
	RUN_SYNC(&self->vm.vcpu[0], want);
	GT_RUN_EXPECT(&self->vm.vcpu[0], &self->uc, UCALL_DONE);
}

/* ================= FPU/SSE state through RVMX_GET/SET_XSAVE ================= */

/* XMM n in the XSAVE legacy area (SDM Vol. 1 13.4.1, Table 10-2). */
#define XSAVE_XMM(n)		(160 + 16 * (n))
/* XSTATE_BV in the XSAVE header: x87 and SSE state present. */
#define XSAVE_XSTATE_BV		512

GUEST_FN guest_xmm(uint64_t arg)
{
	uint64_t x[2];

	GUEST_SYNC(0);	/* userland sets XMM2 now */
	asm volatile("movdqu %%xmm2, %0" : "=m"(x));
	GUEST_SYNC(x[0]);
	GUEST_SYNC(x[1]);
	x[0] = 0x1122334455667788ull;
	x[1] = 0x99aabbccddeeff00ull;
	asm volatile("movdqu %0, %%xmm3" : : "m"(x));
	GUEST_SYNC(1);	/* userland reads XMM3 now */
}

/* The guest's XMM registers as userland sets and reads them, XCR0 with
 * them; an XCR0 the guest could not set is refused. */
TEST_F(gt, xsave_state_round_trip)
{
	struct gt_vcpu *v = &self->vm.vcpu[0];
	static uint8_t buf[RVMX_XSAVE_SIZE] __attribute__((aligned(64)));
	struct rvmx_xsave x = { .buffer = (uintptr_t)buf };
	const uint64_t want[2] = { 0x0123456789abcdefull, 0xfedcba9876543210ull };
	uint64_t got[2];

	ASSERT_EQ(0, gt_create(&self->vm, guest_xmm));
	RUN_SYNC(v, 0);
	ASSERT_EQ(0, ioctl(v->rv.fd, RVMX_GET_XSAVE, &x));
	EXPECT_EQ(1, x.xcr0 & 1);	/* x87 always; the guest never ran XSETBV */
	memcpy(buf + XSAVE_XMM(2), want, 16);
	buf[XSAVE_XSTATE_BV] |= 3;
	ASSERT_EQ(0, ioctl(v->rv.fd, RVMX_SET_XSAVE, &x));
	RUN_SYNC(v, want[0]);
	RUN_SYNC(v, want[1]);
	RUN_SYNC(v, 1);
	memset(buf, 0, sizeof(buf));
	ASSERT_EQ(0, ioctl(v->rv.fd, RVMX_GET_XSAVE, &x));
	memcpy(got, buf + XSAVE_XMM(3), 16);
	EXPECT_EQ(0x1122334455667788ull, got[0]);
	EXPECT_EQ(0x99aabbccddeeff00ull, got[1]);
	/* XCR0 without x87, or with AVX but no SSE, is never valid. */
	x.xcr0 = 2;
	EXPECT_EQ(-1, ioctl(v->rv.fd, RVMX_SET_XSAVE, &x));
	EXPECT_EQ(EINVAL, errno);
	x.xcr0 = 5;
	EXPECT_EQ(-1, ioctl(v->rv.fd, RVMX_SET_XSAVE, &x));
	EXPECT_EQ(EINVAL, errno);
	GT_RUN_EXPECT(v, &self->uc, UCALL_DONE);
}

TEST_HARNESS_MAIN
