// SPDX-License-Identifier: GPL-2.0
/*
 * Broken guest states that userland can set (RVMX_SET_SREGS, SET_REGS,
 * SET_EVENTS): VM entry must fail with invalid guest state (exit reason 33,
 * SDM Vol. 3C 27.8), reported as RVMX_EXIT_FAIL_ENTRY whose account names
 * the VMCS field and the rule (SDM Vol. 3C 27.3.1). Each case starts from
 * the library's 64-bit state (lib/gtest.h), breaks one rule, and afterwards
 * puts the state back: the guest then runs, so the one change was the
 * cause. The states rvmx refuses at the ioctl are checked at the end.
 *
 * "Bochs:" notes say which check of Bochs 2.7 (cpu/vmx.cc,
 * VMenterLoadCheckGuestState) fails the entry in the emulated host; rules
 * Bochs does not check (so cannot be tested there) are listed at the end.
 */
#include <errno.h>
#include <string.h>

#include "kselftest_harness.h"
#include "lib/util.h"
#include "lib/gtest.h"

/* Exit reason 33 with bit 31 (SDM Vol. 3C 28.2.1, Appendix C). */
#define FAIL_GUEST_STATE	(0x80000000u | 33)

#define CR0_PE		(1ull << 0)
#define CR4_PAE		(1ull << 5)
#define EFER_LME	(1ull << 8)
#define EFER_LMA	(1ull << 10)
#define EFER_NXE	(1ull << 11)
#define NON_CANONICAL	0x0000800000000000ull

/* The state a case changes. */
struct state {
	struct rvmx_sregs s;
	struct rvmx_regs r;
	struct rvmx_events e;
};

static void guest_spin(uint64_t arg)
{
	for (;;)
		GUEST_SYNC(0x600d);
}

FIXTURE(bad) {
	struct gt_vm vm;
	struct gt_ucall uc;
};

FIXTURE_VARIANT(bad) {
	void (*apply)(struct state *st);
	const char *field;	/* must be in the account */
	const char *rule;	/* and this part of the rule */
	int needs_ug;		/* rule as it is with unrestricted guest */
};

FIXTURE_SETUP(bad)
{
	ASSERT_EQ(0, rvmx_ensure_loaded());
	ASSERT_EQ(0, gt_create(&self->vm, guest_spin));
}

FIXTURE_TEARDOWN(bad)
{
	gt_destroy(&self->vm);
}

/* Each case: a function that breaks the state, and what the account must
 * say. */
#define CASE(name, fld, rl, ...)						\
	static void apply_##name(struct state *st) { __VA_ARGS__; }		\
	FIXTURE_VARIANT_ADD(bad, name) { .apply = apply_##name, .field = fld, .rule = rl }
#define CASE_UG(name, fld, rl, ...)						\
	static void apply_##name(struct state *st) { __VA_ARGS__; }		\
	FIXTURE_VARIANT_ADD(bad, name) { .apply = apply_##name, .field = fld, .rule = rl, .needs_ug = 1 }

/* ---- control registers and EFER (SDM Vol. 3C 27.3.1.1) ---- */

/* Bochs: "unrestricted guest CR0.PG without CR0.PE" */
CASE_UG(cr0_pg_without_pe, "GUEST_CR0", "PG (bit 31) is 1 but PE (bit 0) is 0",
	st->s.cr0 &= ~CR0_PE);
/* Bochs: "VMCS guest invalid CR4" (IA32_VMX_CR4_FIXED1) */
CASE(cr4_reserved_bit, "GUEST_CR4", "FIXED0/FIXED1", st->s.cr4 |= 1ull << 31);
/* Bochs: "VMCS guest CR4.PAE=0 in x86-64 mode" */
CASE(ia32e_without_pae, "VM_ENTRY_CONTROLS", "IA-32e mode guest needs CR0.PG = 1 and CR4.PAE = 1",
     st->s.cr4 &= ~CR4_PAE);
/* Bochs: "VMCS guest invalid CR3" (beyond the physical-address width) */
CASE(cr3_beyond_maxphyaddr, "GUEST_CR3", "beyond the physical-address width",
     st->s.cr3 |= 1ull << 52);
/* Bochs: "VMCS guest EFER ... inconsistent value" */
CASE(efer_lma_without_lme, "GUEST_IA32_EFER", "LMA (bit 10) must equal LME (bit 8)",
     st->s.efer = EFER_LMA | EFER_NXE);
/* Bochs: "VMCS guest EFER reserved bits set" */
CASE(efer_reserved_bit, "GUEST_IA32_EFER", "reserved bits are 1", st->s.efer |= 1ull << 1);

/* ---- segment registers (SDM Vol. 3C 27.3.1.2) ---- */

/* Bochs: "VMCS guest CS.TYPE" */
CASE(cs_type_data_read_only, "GUEST_CS_ACCESS_RIGHTS", "type must be accessed code",
     st->s.cs.ar = 0xa091);
/* Bochs: "VMCS guest CS not segment" */
CASE(cs_system_descriptor, "GUEST_CS_ACCESS_RIGHTS", "S and P must be 1", st->s.cs.ar = 0xa08b);
/* Bochs: "VMCS guest CS not present" */
CASE(cs_not_present, "GUEST_CS_ACCESS_RIGHTS", "S and P must be 1", st->s.cs.ar = 0xa01b);
/* Bochs: "VMCS guest CS.AR/LIMIT malformed" (G = 1 needs limit 11:0 all 1) */
CASE(cs_limit_vs_g, "GUEST_CS_ACCESS_RIGHTS", "limit matching G", st->s.cs.limit = 0xffff0);
/* Bochs: "VMCS x86_64 guest wrong CS.D_B/L" */
CASE(cs_l_and_d, "GUEST_CS_ACCESS_RIGHTS", "L and D/B cannot both be 1", st->s.cs.ar = 0xe09b);
/* Bochs: "non-conforming CS.RPL <> CS.DPL" (it checks the RPL, the SDM
 * SS.DPL; both are 0 here) */
CASE(cs_nonconforming_dpl_not_ss_dpl, "GUEST_CS_ACCESS_RIGHTS", "non-conforming code: DPL must equal SS.DPL",
     st->s.cs.ar = 0xa0fb);
/* Bochs: "non-conforming CS.RPL < CS.DPL" (conforming, RPL 0 < DPL 3) */
CASE(cs_conforming_dpl_above_ss_dpl, "GUEST_CS_ACCESS_RIGHTS", "conforming code: DPL must not exceed SS.DPL",
     st->s.cs.ar = 0xa0ff);
/* Bochs: "unrestricted guest CS.DPL != 0" (type 3 CS) */
CASE_UG(cs_type3_dpl3, "GUEST_CS_ACCESS_RIGHTS", "DPL must be 0 for type 3",
	st->s.cs.ar = 0xa0f3; st->s.ss.ar = 0xc0f3);
/* Bochs: "VMCS unrestricted guest SS.DPL != 0" (CS type 3) */
CASE_UG(ss_dpl_with_cs_type3, "GUEST_SS_ACCESS_RIGHTS", "DPL must be 0 when CS is type 3",
	st->s.cs.ar = 0xa093; st->s.ss.ar = 0xc0f3);
/* Bochs: "VMCS guest SS.TYPE". Bochs skips SS when its RPL is 0 in 64-bit
 * mode, so RPL 3 here (allowed with unrestricted guest). */
CASE_UG(ss_type_code, "GUEST_SS_ACCESS_RIGHTS", "a usable SS must be present read/write data",
	st->s.ss.selector = GT_DS | 3; st->s.ss.ar = 0xc09b);
/* Bochs: "VMCS guest DS not ACCESSED" */
CASE(ds_not_accessed, "GUEST_DS_ACCESS_RIGHTS", "a usable data segment must be accessed",
     st->s.ds.ar = 0xc092);
/* Bochs: "VMCS guest CODE segment ES not READABLE" */
CASE(es_execute_only_code, "GUEST_ES_ACCESS_RIGHTS", "readable if code", st->s.es.ar = 0xc099);
/* Bochs: "VMCS guest FS.AR/LIMIT malformed" (G = 0 needs limit 31:20 zero) */
CASE(fs_limit_vs_g, "GUEST_FS_ACCESS_RIGHTS", "limit matching G", st->s.fs.ar = 0x4093);
/* Bochs: "VMCS guest GS.BASE non canonical" */
CASE(gs_base_non_canonical, "GUEST_GS_BASE", "not canonical", st->s.gs.base = NON_CANONICAL);
/* Bochs: "VMCS guest CS.BASE > 32 bit" */
CASE(cs_base_above_4g, "GUEST_CS_BASE", "bits 63:32 must be 0", st->s.cs.base = 1ull << 32);
/* Bochs: "VMCS guest DS.BASE > 32 bit" */
CASE(ds_base_above_4g, "GUEST_DS_BASE", "bits 63:32 must be 0 when usable", st->s.ds.base = 1ull << 32);
/* Bochs: "VMCS guest incorrect TR type" (64-bit available TSS) */
CASE(tr_available_tss, "GUEST_TR_ACCESS_RIGHTS", "busy TSS", st->s.tr.ar = 0x89);
/* Bochs: "VMCS guest incorrect TR type" (16-bit busy TSS in IA-32e mode) */
CASE(tr_16bit_tss_in_ia32e, "GUEST_TR_ACCESS_RIGHTS", "type 11, or 3 outside IA-32e mode",
     st->s.tr.ar = 0x83);
/* Bochs: "VMCS guest TR invalid" */
CASE(tr_unusable, "GUEST_TR_ACCESS_RIGHTS", "usable busy TSS", st->s.tr.ar = 1 << 16 | 0x8b);
/* Bochs: "VMCS guest TR.TI set" */
CASE(tr_selector_ti, "GUEST_TR_SELECTOR", "TI (bit 2) must be 0", st->s.tr.selector = GT_TR | 4);
/* Bochs: "VMCS guest TR.BASE non canonical" */
CASE(tr_base_non_canonical, "GUEST_TR_BASE", "not canonical", st->s.tr.base = NON_CANONICAL);
/* Bochs: "VMCS guest incorrect LDTR type" */
CASE(ldtr_not_an_ldt, "GUEST_LDTR_ACCESS_RIGHTS", "a usable LDTR must be a present LDT",
     st->s.ldtr = (struct rvmx_segment){ .selector = 0x28, .limit = 0xffff, .ar = 0x83 });
/* Bochs: "VMCS guest LDTR.TI set" */
CASE(ldtr_selector_ti, "GUEST_LDTR_SELECTOR", "TI (bit 2) must be 0 for a usable LDTR",
     st->s.ldtr = (struct rvmx_segment){ .selector = 0x2c, .limit = 0xffff, .ar = 0x82 });

/* ---- descriptor tables (SDM Vol. 3C 27.3.1.3) ---- */

/* Bochs: "VMCS guest IDTR/IDTR.BASE non canonical" */
CASE(gdtr_base_non_canonical, "GUEST_GDTR_BASE", "not canonical", st->s.gdt.base = NON_CANONICAL);
CASE(idtr_base_non_canonical, "GUEST_IDTR_BASE", "not canonical", st->s.idt.base = NON_CANONICAL);

/* ---- RIP and RFLAGS (SDM Vol. 3C 27.3.1.4) ---- */

/* Bochs: "VMCS guest RIP > 32 bit" (compatibility mode: CS.L = 0) */
CASE(rip_above_4g_outside_64bit_mode, "GUEST_RIP", "bits 63:32 must be 0 outside 64-bit mode",
     st->s.cs.ar = 0xc09b; st->r.rip |= 1ull << 32);
/* Bochs: "RFLAGS reserved bits are set" */
CASE(rflags_reserved_bit, "GUEST_RFLAGS", "bits 63:22, 15, 5, 3 must be 0", st->r.rflags |= 1 << 3);
/* Bochs: "RFLAGS[1] cleared" */
CASE(rflags_bit1_clear, "GUEST_RFLAGS", "bit 1 must be 1", st->r.rflags &= ~2ull);
/* Bochs: "Enter to x86-64 guest with RFLAGS.VM" */
CASE(rflags_vm_in_ia32e, "GUEST_RFLAGS", "VM (bit 17) must be 0 in IA-32e mode", st->r.rflags |= 1 << 17);

/* ---- non-register state (SDM Vol. 3C 27.3.1.5) ---- */

/* Bochs: "interrupts can't be blocked by STI when EFLAGS.IF = 0" */
CASE(sti_blocking_with_if0, "GUEST_INTERRUPTIBILITY_INFO", "blocking by STI needs RFLAGS.IF = 1",
     st->r.rflags &= ~0x200ull; st->e.interruptibility = RVMX_BLOCKING_STI);

/*
 * Rules userland can break that Bochs 2.7 does not check (the entry
 * succeeds there), so they have no case here:
 * - RIP canonical in 64-bit mode (SDM Vol. 3C 27.3.1.4): not checked;
 * - IA-32e mode guest needs CR0.PG = 1 (27.3.1.1): only CR4.PAE is;
 * - SS with RPL 0 and a 64-bit CS: Bochs skips SS's type, S, P and limit
 *   checks (it takes RPL 0 for a null SS; the SDM exempts an unusable SS);
 * - non-conforming CS: Bochs wants CS.DPL = CS.RPL (an old rule), the SDM
 *   CS.DPL = SS.DPL: CS.DPL = SS.DPL = 3 with RPL 0 fails in Bochs only.
 */

static void put(struct __test_metadata *_metadata, struct gt_vcpu *v, const struct state *st)
{
	ASSERT_EQ(0, rvmx_set_sregs(&v->rv, &st->s));
	ASSERT_EQ(0, rvmx_set_regs(&v->rv, &st->r));
	ASSERT_EQ(0, rvmx_set_events(&v->rv, &st->e));
}

TEST_F(bad, entry_fails_with_account)
{
	struct gt_vcpu *v = &self->vm.vcpu[0];
	struct rvmx_run *run = v->rv.run;
	struct state good, broken;
	struct rvmx_caps caps;

	ASSERT_EQ(0, rvmx_get_caps(self->vm.sys, &caps));
	if (variant->needs_ug && !(caps.flags & RVMX_CAP_UNRESTRICTED_GUEST))
		SKIP(return, "the rule is the one with unrestricted guest, which this CPU lacks");
	ASSERT_EQ(0, rvmx_get_sregs(&v->rv, &good.s));
	ASSERT_EQ(0, rvmx_get_regs(&v->rv, &good.r));
	ASSERT_EQ(0, rvmx_get_events(&v->rv, &good.e));
	broken = good;
	variant->apply(&broken);
	put(_metadata, v, &broken);

	ASSERT_EQ(0, rvmx_run(&v->rv));
	ASSERT_EQ(RVMX_EXIT_FAIL_ENTRY, run->exit_reason);
	EXPECT_EQ(FAIL_GUEST_STATE, run->fail_entry.reason);
	EXPECT_EQ(0, run->fail_entry.vm_instruction_error);
	ASSERT_NE(NULL, memchr(run->fail_entry.account, 0, sizeof(run->fail_entry.account)));
	TH_LOG("account: %s", run->fail_entry.account);
	EXPECT_NE(NULL, strstr(run->fail_entry.account, variant->field));
	EXPECT_NE(NULL, strstr(run->fail_entry.account, variant->rule));
	/* The same state again: the same failure (nothing was half done). */
	ASSERT_EQ(0, rvmx_run(&v->rv));
	ASSERT_EQ(RVMX_EXIT_FAIL_ENTRY, run->exit_reason);
	EXPECT_EQ(FAIL_GUEST_STATE, run->fail_entry.reason);

	/* The good state back: the guest runs. */
	put(_metadata, v, &good);
	GT_RUN_EXPECT(v, &self->uc, UCALL_SYNC);
	EXPECT_EQ(0x600d, self->uc.args[0]);
}

/* ---- what rvmx refuses at the ioctl: never reaches VM entry ---- */

FIXTURE(refused) {
	struct gt_vm vm;
	struct gt_ucall uc;
};

FIXTURE_SETUP(refused)
{
	ASSERT_EQ(0, rvmx_ensure_loaded());
	ASSERT_EQ(0, gt_create(&self->vm, guest_spin));
}

FIXTURE_TEARDOWN(refused)
{
	gt_destroy(&self->vm);
}

/* RVMX_SET_MSRS of one MSR: how many were done (0: refused). */
static int set_msr(struct gt_vcpu *v, uint32_t index, uint64_t data)
{
	struct rvmx_msr_entry e = { .index = index, .data = data };

	return rvmx_set_msrs(&v->rv, &e, 1);
}

TEST_F(refused, at_the_ioctl)
{
	struct gt_vcpu *v = &self->vm.vcpu[0];
	struct rvmx_sregs s, s0;
	struct rvmx_events e = { 0 };
	struct rvmx_debugregs d, d0;

	ASSERT_EQ(0, rvmx_get_sregs(&v->rv, &s0));
	ASSERT_EQ(0, rvmx_get_debugregs(&v->rv, &d0));
	/* Access-rights bits 11:8 and 31:17 are reserved (SDM Vol. 3C 25.4.1). */
	s = s0;
	s.cs.ar |= 1 << 8;
	EXPECT_EQ(-EINVAL, rvmx_set_sregs(&v->rv, &s));
	s = s0;
	s.ss.ar |= 1 << 17;
	EXPECT_EQ(-EINVAL, rvmx_set_sregs(&v->rv, &s));
	/* GDTR/IDTR limits have 16 bits (27.3.1.3). */
	s = s0;
	s.gdt.limit = 0x10000;
	EXPECT_EQ(-EINVAL, rvmx_set_sregs(&v->rv, &s));
	s = s0;
	s.idt.limit = 0x10000;
	EXPECT_EQ(-EINVAL, rvmx_set_sregs(&v->rv, &s));
	s = s0;
	s.cr8 = 16;
	EXPECT_EQ(-EINVAL, rvmx_set_sregs(&v->rv, &s));
	/* STI and MOV-SS blocking together; SMI blocking (27.3.1.5). */
	e.interruptibility = RVMX_BLOCKING_STI | RVMX_BLOCKING_MOV_SS;
	EXPECT_EQ(-EINVAL, rvmx_set_events(&v->rv, &e));
	e.interruptibility = 1 << 2;
	EXPECT_EQ(-EINVAL, rvmx_set_events(&v->rv, &e));
	/* DR7 and DR6 bits 63:32 (SDM Vol. 3B 18.2.4; 27.3.1.1), DEBUGCTL
	 * bits but BTF. */
	d = d0;
	d.dr7 |= 1ull << 32;
	EXPECT_EQ(-EINVAL, rvmx_set_debugregs(&v->rv, &d));
	d = d0;
	d.dr6 |= 1ull << 40;
	EXPECT_EQ(-EINVAL, rvmx_set_debugregs(&v->rv, &d));
	d = d0;
	d.debugctl = 1;	/* LBR */
	EXPECT_EQ(-EINVAL, rvmx_set_debugregs(&v->rv, &d));
	/* MSRs VM entry checks: WRMSR's rules refuse them (0 done). */
	EXPECT_EQ(0, set_msr(v, 0x175, NON_CANONICAL));		/* SYSENTER_ESP */
	EXPECT_EQ(0, set_msr(v, 0x176, NON_CANONICAL));		/* SYSENTER_EIP */
	EXPECT_EQ(0, set_msr(v, 0x277, 0x0007040600070402ull));	/* PAT: type 2 */
	EXPECT_EQ(0, set_msr(v, 0xc0000080, EFER_LME | EFER_LMA | EFER_NXE | 1 << 1));
	EXPECT_EQ(0, set_msr(v, 0xc0000100, NON_CANONICAL));	/* FS_BASE */
	/* None of it stuck: the guest runs. */
	GT_RUN_EXPECT(v, &self->uc, UCALL_SYNC);
	EXPECT_EQ(0x600d, self->uc.args[0]);
}

TEST_HARNESS_MAIN
