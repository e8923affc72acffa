// SPDX-License-Identifier: GPL-2.0
/*
 * Events and per-vCPU exit controls, seen from the guest: RVMX_INJECT of an
 * exception (error code, #PF payload), an NMI and external interrupts
 * (delivered only when the guest's RFLAGS.IF and blocking allow, SDM Vol.
 * 3A 6.8.1), run->request_interrupt_window, RVMX_GET/SET_EVENTS; and the
 * RVMX_VCPU_CAP_* controls: MTF counts instructions, HLT exiting off lets
 * an injected interrupt wake a halted guest, PAUSE exiting.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/time.h>

#include "kselftest_harness.h"
#include "lib/util.h"
#include "lib/gtest.h"

/* An asm label `name` at this point of the guest code. */
#define LABEL(name) #name ":\n"
/* Guest functions that hold labels: one copy each, never inlined. */
#define GUEST_FN static __attribute__((noinline, noclone)) void

/* Raw OUTs (not ucalls): the host sees RVMX_EXIT_IO at these ports. */
#define PORT_A	0x80
#define PORT_B	0x81

FIXTURE(ev) {
	struct gt_vm vm;
	struct gt_ucall uc;
	struct gt_vcpu *v;
	struct rvmx_run *run;
};

FIXTURE_SETUP(ev)
{
	ASSERT_EQ(0, rvmx_ensure_loaded());
}

FIXTURE_TEARDOWN(ev)
{
	gt_destroy(&self->vm);
}

/* Creates the VM with vCPU 0 at `fn`. */
#define CREATE(fn)								\
	do {									\
		ASSERT_EQ(0, gt_create(&self->vm, fn));				\
		self->v = &self->vm.vcpu[0];					\
		self->run = self->v->rv.run;					\
	} while (0)

#define RUN_SYNC(val)								\
	do {									\
		GT_RUN_EXPECT(self->v, &self->uc, UCALL_SYNC);			\
		EXPECT_EQ((uint64_t)(val), self->uc.args[0]);			\
	} while (0)

/* The next exit is a raw OUT to `p`. */
#define RUN_OUT(p)								\
	do {									\
		ASSERT_EQ(0, rvmx_run(&self->v->rv));				\
		ASSERT_EQ(RVMX_EXIT_IO, self->run->exit_reason)			\
			TH_LOG("exit %s", rvmx_exit_name(self->run->exit_reason)); \
		ASSERT_EQ(p, self->run->io.port);				\
	} while (0)

static void expect_rip(struct __test_metadata *_metadata, struct gt_vcpu *v, const void *rip)
{
	struct rvmx_regs r;

	ASSERT_EQ(0, rvmx_get_regs(&v->rv, &r));
	EXPECT_EQ((uintptr_t)rip, r.rip);
}

/* What the guest's handlers saw, in order. */
#define MAX_SEEN 8
static uint64_t seen_n, seen_vec[MAX_SEEN], seen_err[MAX_SEEN], seen_rip[MAX_SEEN], seen_cr2[MAX_SEEN];
static uint64_t nmi_nested, in_nmi;

static void record(struct gt_exc_frame *f)
{
	uint64_t cr2;

	asm volatile("mov %%cr2, %0" : "=r"(cr2));
	if (seen_n < MAX_SEEN) {
		seen_vec[seen_n] = f->vector;
		seen_err[seen_n] = f->error_code;
		seen_rip[seen_n] = f->rip;
		seen_cr2[seen_n] = cr2;
	}
	seen_n++;
}

/* ================= RVMX_INJECT ================= */

extern const char inj_1[], inj_2[];

GUEST_FN guest_inject_exc(uint64_t arg)
{
	gt_touch_tables();
	asm volatile("outb %%al, %0\n" LABEL(inj_1) "outb %%al, %1\n" LABEL(inj_2)
		     : : "i"(PORT_A), "i"(PORT_B) : "memory");
	GUEST_SYNC(seen_n);
	GUEST_SYNC(seen_vec[0]);
	GUEST_SYNC(seen_err[0]);
	GUEST_SYNC(seen_rip[0]);
	GUEST_SYNC(seen_vec[1]);
	GUEST_SYNC(seen_err[1]);
	GUEST_SYNC(seen_rip[1]);
	GUEST_SYNC(seen_cr2[1]);
}

/* An injected exception reaches the guest's handler with its error code,
 * at the RIP where the guest stopped (a fault frame: SDM Vol. 3A 6.12);
 * a #PF's payload is CR2. */
TEST_F(ev, inject_exception_with_error_code)
{
	struct rvmx_event gp = { .kind = RVMX_EVENT_EXCEPTION, .vector = 13, .has_error_code = 1,
				 .error_code = 0x1234 };
	struct rvmx_event pf = { .kind = RVMX_EVENT_EXCEPTION, .vector = 14, .has_error_code = 1,
				 .error_code = 0x6, .has_payload = 1, .payload = 0x3001234 };
	struct rvmx_event bad;
	struct rvmx_events evs;

	CREATE(guest_inject_exc);
	ASSERT_EQ(0, gt_install_handler(&self->vm, 13, record));
	ASSERT_EQ(0, gt_install_handler(&self->vm, 14, record));
	RUN_OUT(PORT_A);
	/* Refused: no error code for #GP, one for #UD, NMI as an exception,
	 * a payload on #GP, reserved bits. */
	bad = gp;
	bad.has_error_code = 0;
	EXPECT_EQ(-EINVAL, rvmx_inject(&self->v->rv, &bad));
	bad = gp;
	bad.vector = 6;
	EXPECT_EQ(-EINVAL, rvmx_inject(&self->v->rv, &bad));
	bad = gp;
	bad.vector = 2;
	bad.has_error_code = 0;
	EXPECT_EQ(-EINVAL, rvmx_inject(&self->v->rv, &bad));
	bad = gp;
	bad.has_payload = 1;
	EXPECT_EQ(-EINVAL, rvmx_inject(&self->v->rv, &bad));
	bad = gp;
	bad.reserved = 1;
	EXPECT_EQ(-EINVAL, rvmx_inject(&self->v->rv, &bad));

	ASSERT_EQ(0, rvmx_inject(&self->v->rv, &gp));
	/* One exception at a time. */
	EXPECT_EQ(-EBUSY, rvmx_inject(&self->v->rv, &pf));
	ASSERT_EQ(0, rvmx_get_events(&self->v->rv, &evs));
	EXPECT_EQ(RVMX_EVENT_EXCEPTION, evs.exception.kind);
	EXPECT_EQ(13, evs.exception.vector);
	EXPECT_EQ(1, evs.exception.has_error_code);
	EXPECT_EQ(0x1234, evs.exception.error_code);
	RUN_OUT(PORT_B);
	ASSERT_EQ(0, rvmx_get_events(&self->v->rv, &evs));
	EXPECT_EQ(0, evs.exception.kind);
	ASSERT_EQ(0, rvmx_inject(&self->v->rv, &pf));
	RUN_SYNC(2);
	RUN_SYNC(13);
	RUN_SYNC(0x1234);
	RUN_SYNC((uintptr_t)inj_1);
	RUN_SYNC(14);
	RUN_SYNC(0x6);
	RUN_SYNC((uintptr_t)inj_2);
	RUN_SYNC(0x3001234);
	GT_RUN_EXPECT(self->v, &self->uc, UCALL_DONE);
}

extern const char nmi_1[], nmi_in[], nmi_2[];

static void nmi_handler(struct gt_exc_frame *f)
{
	if (in_nmi)
		nmi_nested++;
	in_nmi = 1;
	record(f);
	/* The first time: let the host inject another NMI while this one is
	 * being handled (NMIs are blocked until IRET, SDM Vol. 3A 6.7.1). */
	if (seen_n == 1)
		asm volatile("outb %%al, %0\n" LABEL(nmi_in) : : "i"(PORT_B) : "memory");
	in_nmi = 0;
}

GUEST_FN guest_nmi(uint64_t arg)
{
	gt_touch_tables();
	asm volatile("outb %%al, %0\n" LABEL(nmi_1) "nop\n" LABEL(nmi_2) : : "i"(PORT_A) : "memory");
	GUEST_SYNC(seen_n);
	GUEST_SYNC(seen_vec[0]);
	GUEST_SYNC(seen_rip[0]);
	GUEST_SYNC(seen_vec[1]);
	GUEST_SYNC(nmi_nested);
}

TEST_F(ev, inject_nmi)
{
	struct rvmx_event nmi = { .kind = RVMX_EVENT_NMI, .vector = 2 };
	struct rvmx_events evs;
	struct rvmx_caps caps;

	CREATE(guest_nmi);
	ASSERT_EQ(0, rvmx_get_caps(self->vm.sys, &caps));
	ASSERT_EQ(0, gt_install_handler(&self->vm, 2, nmi_handler));
	RUN_OUT(PORT_A);
	ASSERT_EQ(0, rvmx_inject(&self->v->rv, &nmi));
	ASSERT_EQ(0, rvmx_get_events(&self->v->rv, &evs));
	EXPECT_EQ(RVMX_EVENT_NMI, evs.nmi.kind);
	EXPECT_EQ(0, evs.interruptibility & RVMX_BLOCKING_NMI);
	/* In the handler: blocked by NMI; a second NMI waits for its IRET. */
	RUN_OUT(PORT_B);
	expect_rip(_metadata, self->v, nmi_in);
	ASSERT_EQ(0, rvmx_get_events(&self->v->rv, &evs));
	EXPECT_EQ(0, evs.nmi.kind);
	if (caps.flags & RVMX_CAP_VIRTUAL_NMI) {
		EXPECT_EQ(RVMX_BLOCKING_NMI, evs.interruptibility & RVMX_BLOCKING_NMI);
	}
	ASSERT_EQ(0, rvmx_inject(&self->v->rv, &nmi));
	if (caps.flags & RVMX_CAP_VIRTUAL_NMI) {
		/* NMI-window exiting delivers it right after the IRET. */
		RUN_SYNC(2);
		RUN_SYNC(2);
		RUN_SYNC((uintptr_t)nmi_1);
		RUN_SYNC(2);
		RUN_SYNC(0);
	} else {
		TH_LOG("no virtual NMIs: the second NMI is not checked");
	}
}

/* ================= external interrupts ================= */

#define VEC_A	0x40
#define VEC_B	0xec

extern const char sti_insn[], after_shadow[], window_at[];

static void irq_handler(struct gt_exc_frame *f)
{
	record(f);
}

GUEST_FN guest_irq_if(uint64_t arg)
{
	asm volatile("cli");
	GUEST_SYNC(1);			/* userland injects, IF = 0 */
	GUEST_SYNC(seen_n);		/* not yet */
	/* STI blocks interrupts for one more instruction (SDM Vol. 2B STI). */
	asm volatile(LABEL(sti_insn) "sti\n nop\n" LABEL(after_shadow) "nop" : : : "memory");
	GUEST_SYNC(seen_n);
	GUEST_SYNC(seen_vec[0]);
	GUEST_SYNC(seen_rip[0]);
}

/* An interrupt injected while IF = 0 waits, and is delivered after STI and
 * its shadow (SDM Vol. 3A 6.8.1, 6.8.3). */
TEST_F(ev, interrupt_waits_for_sti)
{
	struct rvmx_event irq = { .kind = RVMX_EVENT_INTERRUPT, .vector = VEC_A };
	struct rvmx_event bad = irq;
	struct rvmx_events evs;

	CREATE(guest_irq_if);
	ASSERT_EQ(0, gt_install_irq_handler(&self->vm, VEC_A, irq_handler));
	RUN_SYNC(1);
	EXPECT_EQ(0, self->run->if_flag);
	EXPECT_EQ(0, self->run->ready_for_interrupt_injection);
	bad.vector = 14;		/* an exception vector */
	EXPECT_EQ(-EINVAL, rvmx_inject(&self->v->rv, &bad));
	ASSERT_EQ(0, rvmx_inject(&self->v->rv, &irq));
	EXPECT_EQ(-EBUSY, rvmx_inject(&self->v->rv, &irq));
	RUN_SYNC(0);
	ASSERT_EQ(0, rvmx_get_events(&self->v->rv, &evs));
	EXPECT_EQ(RVMX_EVENT_INTERRUPT, evs.interrupt.kind);
	EXPECT_EQ(VEC_A, evs.interrupt.vector);
	EXPECT_EQ(0, self->run->ready_for_interrupt_injection);
	RUN_SYNC(1);
	RUN_SYNC(VEC_A);
	RUN_SYNC((uintptr_t)after_shadow);
	EXPECT_EQ(1, self->run->if_flag);
	EXPECT_EQ(1, self->run->ready_for_interrupt_injection);
	ASSERT_EQ(0, rvmx_get_events(&self->v->rv, &evs));
	EXPECT_EQ(0, evs.interrupt.kind);
	GT_RUN_EXPECT(self->v, &self->uc, UCALL_DONE);
}

GUEST_FN guest_window(uint64_t arg)
{
	asm volatile("cli");
	GUEST_SYNC(1);			/* userland asks for the window */
	asm volatile("nop\n nop\n sti\n nop\n" LABEL(window_at) "nop" : : : "memory");
	GUEST_SYNC(seen_n);
	GUEST_SYNC(seen_vec[0]);
	GUEST_SYNC(seen_rip[0]);
}

/* request_interrupt_window: RVMX_EXIT_IRQ_WINDOW as soon as IF = 1 and no
 * STI shadow; an interrupt injected then goes in at once. */
TEST_F(ev, interrupt_window_exit)
{
	struct rvmx_event irq = { .kind = RVMX_EVENT_INTERRUPT, .vector = VEC_B };

	CREATE(guest_window);
	ASSERT_EQ(0, gt_install_irq_handler(&self->vm, VEC_B, irq_handler));
	RUN_SYNC(1);
	self->run->request_interrupt_window = 1;
	ASSERT_EQ(0, rvmx_run(&self->v->rv));
	ASSERT_EQ(RVMX_EXIT_IRQ_WINDOW, self->run->exit_reason)
		TH_LOG("exit %s", rvmx_exit_name(self->run->exit_reason));
	expect_rip(_metadata, self->v, window_at);
	EXPECT_EQ(1, self->run->if_flag);
	EXPECT_EQ(1, self->run->ready_for_interrupt_injection);
	self->run->request_interrupt_window = 0;
	ASSERT_EQ(0, rvmx_inject(&self->v->rv, &irq));
	RUN_SYNC(1);
	RUN_SYNC(VEC_B);
	RUN_SYNC((uintptr_t)window_at);
	/* With IF = 1 already, the window is open at once. */
	self->run->request_interrupt_window = 1;
	ASSERT_EQ(0, rvmx_run(&self->v->rv));
	EXPECT_EQ(RVMX_EXIT_IRQ_WINDOW, self->run->exit_reason);
	self->run->request_interrupt_window = 0;
	GT_RUN_EXPECT(self->v, &self->uc, UCALL_DONE);
}

/* ================= RVMX_GET/SET_EVENTS ================= */

GUEST_FN guest_events(uint64_t arg)
{
	GUEST_SYNC(seen_n);
	for (int i = 0; i < 3; i++) {
		GUEST_SYNC(seen_vec[i]);
		GUEST_SYNC(seen_err[i]);
	}
}

TEST_F(ev, get_set_events_round_trip)
{
	struct rvmx_event ud = { .kind = RVMX_EVENT_EXCEPTION, .vector = 6 };
	struct rvmx_event nmi = { .kind = RVMX_EVENT_NMI, .vector = 2 };
	struct rvmx_event irq = { .kind = RVMX_EVENT_INTERRUPT, .vector = VEC_A };
	struct rvmx_events evs, back, bad;
	uint64_t vec[3], err[3];

	CREATE(guest_events);
	ASSERT_EQ(0, gt_install_handler(&self->vm, 2, record));
	ASSERT_EQ(0, gt_install_handler(&self->vm, 10, record));
	ASSERT_EQ(0, gt_install_irq_handler(&self->vm, VEC_A, record));
	ASSERT_EQ(0, rvmx_inject(&self->v->rv, &ud));
	ASSERT_EQ(0, rvmx_inject(&self->v->rv, &nmi));
	ASSERT_EQ(0, rvmx_inject(&self->v->rv, &irq));
	ASSERT_EQ(0, rvmx_get_events(&self->v->rv, &evs));
	EXPECT_EQ(0, memcmp(&ud, &evs.exception, sizeof(ud)));
	EXPECT_EQ(RVMX_EVENT_NMI, evs.nmi.kind);
	EXPECT_EQ(2, evs.nmi.vector);
	EXPECT_EQ(0, memcmp(&irq, &evs.interrupt, sizeof(irq)));
	EXPECT_EQ(0, evs.interruptibility);

	/* Set exactly what was read, read it again. */
	ASSERT_EQ(0, rvmx_set_events(&self->v->rv, &evs));
	ASSERT_EQ(0, rvmx_get_events(&self->v->rv, &back));
	EXPECT_EQ(0, memcmp(&evs, &back, sizeof(evs)));
	/* Another set: #TS(0x18) instead of #UD, STI blocking. */
	evs.exception = (struct rvmx_event){ .kind = RVMX_EVENT_EXCEPTION, .vector = 10,
					     .has_error_code = 1, .error_code = 0x18 };
	evs.interruptibility = RVMX_BLOCKING_STI;
	ASSERT_EQ(0, rvmx_set_events(&self->v->rv, &evs));
	ASSERT_EQ(0, rvmx_get_events(&self->v->rv, &back));
	EXPECT_EQ(0, memcmp(&evs, &back, sizeof(evs)));

	/* Refused. */
	bad = evs;
	bad.reserved[3] = 1;
	EXPECT_EQ(-EINVAL, rvmx_set_events(&self->v->rv, &bad));
	bad = evs;
	bad.interruptibility = RVMX_BLOCKING_STI | RVMX_BLOCKING_MOV_SS;
	EXPECT_EQ(-EINVAL, rvmx_set_events(&self->v->rv, &bad));
	bad = evs;
	bad.interruptibility = 1 << 2;		/* SMI blocking: not userland's */
	EXPECT_EQ(-EINVAL, rvmx_set_events(&self->v->rv, &bad));
	bad = evs;
	bad.interrupt.vector = 8;
	EXPECT_EQ(-EINVAL, rvmx_set_events(&self->v->rv, &bad));
	bad = evs;
	bad.exception.has_error_code = 0;
	EXPECT_EQ(-EINVAL, rvmx_set_events(&self->v->rv, &bad));
	bad = evs;
	bad.nmi.vector = 3;
	EXPECT_EQ(-EINVAL, rvmx_set_events(&self->v->rv, &bad));
	bad = evs;
	bad.exception.kind = 0;			/* none, but fields set */
	EXPECT_EQ(-EINVAL, rvmx_set_events(&self->v->rv, &bad));
	ASSERT_EQ(0, rvmx_get_events(&self->v->rv, &back));
	EXPECT_EQ(0, memcmp(&evs, &back, sizeof(evs)));

	/* The guest takes all three before its first instruction: the #TS
	 * (with its code) and the NMI in either order of their handlers (the
	 * NMI may come at the first instruction of the #TS handler), the
	 * interrupt last, once IRET has set IF again (SDM Vol. 3A 6.9). */
	RUN_SYNC(3);
	for (int i = 0; i < 3; i++) {
		GT_RUN_EXPECT(self->v, &self->uc, UCALL_SYNC);
		vec[i] = self->uc.args[0];
		GT_RUN_EXPECT(self->v, &self->uc, UCALL_SYNC);
		err[i] = self->uc.args[0];
	}
	EXPECT_TRUE((vec[0] == 10 && vec[1] == 2) || (vec[0] == 2 && vec[1] == 10))
		TH_LOG("vectors %#llx %#llx", (unsigned long long)vec[0], (unsigned long long)vec[1]);
	EXPECT_EQ(0x18, vec[0] == 10 ? err[0] : err[1]);
	EXPECT_EQ(VEC_A, vec[2]);
	ASSERT_EQ(0, rvmx_get_events(&self->v->rv, &back));
	EXPECT_EQ(0, back.exception.kind);
	EXPECT_EQ(0, back.nmi.kind);
	EXPECT_EQ(0, back.interrupt.kind);
	EXPECT_EQ(0, back.interruptibility);
}

/* ================= per-vCPU caps ================= */

extern const char mtf_0[], mtf_1[], mtf_2[], mtf_3[], mtf_4[], mtf_5[];

GUEST_FN guest_mtf(uint64_t arg)
{
	asm volatile("outb %%al, %0\n" LABEL(mtf_0) "nop\n" LABEL(mtf_1) "nop\n" LABEL(mtf_2) "nop\n"
		     LABEL(mtf_3) "nop\n" LABEL(mtf_4) "nop\n" LABEL(mtf_5) "outb %%al, %1\n"
		     : : "i"(PORT_A), "i"(PORT_B) : "memory");
	GUEST_SYNC(7);
}

/* MTF: one RVMX_EXIT_MTF per instruction, RIP past it (SDM Vol. 3C
 * 26.5.2); the OUT that follows exits as an OUT. */
TEST_F(ev, mtf_counts_instructions)
{
	const char *want[5] = { mtf_1, mtf_2, mtf_3, mtf_4, mtf_5 };
	struct rvmx_caps caps;
	struct rvmx_regs r;
	uint32_t val = 7;
	int n = 0;

	CREATE(guest_mtf);
	ASSERT_EQ(0, rvmx_get_caps(self->vm.sys, &caps));
	if (!(caps.flags & RVMX_CAP_MTF)) {
		EXPECT_EQ(-EOPNOTSUPP, rvmx_set_cap(&self->v->rv, RVMX_VCPU_CAP_MTF, 1));
		SKIP(return, "the CPU has no monitor trap flag");
	}
	ASSERT_EQ(0, rvmx_get_cap(&self->v->rv, RVMX_VCPU_CAP_MTF, &val));
	EXPECT_EQ(0, val);
	EXPECT_EQ(-EINVAL, rvmx_set_cap(&self->v->rv, RVMX_VCPU_CAP_MTF, 2));
	EXPECT_EQ(-EINVAL, rvmx_set_cap(&self->v->rv, 99, 1));
	RUN_OUT(PORT_A);
	ASSERT_EQ(0, rvmx_set_cap(&self->v->rv, RVMX_VCPU_CAP_MTF, 1));
	ASSERT_EQ(0, rvmx_get_cap(&self->v->rv, RVMX_VCPU_CAP_MTF, &val));
	EXPECT_EQ(1, val);
	for (;;) {
		ASSERT_EQ(0, rvmx_run(&self->v->rv));
		if (self->run->exit_reason != RVMX_EXIT_MTF)
			break;
		ASSERT_EQ(0, rvmx_get_regs(&self->v->rv, &r));
		ASSERT_GT(5, n) TH_LOG("MTF exit %d at %#llx", n + 1, (unsigned long long)r.rip);
		EXPECT_EQ((uintptr_t)want[n], r.rip) TH_LOG("MTF exit %d", n + 1);
		n++;
	}
	EXPECT_EQ(5, n);
	ASSERT_EQ(RVMX_EXIT_IO, self->run->exit_reason)
		TH_LOG("exit %s", rvmx_exit_name(self->run->exit_reason));
	ASSERT_EQ(PORT_B, self->run->io.port);
	expect_rip(_metadata, self->v, mtf_5 + 2);	/* OUT imm8: 2 bytes, done */
	ASSERT_EQ(0, rvmx_set_cap(&self->v->rv, RVMX_VCPU_CAP_MTF, 0));
	RUN_SYNC(7);
	GT_RUN_EXPECT(self->v, &self->uc, UCALL_DONE);
}

extern const char hlt_1[], hlt_2[], hlt_2_end[], hlt_3[], hlt_3_end[];

/* An idle loop: HLT until a handler ran (a halted guest may wake for
 * nothing: Bochs saves the HLT activity state as active when a host
 * interrupt makes the guest exit; hardware keeps it, SDM Vol. 3C 28.3.4). */
#define IDLE(start, end)							\
	asm volatile(LABEL(start) "hlt\n cmpq $0, %0\n je " #start "\n" LABEL(end)	\
		     : : "m"(seen_n) : "memory", "cc")

GUEST_FN guest_hlt(uint64_t arg)
{
	asm volatile("hlt\n" LABEL(hlt_1) : : : "memory");
	GUEST_SYNC(1);
	IDLE(hlt_2, hlt_2_end);
	GUEST_SYNC(seen_n);
	GUEST_SYNC(seen_vec[0]);
	GUEST_SYNC(seen_rip[0]);
}

static void on_alarm(int sig)
{
}

/* Runs the idle loop [start, end) until a SIGALRM (HLT exiting off: the
 * guest halts in VMX non-root operation, and RUN returns only for a
 * signal, never with RVMX_EXIT_HLT); twice, RIP in the loop each time. */
static void run_idle(struct __test_metadata *_metadata, struct gt_vcpu *v, const char *start,
		     const char *end)
{
	struct sigaction sa = { .sa_handler = on_alarm };	/* no SA_RESTART */
	struct itimerval it = { .it_value = { .tv_usec = 100000 } };
	struct rvmx_regs r;

	ASSERT_EQ(0, sigaction(SIGALRM, &sa, NULL));
	for (int i = 0; i < 2; i++) {
		ASSERT_EQ(0, setitimer(ITIMER_REAL, &it, NULL));
		ASSERT_EQ(-EINTR, rvmx_run(&v->rv)) TH_LOG("exit %s", rvmx_exit_name(v->rv.run->exit_reason));
		ASSERT_EQ(0, rvmx_get_regs(&v->rv, &r));
		ASSERT_TRUE(r.rip >= (uintptr_t)start && r.rip < (uintptr_t)end)
			TH_LOG("RIP %#llx outside the idle loop", (unsigned long long)r.rip);
	}
}

/*
 * HLT exiting on (the default): RVMX_EXIT_HLT, RIP past the HLT. Off: the
 * guest halts in the guest; an injected interrupt (IF = 1) wakes it: VM
 * entry may inject an external interrupt in the HLT activity state, and
 * the guest is active after delivering it (SDM Vol. 3C 27.3.1.5, 27.6).
 */
TEST_F(ev, hlt_exit_on_and_off)
{
	struct rvmx_event irq = { .kind = RVMX_EVENT_INTERRUPT, .vector = VEC_A };
	uint32_t val = 0;

	CREATE(guest_hlt);
	ASSERT_EQ(0, gt_install_irq_handler(&self->vm, VEC_A, irq_handler));
	ASSERT_EQ(0, rvmx_get_cap(&self->v->rv, RVMX_VCPU_CAP_HLT_EXIT, &val));
	EXPECT_EQ(1, val);
	ASSERT_EQ(0, rvmx_run(&self->v->rv));
	ASSERT_EQ(RVMX_EXIT_HLT, self->run->exit_reason);
	expect_rip(_metadata, self->v, hlt_1);
	RUN_SYNC(1);

	ASSERT_EQ(0, rvmx_set_cap(&self->v->rv, RVMX_VCPU_CAP_HLT_EXIT, 0));
	ASSERT_EQ(0, rvmx_get_cap(&self->v->rv, RVMX_VCPU_CAP_HLT_EXIT, &val));
	EXPECT_EQ(0, val);
	run_idle(_metadata, self->v, hlt_2, hlt_2_end);
	EXPECT_EQ(0, GT_GUEST(&self->vm, seen_n));
	/* An interrupt wakes it and the loop ends. */
	ASSERT_EQ(0, rvmx_inject(&self->v->rv, &irq));
	RUN_SYNC(1);
	RUN_SYNC(VEC_A);
	GT_RUN_EXPECT(self->v, &self->uc, UCALL_SYNC);
	EXPECT_TRUE(self->uc.args[0] >= (uintptr_t)hlt_2 && self->uc.args[0] < (uintptr_t)hlt_2_end);
	ASSERT_EQ(0, rvmx_set_cap(&self->v->rv, RVMX_VCPU_CAP_HLT_EXIT, 1));
	GT_RUN_EXPECT(self->v, &self->uc, UCALL_DONE);
}

GUEST_FN guest_hlt_exc(uint64_t arg)
{
	IDLE(hlt_3, hlt_3_end);
	GUEST_SYNC(seen_n);
	GUEST_SYNC(seen_vec[0]);
	GUEST_SYNC(seen_err[0]);
	GUEST_SYNC(seen_rip[0]);
}

/*
 * An exception userland injects into a halted guest (HLT exiting off) is
 * delivered too. VM entry refuses to inject an exception other than #DB
 * and #MC in the HLT activity state (SDM Vol. 3C 27.3.1.5), so the VMM
 * makes the guest active first; RIP is already past the HLT (KVM's
 * vmx_clear_hlt on every injection). Bochs never leaves the guest in the
 * HLT state across an exit, so only hardware can fail this.
 */
TEST_F(ev, exception_reaches_halted_guest)
{
	struct rvmx_event gp = { .kind = RVMX_EVENT_EXCEPTION, .vector = 13, .has_error_code = 1,
				 .error_code = 0x42 };

	CREATE(guest_hlt_exc);
	ASSERT_EQ(0, gt_install_handler(&self->vm, 13, record));
	ASSERT_EQ(0, rvmx_set_cap(&self->v->rv, RVMX_VCPU_CAP_HLT_EXIT, 0));
	run_idle(_metadata, self->v, hlt_3, hlt_3_end);
	ASSERT_EQ(0, rvmx_inject(&self->v->rv, &gp));
	RUN_SYNC(1);
	RUN_SYNC(13);
	RUN_SYNC(0x42);
	GT_RUN_EXPECT(self->v, &self->uc, UCALL_SYNC);
	EXPECT_TRUE(self->uc.args[0] >= (uintptr_t)hlt_3 && self->uc.args[0] < (uintptr_t)hlt_3_end);
}

extern const char pause_1[], pause_2[];

GUEST_FN guest_pause(uint64_t arg)
{
	asm volatile("pause\n" LABEL(pause_1) "outb %%al, %0\n" : : "i"(PORT_A) : "memory");
	asm volatile("pause\n" LABEL(pause_2) "outb %%al, %0\n" : : "i"(PORT_B) : "memory");
	GUEST_SYNC(3);
}

/* PAUSE exiting: RVMX_EXIT_PAUSE with RIP past the PAUSE; off, none. */
TEST_F(ev, pause_exit_on_and_off)
{
	struct rvmx_caps caps;
	uint32_t val = 1;

	CREATE(guest_pause);
	ASSERT_EQ(0, rvmx_get_caps(self->vm.sys, &caps));
	if (!(caps.flags & RVMX_CAP_PAUSE_EXIT))
		SKIP(return, "the CPU has no PAUSE exiting");
	ASSERT_EQ(0, rvmx_get_cap(&self->v->rv, RVMX_VCPU_CAP_PAUSE_EXIT, &val));
	EXPECT_EQ(0, val);
	RUN_OUT(PORT_A);
	expect_rip(_metadata, self->v, pause_1 + 2);
	ASSERT_EQ(0, rvmx_set_cap(&self->v->rv, RVMX_VCPU_CAP_PAUSE_EXIT, 1));
	ASSERT_EQ(0, rvmx_get_cap(&self->v->rv, RVMX_VCPU_CAP_PAUSE_EXIT, &val));
	EXPECT_EQ(1, val);
	ASSERT_EQ(0, rvmx_run(&self->v->rv));
	ASSERT_EQ(RVMX_EXIT_PAUSE, self->run->exit_reason)
		TH_LOG("exit %s", rvmx_exit_name(self->run->exit_reason));
	expect_rip(_metadata, self->v, pause_2);
	RUN_OUT(PORT_B);
	ASSERT_EQ(0, rvmx_set_cap(&self->v->rv, RVMX_VCPU_CAP_PAUSE_EXIT, 0));
	RUN_SYNC(3);
}

TEST_HARNESS_MAIN
