// SPDX-License-Identifier: GPL-2.0
/*
 * Exceptions the guest raises itself reach its own IDT with the right
 * vector, error code and RIP (SDM Vol. 3A 6.15), and the guest test library
 * (lib/gtest.h) works: ucalls, asserts with file and line, handlers that
 * resume the guest. The guest code is plain C in this file; each faulting
 * instruction carries an asm label whose address the test compares with.
 */
#include <string.h>

#include "kselftest_harness.h"
#include "lib/util.h"
#include "lib/gtest.h"

/* An asm label `name` at this point of the guest code. */
#define LABEL(name) #name ":\n"
extern const char ud_insn[], de_insn[], bp_insn[], bp_after[], gp_nc_insn[], gp_sel_insn[], gp_sel_end[],
	gp_int_insn[], pf_ro_insn[], pf_np_insn[], nm_insn[], db_after[], db_1[], db_2[], db_3[],
	db_4[], hlt_after[];

/* Guest functions that hold labels: one copy each, never inlined. */
#define GUEST_FN static __attribute__((noinline, noclone)) void

#define CR0_TS		(1ull << 3)
#define RFLAGS_TF	(1ull << 8)

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

/* The next ucall is exception `vec` with error code `err` at `rip`. */
#define EXPECT_EXCEPTION(vec, err, rip)						\
	do {									\
		GT_RUN_EXPECT(&self->vm.vcpu[0], &self->uc, UCALL_EXCEPTION);	\
		EXPECT_EQ(vec, self->uc.args[GT_EXC_VECTOR]);			\
		EXPECT_EQ(err, self->uc.args[GT_EXC_ERROR]);			\
		EXPECT_EQ((uintptr_t)(rip), self->uc.args[GT_EXC_RIP]);		\
	} while (0)

#define RUN_SYNC(v)								\
	do {									\
		GT_RUN_EXPECT(&self->vm.vcpu[0], &self->uc, UCALL_SYNC);	\
		EXPECT_EQ((uint64_t)(v), self->uc.args[0]);			\
	} while (0)

/* ---- the library ---- */

static uint64_t guest_global = 0x1111;

GUEST_FN guest_basics(uint64_t arg)
{
	volatile double d = (double)arg;	/* SSE: CR4.OSFXSR */
	uint16_t cs, ss;

	asm volatile("mov %%cs, %0\n mov %%ss, %1" : "=r"(cs), "=r"(ss));
	GUEST_SYNC(arg * 3);
	GUEST_SYNC((uint64_t)(d * 1.5));
	GUEST_SYNC((uint64_t)cs << 16 | ss);
	GUEST_SYNC(guest_global);
	guest_global = 0x2222;	/* the guest's copy only */
	GUEST_SYNC(guest_global);
}	/* returning is GUEST_DONE() */

TEST_F(gt, sync_sse_globals_and_return)
{
	struct gt_vcpu *v = &self->vm.vcpu[0];

	guest_global = 0x3333;	/* the guest copies it at gt_create() */
	ASSERT_EQ(0, gt_create(&self->vm, guest_basics));
	guest_global = 0x4444;
	ASSERT_EQ(0, gt_vcpu_start(v, guest_basics, 0x1234));
	RUN_SYNC(0x1234 * 3);
	RUN_SYNC(0x1234 * 3 / 2);
	RUN_SYNC(GT_CS << 16 | GT_DS);
	RUN_SYNC(0x3333);
	RUN_SYNC(0x2222);
	EXPECT_EQ(0x4444, guest_global);
	EXPECT_EQ(0x2222, GT_GUEST(&self->vm, guest_global));
	GT_RUN_EXPECT(v, &self->uc, UCALL_DONE);
	GT_RUN_EXPECT(v, &self->uc, UCALL_DONE);	/* and stays done */
}

GUEST_FN guest_per_vcpu(uint64_t id)
{
	uint64_t rsp;

	asm volatile("mov %%rsp, %0" : "=r"(rsp));
	GUEST_SYNC(id);
	GUEST_SYNC((rsp - GT_STACKS_GPA) / GT_STACK_SIZE);
}

TEST_F(gt, vcpus_have_their_own_stack_and_argument)
{
	ASSERT_EQ(0, gt_create_vcpus(&self->vm, 3, guest_per_vcpu));
	for (int i = 2; i >= 0; i--) {
		struct gt_vcpu *v = &self->vm.vcpu[i];

		GT_RUN_EXPECT(v, &self->uc, UCALL_SYNC);
		EXPECT_EQ(i, self->uc.args[0]);
		GT_RUN_EXPECT(v, &self->uc, UCALL_SYNC);
		EXPECT_EQ(i, self->uc.args[0]);
		GT_RUN_EXPECT(v, &self->uc, UCALL_DONE);
	}
}

GUEST_FN guest_assert_eq(uint64_t arg)
{
	GUEST_ASSERT_EQ(arg + 1, 1);
	GUEST_SYNC(__LINE__ + 1);
	GUEST_ASSERT_EQ(arg + 1, 3);
	GUEST_SYNC(0xbad);
}

TEST_F(gt, guest_assert_eq_reports_file_line_and_values)
{
	uint64_t line;

	ASSERT_EQ(0, gt_create(&self->vm, guest_assert_eq));
	GT_RUN_EXPECT(&self->vm.vcpu[0], &self->uc, UCALL_SYNC);
	line = self->uc.args[0];
	ASSERT_EQ(UCALL_ASSERT, gt_run(&self->vm.vcpu[0], &self->uc));
	EXPECT_EQ(line, self->uc.line);
	EXPECT_STREQ("exception_test.c", self->uc.file + strlen(self->uc.file) - 16);
	EXPECT_STREQ("arg + 1 == 3", self->uc.expr);
	EXPECT_EQ(1, self->uc.args[0]);
	EXPECT_EQ(3, self->uc.args[1]);
	/* An assertion stops the guest. */
	EXPECT_EQ(UCALL_ASSERT, gt_run(&self->vm.vcpu[0], &self->uc));
	EXPECT_EQ(line, self->uc.line);
}

GUEST_FN guest_assert(uint64_t arg)
{
	GUEST_SYNC(__LINE__ + 1);
	GUEST_ASSERT(arg == 5);
}

TEST_F(gt, guest_assert_reports_expression)
{
	uint64_t line;

	ASSERT_EQ(0, gt_create(&self->vm, guest_assert));
	GT_RUN_EXPECT(&self->vm.vcpu[0], &self->uc, UCALL_SYNC);
	line = self->uc.args[0];
	ASSERT_EQ(UCALL_ASSERT, gt_run(&self->vm.vcpu[0], &self->uc));
	EXPECT_EQ(line, self->uc.line);
	EXPECT_STREQ("arg == 5", self->uc.expr);
}

GUEST_FN guest_hlt(uint64_t arg)
{
	asm volatile("hlt\n" LABEL(hlt_after));
}

/* An exit that is no ucall is reported, not taken for one. */
TEST_F(gt, other_exit_is_no_ucall)
{
	struct rvmx_regs regs;

	ASSERT_EQ(0, gt_create(&self->vm, guest_hlt));
	EXPECT_EQ(UCALL_NONE, gt_run(&self->vm.vcpu[0], &self->uc));
	EXPECT_EQ(RVMX_EXIT_HLT, self->vm.vcpu[0].rv.run->exit_reason);
	ASSERT_EQ(0, rvmx_get_regs(&self->vm.vcpu[0].rv, &regs));
	EXPECT_EQ((uintptr_t)hlt_after, regs.rip);
}

/* ---- faults and traps, default handling (UCALL_EXCEPTION) ---- */

GUEST_FN guest_ud(uint64_t arg)
{
	asm volatile(LABEL(ud_insn) "ud2");
}

TEST_F(gt, ud)
{
	ASSERT_EQ(0, gt_create(&self->vm, guest_ud));
	EXPECT_EXCEPTION(6, 0, ud_insn);
	/* The guest stays stopped in its handler. */
	EXPECT_EXCEPTION(6, 0, ud_insn);
}

GUEST_FN guest_de(uint64_t arg)
{
	asm volatile("xor %%ecx, %%ecx\n" LABEL(de_insn) "div %%ecx" : : : "eax", "ecx", "edx");
}

TEST_F(gt, de_divide_by_zero)
{
	ASSERT_EQ(0, gt_create(&self->vm, guest_de));
	EXPECT_EXCEPTION(0, 0, de_insn);
}

GUEST_FN guest_bp(uint64_t arg)
{
	asm volatile(LABEL(bp_insn) "int3\n" LABEL(bp_after));
}

/* #BP is a trap: RIP is past the INT3 (SDM Vol. 3A 6.5). */
TEST_F(gt, bp_trap_reports_next_rip)
{
	ASSERT_EQ(0, gt_create(&self->vm, guest_bp));
	EXPECT_EXCEPTION(3, 0, bp_after);
	EXPECT_EQ((uintptr_t)bp_insn + 1, (uintptr_t)bp_after);	/* INT3 is one byte */
}

GUEST_FN guest_gp_noncanonical(uint64_t arg)
{
	asm volatile("movabs $0x8000000000000000, %%rax\n" LABEL(gp_nc_insn) "mov (%%rax), %%rax"
		     : : : "rax");
}

/* A non-canonical data address: #GP(0) (SDM Vol. 3A 3.3.7.1). */
TEST_F(gt, gp_noncanonical_address)
{
	ASSERT_EQ(0, gt_create(&self->vm, guest_gp_noncanonical));
	EXPECT_EXCEPTION(13, 0, gp_nc_insn);
}

GUEST_FN guest_gp_selector(uint64_t arg)
{
	asm volatile("mov $0x50, %%eax\n" LABEL(gp_sel_insn) "mov %%eax, %%ds\n" LABEL(gp_sel_end)
		     : : : "eax");
}

/* A selector past the GDT limit: #GP(selector) (SDM Vol. 3A 6.13). */
TEST_F(gt, gp_selector_beyond_gdt)
{
	ASSERT_EQ(0, gt_create(&self->vm, guest_gp_selector));
	EXPECT_EXCEPTION(13, 0x50, gp_sel_insn);
}

GUEST_FN guest_gp_int(uint64_t arg)
{
	asm volatile(LABEL(gp_int_insn) "int $0x40");
}

/* INT n past the IDT limit: #GP(n * 8 + 2), IDT bit set (SDM Vol. 3A 6.13). */
TEST_F(gt, gp_int_beyond_idt_limit)
{
	ASSERT_EQ(0, gt_create(&self->vm, guest_gp_int));
	EXPECT_EXCEPTION(13, 0x40 * 8 + 2, gp_int_insn);
}

GUEST_FN guest_pf_write(uint64_t addr)
{
	asm volatile(LABEL(pf_ro_insn) "movb $1, (%0)" : : "r"(addr) : "memory");
}

/* Write to a read-only page with CR0.WP: error code P | W/R (SDM Vol. 3A
 * 4.7), CR2 the address. */
TEST_F(gt, pf_write_to_read_only_page)
{
	uint64_t addr = GT_SCRATCH_GPA + 0x5008;

	ASSERT_EQ(0, gt_create(&self->vm, guest_pf_write));
	*gt_pte(&self->vm, addr) &= ~GT_PTE_W;
	ASSERT_EQ(0, gt_vcpu_start(&self->vm.vcpu[0], guest_pf_write, addr));
	EXPECT_EXCEPTION(14, 0x3, pf_ro_insn);
	EXPECT_EQ(addr, self->uc.args[GT_EXC_CR2]);
}

GUEST_FN guest_pf_read(uint64_t addr)
{
	asm volatile(LABEL(pf_np_insn) "mov (%0), %%al" : : "r"(addr) : "eax", "memory");
}

/* Read of a not-present page: error code 0. */
TEST_F(gt, pf_read_of_not_present_page)
{
	uint64_t addr = GT_SCRATCH_GPA + 0x7123;

	ASSERT_EQ(0, gt_create(&self->vm, guest_pf_read));
	*gt_pte(&self->vm, addr) &= ~GT_PTE_P;
	ASSERT_EQ(0, gt_vcpu_start(&self->vm.vcpu[0], guest_pf_read, addr));
	EXPECT_EXCEPTION(14, 0, pf_np_insn);
	EXPECT_EQ(addr, self->uc.args[GT_EXC_CR2]);
}

GUEST_FN guest_pf_fetch(uint64_t addr)
{
	((void (*)(void))addr)();
}

/* Fetch from an NX page (EFER.NXE): error code P | I/D, and RIP and CR2 are
 * the target. The page holds a RET, so only NX can stop it. */
TEST_F(gt, pf_fetch_from_nx_page)
{
	uint64_t addr = GT_SCRATCH_GPA + 0x9000;

	ASSERT_EQ(0, gt_create(&self->vm, guest_pf_fetch));
	*(uint8_t *)gt_hva(&self->vm, addr) = 0xc3;
	*gt_pte(&self->vm, addr) |= GT_PTE_NX;
	ASSERT_EQ(0, gt_vcpu_start(&self->vm.vcpu[0], guest_pf_fetch, addr));
	EXPECT_EXCEPTION(14, 0x11, addr);
	EXPECT_EQ(addr, self->uc.args[GT_EXC_CR2]);
}

GUEST_FN guest_single_step(uint64_t arg)
{
	gt_touch_tables();
	asm volatile("pushfq\n orq $0x100, (%%rsp)\n popfq\n nop\n" LABEL(db_after) : : : "memory", "cc");
}

/* TF set by POPF: the trap comes after the next instruction (SDM Vol. 3A
 * 18.3.1.4), RIP past it.
 * TODO: check DR6.BS once rvmx emulates MOV DR (it exits raw today). */
TEST_F(gt, db_single_step)
{
	ASSERT_EQ(0, gt_create(&self->vm, guest_single_step));
	EXPECT_EXCEPTION(1, 0, db_after);
}

/* ---- handlers installed by the test: the guest goes on ---- */

static uint64_t seen_vector, seen_error, seen_rip, seen_count, seen_rips[4];

static void gp_skip(struct gt_exc_frame *f)
{
	seen_vector = f->vector;
	seen_error = f->error_code;
	seen_rip = f->rip;
	f->rip = (uintptr_t)gp_sel_end;
}

GUEST_FN guest_gp_resumes(uint64_t arg)
{
	uint16_t ds;

	guest_gp_selector(0);
	asm volatile("mov %%ds, %0" : "=r"(ds));
	GUEST_SYNC(seen_vector);
	GUEST_SYNC(seen_error);
	GUEST_SYNC(seen_rip);
	GUEST_ASSERT_EQ(ds, GT_DS);	/* the faulting load changed nothing */
}

TEST_F(gt, handler_sees_error_code_and_skips_the_instruction)
{
	ASSERT_EQ(0, gt_create(&self->vm, guest_gp_resumes));
	ASSERT_EQ(0, gt_install_handler(&self->vm, 13, gp_skip));
	RUN_SYNC(13);
	RUN_SYNC(0x50);
	RUN_SYNC((uintptr_t)gp_sel_insn);
	GT_RUN_EXPECT(&self->vm.vcpu[0], &self->uc, UCALL_DONE);
	EXPECT_EQ(-EINVAL, gt_install_handler(&self->vm, 32, gp_skip));
}

static void nm_clts(struct gt_exc_frame *f)
{
	asm volatile("clts");
	seen_vector = f->vector;
	seen_rip = f->rip;
	seen_count++;
}

GUEST_FN guest_nm(uint64_t arg)
{
	uint64_t cr0;

	asm volatile(LABEL(nm_insn) "movaps %%xmm0, %%xmm1" : : : "xmm1");
	asm volatile("mov %%cr0, %0" : "=r"(cr0));
	GUEST_SYNC(seen_vector);
	GUEST_SYNC(seen_rip);
	GUEST_SYNC(seen_count);
	GUEST_SYNC(cr0 & CR0_TS);
}

/* CR0.TS set: an SSE instruction raises #NM (SDM Vol. 3A 2.5); the handler's
 * CLTS lets it run on return. */
TEST_F(gt, nm_with_cr0_ts_and_clts_in_handler)
{
	struct rvmx_sregs s;

	ASSERT_EQ(0, gt_create(&self->vm, guest_nm));
	ASSERT_EQ(0, gt_install_handler(&self->vm, 7, nm_clts));
	ASSERT_EQ(0, rvmx_get_sregs(&self->vm.vcpu[0].rv, &s));
	s.cr0 |= CR0_TS;
	ASSERT_EQ(0, rvmx_set_sregs(&self->vm.vcpu[0].rv, &s));
	RUN_SYNC(7);
	RUN_SYNC((uintptr_t)nm_insn);
	RUN_SYNC(1);
	RUN_SYNC(0);
	GT_RUN_EXPECT(&self->vm.vcpu[0], &self->uc, UCALL_DONE);
	ASSERT_EQ(0, rvmx_get_sregs(&self->vm.vcpu[0].rv, &s));
	EXPECT_EQ(0, s.cr0 & CR0_TS);
}

static void db_step(struct gt_exc_frame *f)
{
	seen_rips[seen_count++] = f->rip;
	if (seen_count == 3)
		f->rflags &= ~RFLAGS_TF;
}

GUEST_FN guest_db_steps(uint64_t arg)
{
	if (arg == 0)
		gt_touch_tables();
	asm volatile("pushfq\n orq $0x100, (%%rsp)\n popfq\n"
		     LABEL(db_1) "nop\n" LABEL(db_2) "nop\n" LABEL(db_3) "nop\n" LABEL(db_4) "nop\n"
		     : : : "memory", "cc");
	GUEST_SYNC(seen_count);
	GUEST_SYNC(seen_rips[0]);
	GUEST_SYNC(seen_rips[1]);
	GUEST_SYNC(seen_rips[2]);
}

/* One #DB per instruction while TF stays set in the frame IRETQ restores;
 * none once the handler clears it. */
TEST_F(gt, db_handler_single_steps_three_instructions)
{
	ASSERT_EQ(0, gt_create(&self->vm, guest_db_steps));
	ASSERT_EQ(0, gt_install_handler(&self->vm, 1, db_step));
	RUN_SYNC(3);
	RUN_SYNC((uintptr_t)db_2);
	RUN_SYNC((uintptr_t)db_3);
	RUN_SYNC((uintptr_t)db_4);
	GT_RUN_EXPECT(&self->vm.vcpu[0], &self->uc, UCALL_DONE);
}

/*
 * The same with IDT and GDT untouched: the first two deliveries of #DB
 * exit for EPT violations (rvmx maps guest pages on first touch). The
 * VMM must deliver the event again from the IDT-vectoring information
 * (SDM Vol. 3C 28.2.4; KVM's vmx_complete_interrupts). A single-step trap
 * is not raised again by re-executing, so without that it is lost.
 */
TEST_F(gt, db_trap_survives_exit_during_delivery)
{
	ASSERT_EQ(0, gt_create(&self->vm, guest_db_steps));
	ASSERT_EQ(0, gt_install_handler(&self->vm, 1, db_step));
	ASSERT_EQ(0, gt_vcpu_start(&self->vm.vcpu[0], guest_db_steps, 1));
	RUN_SYNC(3);
	RUN_SYNC((uintptr_t)db_2);
	RUN_SYNC((uintptr_t)db_3);
	RUN_SYNC((uintptr_t)db_4);
	GT_RUN_EXPECT(&self->vm.vcpu[0], &self->uc, UCALL_DONE);
}

TEST_HARNESS_MAIN
