// SPDX-License-Identifier: GPL-2.0
/*
 * What rvmx emulates for a guest: string port I/O (INS/OUTS, their REP
 * forms, in batches per exit), MMIO (the instruction decoded and run in the
 * kernel, each access an exit), and debug exceptions (#DB from single step,
 * ICEBP and data breakpoints, with DR6 as the guest's handler reads it).
 * The guest is plain C (lib/gtest.h); asm labels mark the instructions
 * whose RIP the test compares with.
 */
#include <string.h>

#include "kselftest_harness.h"
#include "lib/util.h"
#include "lib/gtest.h"

#define LABEL(name) #name ":\n"
#define GUEST_FN static __attribute__((noinline, noclone)) void

FIXTURE(emu) {
	struct gt_vm vm;
	struct gt_ucall uc;
};

FIXTURE_SETUP(emu)
{
	ASSERT_EQ(0, rvmx_ensure_loaded());
}

FIXTURE_TEARDOWN(emu)
{
	gt_destroy(&self->vm);
}

#define VCPU (&self->vm.vcpu[0])
#define RUN (self->vm.vcpu[0].rv.run)

#define RUN_SYNC(v)								\
	do {									\
		GT_RUN_EXPECT(VCPU, &self->uc, UCALL_SYNC);			\
		EXPECT_EQ((uint64_t)(v), self->uc.args[0]);			\
	} while (0)

/* ================= string I/O ================= */

/*
 * The guest moves `n` elements of `size` bytes between port SIO_PORT and a
 * buffer at SIO_BUF, 3 bytes below a page boundary (so elements of 2 and 4
 * bytes straddle pages), over more than one page and more bytes than one
 * exit carries (RVMX_RUN_DATA_SIZE).
 */
#define SIO_PORT	0x5e0
#define SIO_BUF		(GT_SCRATCH_GPA + 0xffd)
#define SIO_GUARD	0xaa

/* The guest's argument: size (1, 2, 4), flags, count in bits 63:32. */
#define SIO_DOWN	(1 << 3)	/* DF = 1 */
#define SIO_A32		(1 << 4)	/* 67h: ESI/EDI/ECX in 64-bit mode */
#define SIO_NOREP	(1 << 5)	/* one element, no REP */
#define SIO_INS_FLAG	(1 << 6)	/* INS, else OUTS */
#define SIO_ARG(size, flags, n) ((uint64_t)(size) | (flags) | (uint64_t)(n) << 32)

/* Upper halves the 32-bit address size ignores and then clears (a 32-bit
 * register write zero-extends, SDM Vol. 1 3.4.1.1). */
#define SIO_JUNK	0x5a5a000000000000ull

/* Byte i of the OUTS buffer (the guest writes it). */
static inline uint8_t outs_byte(uint64_t i)
{
	return (uint8_t)(i * 7 + 0x31 + (i >> 8));
}

/* The k-th element userland gives INS (in the CPU's order). */
static inline uint32_t ins_elem(uint64_t k, unsigned size)
{
	uint32_t v = (uint32_t)(k * 2654435761u) ^ (uint32_t)(k >> 3) ^ size;

	return size == 4 ? v : v & ((1u << (8 * size)) - 1);
}

/* One string instruction on SIO_PORT: `in` picks INS; *ptr is RSI/RDI,
 * *cx RCX. DF is set and cleared within the asm. */
#define SIO_ASM(text, reg)							\
	asm volatile(text : "+" reg(p), "+c"(cx) : "d"(SIO_PORT) : "memory", "cc")
#define SIO_CASE(sz, fl, insn, reg)						\
	case SIO_ARG(sz, fl, 0):						\
		if ((fl) & SIO_DOWN)						\
			SIO_ASM("std\n rep " insn "\n cld", reg);		\
		else if ((fl) & SIO_A32)					\
			SIO_ASM("addr32 rep " insn, reg);			\
		else if ((fl) & SIO_NOREP)					\
			SIO_ASM(insn, reg);					\
		else								\
			SIO_ASM("rep " insn, reg);				\
		break

static __attribute__((noinline)) void do_outs(uint64_t kind, uint64_t *ptr, uint64_t *count)
{
	uint64_t p = *ptr, cx = *count;

	switch (kind) {
	SIO_CASE(1, 0, "outsb", "S"); SIO_CASE(2, 0, "outsw", "S"); SIO_CASE(4, 0, "outsl", "S");
	SIO_CASE(1, SIO_DOWN, "outsb", "S"); SIO_CASE(2, SIO_DOWN, "outsw", "S");
	SIO_CASE(4, SIO_DOWN, "outsl", "S");
	SIO_CASE(1, SIO_A32, "outsb", "S"); SIO_CASE(4, SIO_A32, "outsl", "S");
	SIO_CASE(4, SIO_NOREP, "outsl", "S");
	default:
		GUEST_ASSERT(0);
	}
	*ptr = p;
	*count = cx;
}

static __attribute__((noinline)) void do_ins(uint64_t kind, uint64_t *ptr, uint64_t *count)
{
	uint64_t p = *ptr, cx = *count;

	switch (kind) {
	SIO_CASE(1, 0, "insb", "D"); SIO_CASE(2, 0, "insw", "D"); SIO_CASE(4, 0, "insl", "D");
	SIO_CASE(1, SIO_DOWN, "insb", "D"); SIO_CASE(2, SIO_DOWN, "insw", "D");
	SIO_CASE(4, SIO_DOWN, "insl", "D");
	SIO_CASE(1, SIO_A32, "insb", "D"); SIO_CASE(4, SIO_A32, "insl", "D");
	SIO_CASE(4, SIO_NOREP, "insl", "D");
	default:
		GUEST_ASSERT(0);
	}
	*ptr = p;
	*count = cx;
}

/* Where the instruction starts: the lowest element with DF = 0, the
 * highest with DF = 1. */
static uint64_t sio_start(unsigned size, int down, uint64_t n)
{
	return SIO_BUF + (down ? (n - 1) * size : 0);
}

GUEST_FN guest_string_io(uint64_t arg)
{
	volatile uint8_t *buf = (volatile uint8_t *)SIO_BUF;
	unsigned size = arg & 7;
	uint64_t n = arg >> 32, kind = arg & 0xffffffffu & ~SIO_INS_FLAG;
	int down = !!(arg & SIO_DOWN), a32 = !!(arg & SIO_A32), rep = !(arg & SIO_NOREP);
	uint64_t start = sio_start(size, down, n), ptr = start, cx = n, want_ptr;

	buf[-1] = SIO_GUARD;
	buf[n * size] = SIO_GUARD;
	if (!rep)
		cx = 0x77;	/* no REP: RCX is not used */
	if (a32) {
		ptr |= SIO_JUNK;
		cx |= SIO_JUNK;
	}
	if (arg & SIO_INS_FLAG) {
		for (uint64_t i = 0; i < n * size; i++)
			buf[i] = 0;
		do_ins(kind, &ptr, &cx);
	} else {
		for (uint64_t i = 0; i < n * size; i++)
			buf[i] = outs_byte(i);
		do_outs(kind, &ptr, &cx);
	}
	want_ptr = down ? start - n * size : start + n * size;
	GUEST_ASSERT_EQ(ptr, want_ptr);
	GUEST_ASSERT_EQ(cx, rep ? 0 : 0x77);
	GUEST_ASSERT_EQ(buf[-1], SIO_GUARD);
	GUEST_ASSERT_EQ(buf[n * size], SIO_GUARD);
	if (arg & SIO_INS_FLAG) {
		/* Element k the CPU moved is at start +/- k * size. */
		for (uint64_t k = 0; k < n; k++) {
			uint64_t at = (down ? (n - 1 - k) : k) * size, got = 0;

			for (unsigned b = 0; b < size; b++)
				got |= (uint64_t)buf[at + b] << (8 * b);
			GUEST_ASSERT_EQ(got, ins_elem(k, size));
		}
	}
	GUEST_SYNC(n);
}

/*
 * Runs guest_string_io and plays the device: OUTS data must arrive in the
 * CPU's order, INS gets ins_elem(); at each exit RCX and RSI/RDI say how
 * far the instruction is (OUTS: this batch included, as rvmx moved it
 * before the exit; INS: not yet, it completes on the next RUN).
 */
static void string_io(struct __test_metadata *_metadata, struct gt_vm *vm, int in, unsigned size,
		      int flags, uint64_t n)
{
	struct gt_vcpu *v = &vm->vcpu[0];
	struct rvmx_run *run;
	int down = !!(flags & SIO_DOWN), a32 = !!(flags & SIO_A32), rep = !(flags & SIO_NOREP);
	uint64_t start = sio_start(size, down, n), done = 0, exits = 0, min_exits;
	struct gt_ucall uc;
	int k;

	ASSERT_EQ(0, gt_create(vm, guest_string_io));
	ASSERT_EQ(0, gt_vcpu_start(v, guest_string_io, SIO_ARG(size, flags, n) | (in ? SIO_INS_FLAG : 0)));
	run = v->rv.run;
	for (;;) {
		struct rvmx_regs regs;
		uint8_t *data = (uint8_t *)run + RVMX_RUN_DATA_OFFSET;
		uint64_t left, ptr, mask = a32 ? 0xffffffffull : ~0ull;

		ASSERT_EQ(0, rvmx_run(&v->rv));
		k = gt_exit_ucall(v, &uc);
		if (k != UCALL_NONE)
			break;
		ASSERT_EQ(RVMX_EXIT_IO, run->exit_reason);
		ASSERT_EQ(in ? RVMX_IO_IN : RVMX_IO_OUT, run->io.direction);
		ASSERT_EQ(SIO_PORT, run->io.port);
		ASSERT_EQ(size, run->io.size);
		ASSERT_EQ(RVMX_RUN_DATA_OFFSET, run->io.data_offset);
		ASSERT_GE(run->io.count, 1);
		ASSERT_LE(done + run->io.count, n);
		ASSERT_LE(run->io.count * size, RVMX_RUN_DATA_SIZE);
		ASSERT_EQ(0, rvmx_get_regs(&v->rv, &regs));
		left = in ? n - done : n - done - run->io.count;
		ptr = in ? regs.rdi : regs.rsi;
		/* A batch never crosses a page: its elements lie in one. */
		if (run->io.count > 1) {
			uint64_t lo = down ? start - (done + run->io.count - 1) * size : start + done * size;

			EXPECT_EQ(lo >> 12, (lo + run->io.count * size - 1) >> 12);
		}
		if (rep) {
			EXPECT_EQ(left, regs.rcx & mask);
		} else {
			EXPECT_EQ(0x77, regs.rcx);
		}
		if (in) {
			EXPECT_EQ(down ? start - done * size : start + done * size, ptr & mask);
		} else {
			EXPECT_EQ(down ? start - (n - left) * size : start + (n - left) * size, ptr & mask);
		}
		for (uint32_t j = 0; j < run->io.count; j++) {
			uint64_t e = done + j;

			if (in) {
				uint32_t val = ins_elem(e, size);

				memcpy(data + j * size, &val, size);
				continue;
			}
			/* Element e is at (start -/+ e * size) - SIO_BUF in the buffer. */
			for (unsigned b = 0; b < size; b++) {
				uint64_t at = (down ? start - e * size : start + e * size) - SIO_BUF + b;

				if (data[j * size + b] != outs_byte(at)) {
					ASSERT_EQ(outs_byte(at), data[j * size + b]) {
						TH_LOG("element %llu byte %u (exit %llu)", (unsigned long long)e, b,
						       (unsigned long long)exits);
					}
				}
			}
		}
		done += run->io.count;
		exits++;
	}
	if (k != UCALL_SYNC)
		gt_ucall_print(stderr, &uc);
	ASSERT_EQ(UCALL_SYNC, k);
	EXPECT_EQ(n, uc.args[0]);
	EXPECT_EQ(n, done);
	/* At least one exit per RVMX_RUN_DATA_SIZE bytes, and more for the
	 * pages the buffer spans (it starts 3 bytes below a boundary). */
	min_exits = (n * size + RVMX_RUN_DATA_SIZE - 1) / RVMX_RUN_DATA_SIZE;
	if (n * size > 3)
		min_exits++;
	if (rep) {
		EXPECT_GE(exits, min_exits);
	} else {
		EXPECT_EQ(1, exits);
	}
	TH_LOG("%s%u x %llu: %llu exits", in ? "ins" : "outs", size, (unsigned long long)n,
	       (unsigned long long)exits);
	GT_RUN_EXPECT(v, &uc, UCALL_DONE);
}

TEST_F(emu, rep_outsb_up) { string_io(_metadata, &self->vm, 0, 1, 0, 5000); }
TEST_F(emu, rep_outsw_up) { string_io(_metadata, &self->vm, 0, 2, 0, 3000); }
TEST_F(emu, rep_outsl_up) { string_io(_metadata, &self->vm, 0, 4, 0, 1500); }
TEST_F(emu, rep_outsb_down) { string_io(_metadata, &self->vm, 0, 1, SIO_DOWN, 5000); }
TEST_F(emu, rep_outsw_down) { string_io(_metadata, &self->vm, 0, 2, SIO_DOWN, 3000); }
TEST_F(emu, rep_outsl_down) { string_io(_metadata, &self->vm, 0, 4, SIO_DOWN, 1500); }
TEST_F(emu, rep_insb_up) { string_io(_metadata, &self->vm, 1, 1, 0, 5000); }
TEST_F(emu, rep_insw_up) { string_io(_metadata, &self->vm, 1, 2, 0, 3000); }
TEST_F(emu, rep_insl_up) { string_io(_metadata, &self->vm, 1, 4, 0, 1500); }
TEST_F(emu, rep_insb_down) { string_io(_metadata, &self->vm, 1, 1, SIO_DOWN, 5000); }
TEST_F(emu, rep_insw_down) { string_io(_metadata, &self->vm, 1, 2, SIO_DOWN, 3000); }
TEST_F(emu, rep_insl_down) { string_io(_metadata, &self->vm, 1, 4, SIO_DOWN, 1500); }
/* 67h in 64-bit mode: ESI/EDI and ECX, upper halves ignored then cleared. */
TEST_F(emu, rep_outsb_addr32) { string_io(_metadata, &self->vm, 0, 1, SIO_A32, 4000); }
TEST_F(emu, rep_outsl_addr32) { string_io(_metadata, &self->vm, 0, 4, SIO_A32, 1200); }
TEST_F(emu, rep_insb_addr32) { string_io(_metadata, &self->vm, 1, 1, SIO_A32, 4000); }
TEST_F(emu, rep_insl_addr32) { string_io(_metadata, &self->vm, 1, 4, SIO_A32, 1200); }
/* Without REP: one element (this one straddles a page), RCX untouched. */
TEST_F(emu, outsl_without_rep) { string_io(_metadata, &self->vm, 0, 4, SIO_NOREP, 1); }
TEST_F(emu, insl_without_rep) { string_io(_metadata, &self->vm, 1, 4, SIO_NOREP, 1); }

/* ================= MMIO ================= */

/* No memory there (the guest has 64 MiB at 0); the library maps it. */
#define MMIO_GPA	0xd0000000ull
#define MMIO(off)	((uintptr_t)MMIO_GPA + (off))
/* What userland answers reads with: the bytes beyond the access's size
 * must not reach the guest. */
#define MMIO_DATA	0x8877665544332211ull

/* The next exit is an MMIO access of `size` bytes at `gpa`: a read,
 * answered with `data`, or a write that must carry `data`. */
static void mmio_exit(struct __test_metadata *_metadata, struct gt_vcpu *v, uint64_t gpa, uint32_t size,
		      int write, uint64_t data)
{
	struct rvmx_run *run = v->rv.run;
	struct gt_ucall uc;

	ASSERT_EQ(0, rvmx_run(&v->rv));
	if (gt_exit_ucall(v, &uc) != UCALL_NONE)
		gt_ucall_print(stderr, &uc);
	ASSERT_EQ(RVMX_EXIT_MMIO, run->exit_reason);
	EXPECT_EQ(gpa, run->mmio.gpa);
	EXPECT_EQ(size, run->mmio.size);
	EXPECT_EQ(write ? RVMX_MMIO_WRITE : RVMX_MMIO_READ, run->mmio.access);
	if (write) {
		EXPECT_EQ(data, run->mmio.data);
	} else {
		run->mmio.data = data;
	}
}

#define MMIO_READ(gpa, size, data) mmio_exit(_metadata, VCPU, gpa, size, 0, data)
#define MMIO_WRITE(gpa, size, data) mmio_exit(_metadata, VCPU, gpa, size, 1, data)

/* Loads of each size: 8 and 16 bits keep the rest of the register, 32
 * zero-extends into 64 (SDM Vol. 1 3.4.1.1); the moffs form (A0/A1). */
GUEST_FN guest_mmio_loads(uint64_t arg)
{
	uint64_t r;

	r = ~0ull;
	asm volatile("movb (%1), %b0" : "+r"(r) : "r"(MMIO(1)));
	GUEST_SYNC(r);
	r = ~0ull;
	asm volatile("movw (%1), %w0" : "+r"(r) : "r"(MMIO(2)));
	GUEST_SYNC(r);
	r = ~0ull;
	asm volatile("movl (%1), %k0" : "+r"(r) : "r"(MMIO(4)));
	GUEST_SYNC(r);
	asm volatile("movq (%1), %0" : "=r"(r) : "r"(MMIO(8)));
	GUEST_SYNC(r);
	r = ~0ull;
	asm volatile("movabs 0xd0000010, %%eax" : "+a"(r));
	GUEST_SYNC(r);
	/* R15 (REX.B/R): register 15 of the ModRM reg field */
	asm volatile("movq (%1), %%r15\n mov %%r15, %0" : "=r"(r) : "r"(MMIO(0x18)) : "r15");
	GUEST_SYNC(r);
}

TEST_F(emu, mmio_loads_of_each_size)
{
	ASSERT_EQ(0, gt_create(&self->vm, guest_mmio_loads));
	MMIO_READ(MMIO(1), 1, MMIO_DATA);
	RUN_SYNC(0xffffffffffffff11ull);
	MMIO_READ(MMIO(2), 2, MMIO_DATA);
	RUN_SYNC(0xffffffffffff2211ull);
	MMIO_READ(MMIO(4), 4, MMIO_DATA);
	RUN_SYNC(0x44332211ull);
	MMIO_READ(MMIO(8), 8, MMIO_DATA);
	RUN_SYNC(MMIO_DATA);
	MMIO_READ(MMIO(0x10), 4, 0xfedcba9876543210ull);
	RUN_SYNC(0x76543210ull);
	MMIO_READ(MMIO(0x18), 8, 0x0102030405060708ull);
	RUN_SYNC(0x0102030405060708ull);
	GT_RUN_EXPECT(VCPU, &self->uc, UCALL_DONE);
}

/* Stores of each size from registers and immediates, and moffs (A3). */
GUEST_FN guest_mmio_stores(uint64_t arg)
{
	asm volatile("movb %b0, (%1)" : : "q"(0x1234a1), "r"(MMIO(0x21)) : "memory");
	asm volatile("movw %w0, (%1)" : : "r"(0x5678b2c3), "r"(MMIO(0x22)) : "memory");
	asm volatile("movl %k0, (%1)" : : "r"(0x9abcdef0d4e5f607ull), "r"(MMIO(0x24)) : "memory");
	asm volatile("movq %0, (%1)" : : "r"(0x0123456789abcdefull), "r"(MMIO(0x28)) : "memory");
	asm volatile("movb $0x5a, (%0)" : : "r"(MMIO(0x30)) : "memory");
	asm volatile("movl $0x7fedcba9, (%0)" : : "r"(MMIO(0x34)) : "memory");
	/* C7 with REX.W: imm32 sign-extended to 64 bits */
	asm volatile("movq $-2, (%0)" : : "r"(MMIO(0x38)) : "memory");
	asm volatile("movabs %%eax, 0xd0000040" : : "a"(0xfeedface) : "memory");
}

TEST_F(emu, mmio_stores_of_each_size)
{
	ASSERT_EQ(0, gt_create(&self->vm, guest_mmio_stores));
	MMIO_WRITE(MMIO(0x21), 1, 0xa1);
	MMIO_WRITE(MMIO(0x22), 2, 0xb2c3);
	MMIO_WRITE(MMIO(0x24), 4, 0xd4e5f607);
	MMIO_WRITE(MMIO(0x28), 8, 0x0123456789abcdefull);
	MMIO_WRITE(MMIO(0x30), 1, 0x5a);
	MMIO_WRITE(MMIO(0x34), 4, 0x7fedcba9);
	MMIO_WRITE(MMIO(0x38), 8, 0xfffffffffffffffeull);
	MMIO_WRITE(MMIO(0x40), 4, 0xfeedface);
	GT_RUN_EXPECT(VCPU, &self->uc, UCALL_DONE);
}

/* MOVZX, MOVSX and MOVSXD (SDM Vol. 2B): the value read is extended to
 * the operand size; a 16-bit destination keeps bits 63:16. */
GUEST_FN guest_mmio_extend(uint64_t arg)
{
	uint64_t r;

	r = ~0ull;
	asm volatile("movzbl (%1), %k0" : "+r"(r) : "r"(MMIO(0x50)));
	GUEST_SYNC(r);
	asm volatile("movsbq (%1), %0" : "=r"(r) : "r"(MMIO(0x51)));
	GUEST_SYNC(r);
	r = ~0ull;
	asm volatile("movswl (%1), %k0" : "+r"(r) : "r"(MMIO(0x52)));
	GUEST_SYNC(r);
	r = ~0ull;
	asm volatile("movzwq (%1), %0" : "+r"(r) : "r"(MMIO(0x54)));
	GUEST_SYNC(r);
	asm volatile("movslq (%1), %0" : "=r"(r) : "r"(MMIO(0x58)));
	GUEST_SYNC(r);
	r = 0x1111111111111111ull;
	asm volatile("movsbw (%1), %w0" : "+r"(r) : "r"(MMIO(0x5c)));
	GUEST_SYNC(r);
}

TEST_F(emu, mmio_movzx_movsx)
{
	ASSERT_EQ(0, gt_create(&self->vm, guest_mmio_extend));
	MMIO_READ(MMIO(0x50), 1, 0xffffff80);
	RUN_SYNC(0x80);
	MMIO_READ(MMIO(0x51), 1, 0x80);
	RUN_SYNC(0xffffffffffffff80ull);
	MMIO_READ(MMIO(0x52), 2, 0x12348001);
	RUN_SYNC(0xffff8001ull);
	MMIO_READ(MMIO(0x54), 2, 0xffff8001);
	RUN_SYNC(0x8001);
	MMIO_READ(MMIO(0x58), 4, 0x1280000002ull);
	RUN_SYNC(0xffffffff80000002ull);
	MMIO_READ(MMIO(0x5c), 1, 0xfe);
	RUN_SYNC(0x111111111111fffeull);
	GT_RUN_EXPECT(VCPU, &self->uc, UCALL_DONE);
}

/*
 * Byte registers: without REX, ModRM reg 4-7 are AH, CH, DH, BH (bits
 * 15:8); with REX they are SPL, BPL, SIL, DIL; R8B-R15B need REX (SDM
 * Vol. 2A 2.2.1.2, Table 3-1).
 */
GUEST_FN guest_mmio_byte_regs(uint64_t arg)
{
	register uint64_t r9 asm("r9");
	register uint64_t r10 asm("r10");
	uint64_t a, d, s;

	a = 0x1111111111111111ull;
	asm volatile("movb (%1), %%ah" : "+a"(a) : "b"(MMIO(0x60)));
	GUEST_SYNC(a);
	d = 0x2222222222222222ull;
	asm volatile("movb (%1), %%dh" : "+d"(d) : "b"(MMIO(0x61)));
	GUEST_SYNC(d);
	s = 0x3333333333333333ull;
	asm volatile("movb (%1), %%sil" : "+S"(s) : "b"(MMIO(0x62)));
	GUEST_SYNC(s);
	r9 = 0x4444444444444444ull;
	asm volatile("movb (%1), %%r9b" : "+r"(r9) : "b"(MMIO(0x63)));
	GUEST_SYNC(r9);
	asm volatile("movb %%bh, (%0)" : : "a"(MMIO(0x64)), "b"(0x77c3) : "memory");
	r10 = 0x55d4;
	asm volatile("movb %%r10b, (%0)" : : "a"(MMIO(0x65)), "r"(r10) : "memory");
	asm volatile("movb %%dil, (%0)" : : "a"(MMIO(0x66)), "D"(0x66e5) : "memory");
}

TEST_F(emu, mmio_high_byte_and_rex_registers)
{
	ASSERT_EQ(0, gt_create(&self->vm, guest_mmio_byte_regs));
	MMIO_READ(MMIO(0x60), 1, 0xa5);
	RUN_SYNC(0x111111111111a511ull);
	MMIO_READ(MMIO(0x61), 1, 0xb6);
	RUN_SYNC(0x222222222222b622ull);
	MMIO_READ(MMIO(0x62), 1, 0xc7);
	RUN_SYNC(0x33333333333333c7ull);
	MMIO_READ(MMIO(0x63), 1, 0xd8);
	RUN_SYNC(0x44444444444444d8ull);
	MMIO_WRITE(MMIO(0x64), 1, 0x77);
	MMIO_WRITE(MMIO(0x65), 1, 0xd4);
	MMIO_WRITE(MMIO(0x66), 1, 0xe5);
	GT_RUN_EXPECT(VCPU, &self->uc, UCALL_DONE);
}

/* The arithmetic flags (CF, PF, AF, ZF, SF, OF). */
#define FLAGS_ARITH	0x8d5ull
#define F_CF 0x1
#define F_PF 0x4
#define F_AF 0x10
#define F_ZF 0x40
#define F_SF 0x80
#define F_OF 0x800

/* Read-modify-write on MMIO: a read exit, then a write exit with the
 * result; the flags as the instruction sets them (SDM Vol. 2A ADD, OR,
 * SUB; AF is undefined after OR: not compared). Each starts with the
 * flags it must change set the other way (STC, or CMP to set ZF). */
GUEST_FN guest_mmio_alu(uint64_t arg)
{
	uint64_t f, r;

	asm volatile("stc\n orl $1, (%1)\n pushfq\n pop %0" : "=r"(f) : "r"(MMIO(0x70)) : "memory", "cc");
	GUEST_SYNC(f & (FLAGS_ARITH & ~F_AF));
	asm volatile("cmp %%eax, %%eax\n subl $1, (%1)\n pushfq\n pop %0"
		     : "=r"(f) : "r"(MMIO(0x74)) : "memory", "cc", "eax");
	GUEST_SYNC(f & FLAGS_ARITH);
	asm volatile("addw %%cx, (%1)\n pushfq\n pop %0" : "=r"(f) : "r"(MMIO(0x78)), "c"(1) : "memory", "cc");
	GUEST_SYNC(f & FLAGS_ARITH);
	/* CMP reads only */
	asm volatile("stc\n cmpl $5, (%1)\n pushfq\n pop %0" : "=r"(f) : "r"(MMIO(0x7c)) : "memory", "cc");
	GUEST_SYNC(f & FLAGS_ARITH);
	/* reg op= mem: the register gets the result, memory is not written */
	r = 0xf0;
	asm volatile("addb (%1), %b0" : "+q"(r) : "r"(MMIO(0x80)) : "cc");
	GUEST_SYNC(r);
	/* XCHG: the old value in the register, the register's in memory */
	r = 0x22;
	asm volatile("xchgl %k0, (%1)" : "+r"(r) : "r"(MMIO(0x84)) : "memory");
	GUEST_SYNC(r);
}

TEST_F(emu, mmio_read_modify_write_and_flags)
{
	ASSERT_EQ(0, gt_create(&self->vm, guest_mmio_alu));
	MMIO_READ(MMIO(0x70), 4, 0x80000000);
	MMIO_WRITE(MMIO(0x70), 4, 0x80000001);
	RUN_SYNC(F_SF);
	MMIO_READ(MMIO(0x74), 4, 0);
	MMIO_WRITE(MMIO(0x74), 4, 0xffffffff);
	RUN_SYNC(F_CF | F_PF | F_AF | F_SF);
	MMIO_READ(MMIO(0x78), 2, 0x7fff);
	MMIO_WRITE(MMIO(0x78), 2, 0x8000);
	RUN_SYNC(F_PF | F_AF | F_SF | F_OF);
	MMIO_READ(MMIO(0x7c), 4, 5);
	RUN_SYNC(F_PF | F_ZF);
	MMIO_READ(MMIO(0x80), 1, 0x25);
	RUN_SYNC(0x15);
	MMIO_READ(MMIO(0x84), 4, 0x11);
	MMIO_WRITE(MMIO(0x84), 4, 0x22);
	RUN_SYNC(0x11);
	GT_RUN_EXPECT(VCPU, &self->uc, UCALL_DONE);
}

/* REP STOS to MMIO: one write exit per element; RCX and RDI move with each
 * (DF = 1: down). */
GUEST_FN guest_mmio_rep_stos(uint64_t arg)
{
	uint64_t di = MMIO(0x100), cx = 3;

	asm volatile("rep stosl" : "+D"(di), "+c"(cx) : "a"(0xcafebabe) : "memory");
	GUEST_SYNC(di);
	GUEST_SYNC(cx);
	di = MMIO(0x200);
	cx = 4;
	asm volatile("rep stosb" : "+D"(di), "+c"(cx) : "a"(0x5c) : "memory");
	GUEST_SYNC(di);
	GUEST_SYNC(cx);
	di = MMIO(0x306);
	cx = 3;
	asm volatile("std\n rep stosw\n cld" : "+D"(di), "+c"(cx) : "a"(0xbeef) : "memory", "cc");
	GUEST_SYNC(di);
	GUEST_SYNC(cx);
}

/* The next exit is element i of a REP STOS; RCX shows the elements left. */
static void stos_element(struct __test_metadata *_metadata, struct gt_vcpu *v, uint64_t gpa, uint32_t size,
			 uint64_t data, uint64_t rcx)
{
	struct rvmx_regs regs;

	mmio_exit(_metadata, v, gpa, size, 1, data);
	ASSERT_EQ(0, rvmx_get_regs(&v->rv, &regs));
	EXPECT_EQ(rcx, regs.rcx);
	EXPECT_EQ(gpa, regs.rdi);
}

TEST_F(emu, mmio_rep_stos)
{
	ASSERT_EQ(0, gt_create(&self->vm, guest_mmio_rep_stos));
	for (int i = 0; i < 3; i++)
		stos_element(_metadata, VCPU, MMIO(0x100 + 4 * i), 4, 0xcafebabe, 3 - i);
	RUN_SYNC(MMIO(0x10c));
	RUN_SYNC(0);
	for (int i = 0; i < 4; i++)
		stos_element(_metadata, VCPU, MMIO(0x200 + i), 1, 0x5c, 4 - i);
	RUN_SYNC(MMIO(0x204));
	RUN_SYNC(0);
	for (int i = 0; i < 3; i++)
		stos_element(_metadata, VCPU, MMIO(0x306 - 2 * i), 2, 0xbeef, 3 - i);
	RUN_SYNC(MMIO(0x300));
	RUN_SYNC(0);
	GT_RUN_EXPECT(VCPU, &self->uc, UCALL_DONE);
}

/* RAM ends at 64 MiB: MMIO begins there. */
#define RAM_END	GT_MEM_SIZE

/* Accesses across a page boundary are split there: two MMIO exits, or
 * RAM for the part on a RAM page and one exit for the rest. */
GUEST_FN guest_mmio_page_cross(uint64_t arg)
{
	volatile uint32_t *ram_tail = (volatile uint32_t *)(uintptr_t)(RAM_END - 4);
	uint64_t r;

	asm volatile("movq (%1), %0" : "=r"(r) : "r"(MMIO(0xffc)));
	GUEST_SYNC(r);
	asm volatile("movq %0, (%1)" : : "r"(0x0123456789abcdefull), "r"(MMIO(0x1ffe)) : "memory");
	*ram_tail = 0x11223344;
	asm volatile("movq (%1), %0" : "=r"(r) : "r"(RAM_END - 4) : "memory");
	GUEST_SYNC(r);
	asm volatile("movq %0, (%1)" : : "r"(0x1122334455667788ull), "r"(RAM_END - 6) : "memory");
	GUEST_SYNC(*ram_tail);
}

TEST_F(emu, mmio_page_crossing_is_split)
{
	ASSERT_EQ(0, gt_create(&self->vm, guest_mmio_page_cross));
	MMIO_READ(MMIO(0xffc), 4, 0xffffffff44332211ull);
	MMIO_READ(MMIO(0x1000), 4, 0x88776655);
	RUN_SYNC(0x8877665544332211ull);
	/* 2 bytes below the boundary, 6 above (rvmx splits exactly there) */
	MMIO_WRITE(MMIO(0x1ffe), 2, 0xcdef);
	MMIO_WRITE(MMIO(0x2000), 6, 0x0123456789abull);
	MMIO_READ(RAM_END, 4, 0xaabbccdd);
	RUN_SYNC(0xaabbccdd11223344ull);
	MMIO_WRITE(RAM_END, 2, 0x1122);
	RUN_SYNC(0x33445566);	/* the RAM part: bytes 88 77 | 66 55 44 33 */
	GT_RUN_EXPECT(VCPU, &self->uc, UCALL_DONE);
}

extern const char movnti_insn[], movnti_end[];

/* MOVNTI (0F C3) is not among what rvmx decodes: the bytes go to userland
 * (size 0), RIP at the instruction; here userland skips it. */
GUEST_FN guest_mmio_undecodable(uint64_t arg)
{
	asm volatile(LABEL(movnti_insn) "movnti %%eax, (%0)\n" LABEL(movnti_end)
		     : : "b"(MMIO(0x400)), "a"(0x1234) : "memory");
	GUEST_SYNC(0x600d);
}

TEST_F(emu, mmio_undecodable_instruction_goes_raw)
{
	struct rvmx_regs regs;
	size_t len = movnti_end - movnti_insn;

	ASSERT_EQ(0, gt_create(&self->vm, guest_mmio_undecodable));
	ASSERT_EQ(0, rvmx_run(&VCPU->rv));
	ASSERT_EQ(RVMX_EXIT_MMIO, RUN->exit_reason);
	EXPECT_EQ(0, RUN->mmio.size);
	EXPECT_EQ(MMIO(0x400), RUN->mmio.gpa);
	EXPECT_NE(0, RUN->mmio.access & RVMX_MMIO_WRITE);
	ASSERT_GE(RUN->mmio.insn_len, len);
	ASSERT_LE(RUN->mmio.insn_len, 15);
	/* the guest's code is a copy of this binary's */
	EXPECT_EQ(0, memcmp(RUN->mmio.insn, movnti_insn, RUN->mmio.insn_len));
	EXPECT_EQ(0x0f, RUN->mmio.insn[0]);
	EXPECT_EQ(0xc3, RUN->mmio.insn[1]);
	ASSERT_EQ(0, rvmx_get_regs(&VCPU->rv, &regs));
	EXPECT_EQ((uintptr_t)movnti_insn, regs.rip);
	regs.rip += len;
	ASSERT_EQ(0, rvmx_set_regs(&VCPU->rv, &regs));
	RUN_SYNC(0x600d);
	GT_RUN_EXPECT(VCPU, &self->uc, UCALL_DONE);
}

/* ================= debug ================= */

/* DR6 bits (SDM Vol. 3B 18.2.3): B0-B3, BD, BS; DR7 bits (18.2.4). */
#define DR6_B0		0x1ull
#define DR6_BD		0x2000ull
#define DR6_BS		0x4000ull
#define DR6_INIT	0xffff0ff0ull	/* nothing recorded */
#define DR6_SEEN	(0xfull | DR6_BD | DR6_BS)
#define DR7_FIXED	0x400ull
/* L0, R/W0 = 01 (data writes), LEN0 = 11 (4 bytes) */
#define DR7_L0_W4	(0x1ull | 0x1ull << 16 | 0x3ull << 18)

extern const char ss_nop[], ss_after[], icebp_insn[], icebp_after[], dbw_insn[], dbw_after[];

static uint64_t db_count, db_rip[4], db_dr6[4];
static volatile uint32_t watched;

/* The #DB handler: records RIP and DR6 (read with MOV, as a guest does),
 * then clears DR6 (it is sticky, SDM Vol. 3B 18.2.3), TF and DR7. */
static void db_handler(struct gt_exc_frame *f)
{
	uint64_t dr6;

	asm volatile("mov %%dr6, %0" : "=r"(dr6));
	if (db_count < 4) {
		db_rip[db_count] = f->rip;
		db_dr6[db_count] = dr6;
	}
	db_count++;
	asm volatile("mov %0, %%dr6" : : "r"(DR6_INIT));
	asm volatile("mov %0, %%dr7" : : "r"(DR7_FIXED));
	f->rflags &= ~0x100ull;
}

GUEST_FN guest_db_step_icebp(uint64_t arg)
{
	gt_touch_tables();
	/* TF set by POPF: a trap after the next instruction (SDM Vol. 3B
	 * 18.3.1.4) */
	asm volatile("pushfq\n orq $0x100, (%%rsp)\n popfq\n" LABEL(ss_nop) "nop\n" LABEL(ss_after)
		     : : : "memory", "cc");
	/* ICEBP (INT1, F1): a trap, DR6 as it was (SDM Vol. 3B 18.3.1) */
	asm volatile(LABEL(icebp_insn) ".byte 0xf1\n" LABEL(icebp_after));
	GUEST_SYNC(db_count);
	GUEST_SYNC(db_rip[0]);
	GUEST_SYNC(db_dr6[0] & DR6_SEEN);
	GUEST_SYNC(db_rip[1]);
	GUEST_SYNC(db_dr6[1] & DR6_SEEN);
}

/* Single step then ICEBP: RIP past each, DR6.BS for the step only (the
 * handler cleared DR6 between them). */
TEST_F(emu, db_single_step_and_icebp_dr6)
{
	ASSERT_EQ(0, gt_create(&self->vm, guest_db_step_icebp));
	ASSERT_EQ(0, gt_install_handler(&self->vm, 1, db_handler));
	RUN_SYNC(2);
	RUN_SYNC((uintptr_t)ss_after);
	RUN_SYNC(DR6_BS);
	RUN_SYNC((uintptr_t)icebp_after);
	RUN_SYNC(0);
	GT_RUN_EXPECT(VCPU, &self->uc, UCALL_DONE);
}

/* The handler's view of DR6 right after a single step, all of it: bits
 * 31:16 and 11:4 read 1, BS set (SDM Vol. 3B 18.2.3). */
GUEST_FN guest_db_dr6_value(uint64_t arg)
{
	gt_touch_tables();
	asm volatile("pushfq\n orq $0x100, (%%rsp)\n popfq\n nop\n" : : : "memory", "cc");
	GUEST_SYNC(db_dr6[0]);
}

TEST_F(emu, db_single_step_dr6_value)
{
	ASSERT_EQ(0, gt_create(&self->vm, guest_db_dr6_value));
	ASSERT_EQ(0, gt_install_handler(&self->vm, 1, db_handler));
	RUN_SYNC(DR6_INIT | DR6_BS);
	GT_RUN_EXPECT(VCPU, &self->uc, UCALL_DONE);
}

/* A data breakpoint: trap after the write, B0 in DR6 (SDM Vol. 3B
 * 18.3.1.2). arg 0: the guest arms DR0/DR7 itself; 1: userland did. */
GUEST_FN guest_db_watch(uint64_t arg)
{
	gt_touch_tables();
	if (arg == 0) {
		asm volatile("mov %0, %%dr0" : : "r"((uintptr_t)&watched));
		asm volatile("mov %0, %%dr7" : : "r"(DR7_FIXED | DR7_L0_W4));
	}
	asm volatile(LABEL(dbw_insn) "movl $0x1234, %0\n" LABEL(dbw_after) : "=m"(watched));
	GUEST_SYNC(db_count);
	GUEST_SYNC(db_rip[0]);
	GUEST_SYNC(db_dr6[0] & DR6_SEEN);
	GUEST_SYNC(watched);
	watched = 5;	/* DR7 cleared by the handler: no second trap */
	GUEST_SYNC(db_count);
}

static void watch_checks(struct __test_metadata *_metadata, FIXTURE_DATA(emu) *self)
{
	RUN_SYNC(1);
	RUN_SYNC((uintptr_t)dbw_after);
	RUN_SYNC(DR6_B0);
	RUN_SYNC(0x1234);
	RUN_SYNC(1);
	GT_RUN_EXPECT(VCPU, &self->uc, UCALL_DONE);
}

TEST_F(emu, db_data_breakpoint_set_by_guest)
{
	ASSERT_EQ(0, gt_create(&self->vm, guest_db_watch));
	ASSERT_EQ(0, gt_install_handler(&self->vm, 1, db_handler));
	watch_checks(_metadata, self);
}

TEST_F(emu, db_data_breakpoint_set_by_userland)
{
	struct rvmx_debugregs d;

	ASSERT_EQ(0, gt_create(&self->vm, guest_db_watch));
	ASSERT_EQ(0, gt_install_handler(&self->vm, 1, db_handler));
	ASSERT_EQ(0, gt_vcpu_start(VCPU, guest_db_watch, 1));
	ASSERT_EQ(0, rvmx_get_debugregs(&VCPU->rv, &d));
	EXPECT_EQ(DR7_FIXED, d.dr7);
	EXPECT_EQ(DR6_INIT, d.dr6);
	d.db[0] = (uintptr_t)&watched;
	d.dr7 = DR7_FIXED | DR7_L0_W4;
	ASSERT_EQ(0, rvmx_set_debugregs(&VCPU->rv, &d));
	watch_checks(_metadata, self);
	/* the guest's handler wrote DR7 and DR6 */
	ASSERT_EQ(0, rvmx_get_debugregs(&VCPU->rv, &d));
	EXPECT_EQ(DR7_FIXED, d.dr7);
	EXPECT_EQ(DR6_INIT, d.dr6);
}

GUEST_FN guest_dr_round_trip(uint64_t arg)
{
	uint64_t v;

	asm volatile("mov %%dr0, %0" : "=r"(v));
	GUEST_SYNC(v);
	asm volatile("mov %%dr3, %0" : "=r"(v));
	GUEST_SYNC(v);
	asm volatile("mov %0, %%dr1" : : "r"(0xabcdef00ull));
	GUEST_SYNC(0);
	asm volatile("mov %%dr1, %0" : "=r"(v));
	GUEST_SYNC(v);
}

/* RVMX_SET_DEBUGREGS reaches the guest's MOV from DR0-3; what the guest
 * writes comes back in RVMX_GET_DEBUGREGS, and a later SET reaches it. */
TEST_F(emu, debugregs_round_trip)
{
	struct rvmx_debugregs d = { .db = { 0x1000, 0x2000, 0x3000, 0xfffff000 }, .dr6 = DR6_INIT, .dr7 = DR7_FIXED };

	ASSERT_EQ(0, gt_create(&self->vm, guest_dr_round_trip));
	ASSERT_EQ(0, rvmx_set_debugregs(&VCPU->rv, &d));
	RUN_SYNC(0x1000);
	RUN_SYNC(0xfffff000);
	RUN_SYNC(0);
	ASSERT_EQ(0, rvmx_get_debugregs(&VCPU->rv, &d));
	EXPECT_EQ(0x1000, d.db[0]);
	EXPECT_EQ(0xabcdef00, d.db[1]);
	EXPECT_EQ(0x3000, d.db[2]);
	d.db[1] = 0x5555000;
	ASSERT_EQ(0, rvmx_set_debugregs(&VCPU->rv, &d));
	RUN_SYNC(0x5555000);
	GT_RUN_EXPECT(VCPU, &self->uc, UCALL_DONE);
}

TEST_HARNESS_MAIN
