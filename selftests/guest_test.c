// SPDX-License-Identifier: GPL-2.0
/*
 * Guests running through /dev/rvmx: real, protected and long mode, port
 * I/O both ways, CPUID, HLT, memory, MMIO exits, VM-entry failures, and the
 * ioctl checks. Each test fails unless the guest really ran (its OUTs
 * carry values only the guest computes).
 */
#define _GNU_SOURCE
#include <cpuid.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <asm/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "lib/util.h"
#include "lib/guest.h"

/* Real mode: OUT byte and word, IN with data from userland, CPUID, HLT. */
GUEST_CODE(rm_io, ".code16",
	"	mov $0x42, %al\n"
	"	out %al, $0x10\n"
	"	mov $0x1234, %ax\n"
	"	out %ax, $0x11\n"
	"	in $0x12, %al\n"
	"	add $1, %al\n"
	"	out %al, $0x13\n"
	"	mov $0x12345678, %eax\n"
	"	in $0x14, %ax\n"		/* upper half of EAX must survive */
	"	out %eax, $0x15\n"
	"	xor %eax, %eax\n"
	"	cpuid\n"
	"	mov %ebx, %eax\n"
	"	out %eax, $0x16\n"
	"	mov $1, %eax\n"
	"	cpuid\n"
	"	mov %ecx, %eax\n"
	"	out %eax, $0x17\n"
	"	hlt\n"
	"rm_io_after_hlt:\n"
	"	jmp rm_io_after_hlt\n");

FIXTURE(vm) {
	struct guest g;
};

FIXTURE_SETUP(vm)
{
	self->g.sys = -1;
	ASSERT_EQ(0, rvmx_ensure_loaded());
}

FIXTURE_TEARDOWN(vm)
{
	guest_destroy(&self->g);
}

TEST_F(vm, real_mode_io_cpuid_hlt)
{
	struct guest *g = &self->g;
	struct rvmx_run *run;
	struct rvmx_regs regs;
	unsigned int a, b, c, d, c2;

	ASSERT_EQ(0, guest_create(g, 1 << 20, 1, rm_io_start, rm_io_end));
	ASSERT_EQ(0, guest_real_mode(g, 0));
	run = g->vcpu[0].run;

	ASSERT_EQ(0x42, guest_expect_out(g, 0, 0x10));
	ASSERT_EQ(1, run->io.size);
	ASSERT_EQ(0x1234, guest_expect_out(g, 0, 0x11));
	ASSERT_EQ(2, run->io.size);

	ASSERT_EQ(0, rvmx_run(&g->vcpu[0]));
	ASSERT_EQ(RVMX_EXIT_IO, run->exit_reason);
	ASSERT_EQ(RVMX_IO_IN, run->io.direction);
	ASSERT_EQ(0x12, run->io.port);
	ASSERT_EQ(1, run->io.size);
	run->io.data = 0x99;
	ASSERT_EQ(0x9a, guest_expect_out(g, 0, 0x13));	/* the guest added 1 */

	ASSERT_EQ(0, rvmx_run(&g->vcpu[0]));
	ASSERT_EQ(RVMX_IO_IN, run->io.direction);
	ASSERT_EQ(2, run->io.size);
	run->io.data = 0xabcdef;	/* only 16 bits go in */
	ASSERT_EQ(0x1234cdef, guest_expect_out(g, 0, 0x15));
	ASSERT_EQ(4, run->io.size);

	__cpuid(0, a, b, c, d);
	ASSERT_EQ(b, guest_expect_out(g, 0, 0x16));	/* vendor, "Genu" */
	__cpuid(1, a, b, c, d);
	/* VMX, SMX, MONITOR, DS-CPL, EST, TM2, xTPR, PDCM hidden; hypervisor
	 * set; OSXSAVE clear (the guest has CR4.OSXSAVE 0); SSE3 and the
	 * like are the host's. */
	c2 = guest_expect_out(g, 0, 0x17);
	EXPECT_EQ(0, c2 & ((1u << 3) | (1u << 4) | (1u << 5) | (1u << 6) | (1u << 7) | (1u << 8) |
			   (1u << 14) | (1u << 15) | (1u << 27)));
	EXPECT_NE(0, c2 & (1u << 31));
	EXPECT_EQ(c & ((1u << 0) | (1u << 9) | (1u << 19) | (1u << 20) | (1u << 23)),
		  c2 & ((1u << 0) | (1u << 9) | (1u << 19) | (1u << 20) | (1u << 23)));

	ASSERT_EQ(0, rvmx_run(&g->vcpu[0]));
	ASSERT_EQ(RVMX_EXIT_HLT, run->exit_reason) TH_LOG("exit %s", rvmx_exit_name(run->exit_reason));
	ASSERT_EQ(0, rvmx_get_regs(&g->vcpu[0], &regs));
	ASSERT_EQ(GUEST_CODE_GPA + (rm_io_end - rm_io_start) - 2, regs.rip);	/* past HLT */
}

/* VMX instructions in the guest raise #UD (IVT[6] handler reports it). */
GUEST_CODE(rm_ud, ".code16",
	"	movw $" GUEST_ADDR(rm_ud, rm_ud_handler) ", (6 * 4)\n"
	"	movw $0, (6 * 4 + 2)\n"
	"	vmcall\n"
	"	mov $1, %al\n"
	"	out %al, $0x20\n"		/* not reached */
	"rm_ud_handler:\n"
	"	mov $6, %al\n"
	"	out %al, $0x21\n"
	"	hlt\n");

TEST_F(vm, vmx_instruction_raises_ud)
{
	ASSERT_EQ(0, guest_create(&self->g, 1 << 20, 1, rm_ud_start, rm_ud_end));
	ASSERT_EQ(0, guest_real_mode(&self->g, 0));
	ASSERT_EQ(6, guest_expect_out(&self->g, 0, 0x21));
}

GUEST_CODE(pm, ".code32",
	"	mov %cr0, %eax\n"
	"	out %eax, $0x30\n"
	"	mov $0xdeadbeef, %eax\n"
	"	add %esi, %eax\n"
	"	out %eax, $0x31\n"
	"	mov %cs, %eax\n"
	"	out %eax, $0x32\n"
	"	hlt\n");

TEST_F(vm, protected_mode)
{
	struct rvmx_regs regs;
	struct rvmx_sregs s;

	ASSERT_EQ(0, guest_create(&self->g, 1 << 20, 1, pm_start, pm_end));
	ASSERT_EQ(0, guest_protected_mode(&self->g, 0));
	ASSERT_EQ(0, rvmx_get_regs(&self->g.vcpu[0], &regs));
	regs.rsi = 0x11;
	ASSERT_EQ(0, rvmx_set_regs(&self->g.vcpu[0], &regs));
	/* The guest sees its own CR0 (PE | ET), not the NE rvmx forces. */
	ASSERT_EQ(0x11, guest_expect_out(&self->g, 0, 0x30));
	ASSERT_EQ(0xdeadbf00, guest_expect_out(&self->g, 0, 0x31));
	ASSERT_EQ(8, guest_expect_out(&self->g, 0, 0x32));
	ASSERT_EQ(0, rvmx_get_sregs(&self->g.vcpu[0], &s));
	ASSERT_EQ(0x11, s.cr0);
	ASSERT_EQ(0xc09b, s.cs.ar & 0xf0ff);
}

/* Long mode: 64-bit registers, a 64-bit value through two OUTs, CR8. */
GUEST_CODE(lm, ".code64",
	"	mov $0x1122334455667788, %rax\n"
	"	add %r12, %rax\n"
	"	mov %rax, %rbx\n"
	"	out %eax, $0x40\n"
	"	shr $32, %rax\n"
	"	out %eax, $0x41\n"
	"	mov $9, %rax\n"
	"	mov %rax, %cr8\n"
	"	mov %cr8, %rcx\n"
	"	mov %ecx, %eax\n"
	"	out %eax, $0x42\n"
	"	mov $0x1000, %rsp\n"
	"	push %rbx\n"
	"	hlt\n");

TEST_F(vm, long_mode)
{
	struct guest *g = &self->g;
	struct rvmx_regs regs;
	struct rvmx_sregs s;

	ASSERT_EQ(0, guest_create(g, 1 << 20, 1, lm_start, lm_end));
	ASSERT_EQ(0, guest_long_mode(g, 0));
	ASSERT_EQ(0, rvmx_get_regs(&g->vcpu[0], &regs));
	regs.r12 = 0x0100000001;
	ASSERT_EQ(0, rvmx_set_regs(&g->vcpu[0], &regs));
	ASSERT_EQ(0x55667789, guest_expect_out(g, 0, 0x40));
	ASSERT_EQ(0x11223345, guest_expect_out(g, 0, 0x41));
	ASSERT_EQ(9, guest_expect_out(g, 0, 0x42));
	ASSERT_EQ(0, rvmx_run(&g->vcpu[0]));
	ASSERT_EQ(RVMX_EXIT_HLT, g->vcpu[0].run->exit_reason);
	ASSERT_EQ(0, rvmx_get_regs(&g->vcpu[0], &regs));
	ASSERT_EQ(0x1122334555667789ull, regs.rbx);
	ASSERT_EQ(0xff8, regs.rsp);
	ASSERT_EQ(0x1122334555667789ull, *(uint64_t *)(g->mem + 0xff8));	/* the push */
	ASSERT_EQ(0, rvmx_get_sregs(&g->vcpu[0], &s));
	ASSERT_EQ(9, s.cr8);
	ASSERT_EQ(0x500, s.efer & 0x500);
}

/* The guest fills [1 MiB, 4 MiB) with a pattern, then touches an address
 * outside every region. */
GUEST_CODE(fill, ".code64",
	"	mov $0x100000, %rdi\n"
	"1:	mov %rdi, %rax\n"
	"	xor %r8, %rax\n"
	"	mov %rax, (%rdi)\n"
	"	add $8, %rdi\n"
	"	cmp $0x400000, %rdi\n"
	"	jne 1b\n"
	"	mov $1, %eax\n"
	"	out %eax, $0x50\n"
	"	mov $0x3ff00000, %rdi\n"
	"	movq $7, (%rdi)\n"
	"	hlt\n");

TEST_F(vm, memory_pattern_and_mmio_exit)
{
	struct guest *g = &self->g;
	uint64_t key = 0x5a5a5a5a12345678ull;
	struct rvmx_regs regs;
	struct rvmx_run *run;

	ASSERT_EQ(0, guest_create(g, 4 << 20, 1, fill_start, fill_end));
	ASSERT_EQ(0, guest_long_mode(g, 0));
	ASSERT_EQ(0, rvmx_get_regs(&g->vcpu[0], &regs));
	regs.r8 = key;
	ASSERT_EQ(0, rvmx_set_regs(&g->vcpu[0], &regs));
	ASSERT_EQ(1, guest_expect_out(g, 0, 0x50));
	for (uint64_t a = 0x100000; a < 0x400000; a += 8) {
		ASSERT_EQ(a ^ key, *(uint64_t *)(g->mem + a)) TH_LOG("at %#llx", (unsigned long long)a);
	}
	run = g->vcpu[0].run;
	ASSERT_EQ(0, rvmx_run(&g->vcpu[0]));
	ASSERT_EQ(0, rvmx_get_regs(&g->vcpu[0], &regs));
	ASSERT_EQ(RVMX_EXIT_MMIO, run->exit_reason)
		TH_LOG("exit %s, rip %#llx", rvmx_exit_name(run->exit_reason), (unsigned long long)regs.rip);
	/* movq $7, (%rdi): rvmx decodes it; userland sees an 8-byte write. */
	ASSERT_EQ(0x3ff00000, run->mmio.gpa);
	ASSERT_EQ(RVMX_MMIO_WRITE, run->mmio.access);
	ASSERT_EQ(8, run->mmio.size);
	ASSERT_EQ(7, run->mmio.data);
	/* Done: the guest goes on to its HLT. */
	ASSERT_EQ(0, rvmx_run(&g->vcpu[0]));
	ASSERT_EQ(RVMX_EXIT_HLT, run->exit_reason) TH_LOG("exit %s", rvmx_exit_name(run->exit_reason));
}

TEST_F(vm, bad_guest_state_fails_entry)
{
	struct guest *g = &self->g;
	struct rvmx_sregs s;

	ASSERT_EQ(0, guest_create(g, 1 << 20, 1, rm_io_start, rm_io_end));
	ASSERT_EQ(0, guest_real_mode(g, 0));
	ASSERT_EQ(0, rvmx_get_sregs(&g->vcpu[0], &s));
	s.cr0 = 0x80000010;	/* PG without PE */
	ASSERT_EQ(0, rvmx_set_sregs(&g->vcpu[0], &s));
	ASSERT_EQ(0, rvmx_run(&g->vcpu[0]));
	ASSERT_EQ(RVMX_EXIT_FAIL_ENTRY, g->vcpu[0].run->exit_reason);
	/* Exit reason 33 (invalid guest state) with bit 31 (entry failure). */
	ASSERT_EQ(0x80000021, g->vcpu[0].run->fail_entry.reason);
	/* And which field broke which rule. */
	ASSERT_EQ(0, strncmp(g->vcpu[0].run->fail_entry.account,
			     "GUEST_CR0: PG (bit 31) is 1 but PE (bit 0) is 0", 47))
		TH_LOG("account: %.240s", g->vcpu[0].run->fail_entry.account);
	/* Fixed, the same vCPU runs. */
	s.cr0 = 0x10;
	ASSERT_EQ(0, rvmx_set_sregs(&g->vcpu[0], &s));
	ASSERT_EQ(0x42, guest_expect_out(g, 0, 0x10));
}

GUEST_CODE(invd, ".code16",
	"	invd\n");

TEST_F(vm, unhandled_exit_reaches_userland)
{
	struct guest *g = &self->g;

	ASSERT_EQ(0, guest_create(g, 1 << 20, 1, invd_start, invd_end));
	ASSERT_EQ(0, guest_real_mode(g, 0));
	ASSERT_EQ(0, rvmx_run(&g->vcpu[0]));
	ASSERT_EQ(RVMX_EXIT_VMX, g->vcpu[0].run->exit_reason)
		TH_LOG("exit %s", rvmx_exit_name(g->vcpu[0].run->exit_reason));
	ASSERT_EQ(13, g->vcpu[0].run->vmx.reason);	/* INVD (always exits) */
	ASSERT_EQ(2, g->vcpu[0].run->vmx.instruction_length);
}

/* A read-only region (ROM): reads come from memory, a write exits as
 * MMIO with its data and leaves the memory as it was. */
GUEST_CODE(rom, ".code16",
	"	mov (0x8000), %al\n"
	"	out %al, $0x20\n"
	"	movw $0x5aa5, (0x8002)\n"
	"	mov (0x8002), %al\n"
	"	out %al, $0x21\n"
	"	hlt\n");

TEST_F(vm, readonly_region_writes_exit_as_mmio)
{
	struct guest *g = &self->g;
	struct rvmx_run *run;
	unsigned char *rom;

	ASSERT_EQ(0, guest_create(g, 0x8000, 1, rom_start, rom_end));
	rom = mmap(NULL, 0x1000, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, rom);
	for (int i = 0; i < 0x1000; i++)
		rom[i] = 0xa0 + (i & 0xf);
	struct rvmx_memory_region r = { .slot = 1, .guest_phys_addr = 0x8000, .memory_size = 0x1000,
					.userspace_addr = (uintptr_t)rom, .flags = RVMX_MEM_READONLY };
	ASSERT_EQ(0, ioctl(g->vm.fd, RVMX_SET_MEMORY_REGION, &r));
	ASSERT_EQ(0, guest_real_mode(g, 0));
	run = g->vcpu[0].run;
	ASSERT_EQ(0xa0, guest_expect_out(g, 0, 0x20));
	ASSERT_EQ(0, rvmx_run(&g->vcpu[0]));
	ASSERT_EQ(RVMX_EXIT_MMIO, run->exit_reason) TH_LOG("exit %s", rvmx_exit_name(run->exit_reason));
	EXPECT_EQ(0x8002, run->mmio.gpa);
	EXPECT_EQ(RVMX_MMIO_WRITE, run->mmio.access);
	EXPECT_EQ(2, run->mmio.size);
	EXPECT_EQ(0x5aa5, run->mmio.data);
	/* The ROM keeps its byte; the guest reads it back. */
	EXPECT_EQ(0xa2, rom[2]);
	ASSERT_EQ(0xa2, guest_expect_out(g, 0, 0x21));
}

TEST_F(vm, memory_region_checks)
{
	struct guest *g = &self->g;
	struct rvmx_memory_region r = { 0 };
	void *m = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	ASSERT_NE(MAP_FAILED, m);
	ASSERT_EQ(0, guest_create(g, 1 << 20, 0, NULL, NULL));
	/* misaligned address, size, user address */
	EXPECT_EQ(-EINVAL, rvmx_set_memory(&g->vm, 1, 0x100800, m, 0x1000));
	EXPECT_EQ(-EINVAL, rvmx_set_memory(&g->vm, 1, 0x200000, m, 0x1800));
	EXPECT_EQ(-EINVAL, rvmx_set_memory(&g->vm, 1, 0x200000, (char *)m + 8, 0x1000));
	/* overlap with slot 0 ([0, 1 MiB)) */
	EXPECT_EQ(-EEXIST, rvmx_set_memory(&g->vm, 1, 0xff000, m, 0x2000));
	/* wrapping, beyond 48 bits, too large, bad slot */
	EXPECT_EQ(-EINVAL, rvmx_set_memory(&g->vm, 1, 0xfffffffffffff000ull, m, 0x2000));
	EXPECT_EQ(-EINVAL, rvmx_set_memory(&g->vm, 1, 1ull << 48, m, 0x1000));
	EXPECT_EQ(-EINVAL, rvmx_set_memory(&g->vm, 1, 1ull << 32, m, 2ull << 30));
	EXPECT_EQ(-EINVAL, rvmx_set_memory(&g->vm, 32, 0x200000, m, 0x1000));
	/* reserved fields and flags */
	r = (struct rvmx_memory_region){ .slot = 1, .guest_phys_addr = 0x200000, .memory_size = 0x1000,
					 .userspace_addr = (uintptr_t)m, .flags = 2 };
	EXPECT_EQ(-1, ioctl(g->vm.fd, RVMX_SET_MEMORY_REGION, &r));
	EXPECT_EQ(EINVAL, errno);
	r.flags = 0;
	r.reserved[1] = 1;
	EXPECT_EQ(-1, ioctl(g->vm.fd, RVMX_SET_MEMORY_REGION, &r));
	EXPECT_EQ(EINVAL, errno);
	/* good: add, replace, delete */
	EXPECT_EQ(0, rvmx_set_memory(&g->vm, 1, 0x200000, m, 1 << 20));
	EXPECT_EQ(0, rvmx_set_memory(&g->vm, 1, 0x400000, m, 1 << 20));
	EXPECT_EQ(0, rvmx_set_memory(&g->vm, 1, 0, NULL, 0));
	EXPECT_EQ(0, rvmx_set_memory(&g->vm, 2, 0x200000, m, 1 << 20));
	munmap(m, 1 << 20);
}

TEST_F(vm, vcpu_checks)
{
	struct guest *g = &self->g;
	struct rvmx_vcpu v[64];
	struct rvmx_sregs s;
	void *p;

	ASSERT_EQ(0, guest_create(g, 1 << 20, 0, NULL, NULL));
	EXPECT_EQ(-1, ioctl(g->vm.fd, RVMX_CREATE_VCPU, 64));
	EXPECT_EQ(EINVAL, errno);
	for (int i = 0; i < 64; i++) {
		ASSERT_EQ(0, rvmx_create_vcpu(&g->vm, i, &v[i])) TH_LOG("vCPU %d", i);
	}
	EXPECT_EQ(-1, ioctl(g->vm.fd, RVMX_CREATE_VCPU, 5));
	EXPECT_EQ(EEXIST, errno);
	/* The exit record maps as one page at offset 0, nothing else. */
	p = mmap(NULL, 8192, PROT_READ, MAP_SHARED, v[0].fd, 0);
	EXPECT_EQ(MAP_FAILED, p);
	p = mmap(NULL, 4096, PROT_READ, MAP_SHARED, v[0].fd, 4096);
	EXPECT_EQ(MAP_FAILED, p);
	/* Reserved fields of the register structs. */
	ASSERT_EQ(0, rvmx_get_sregs(&v[0], &s));
	s.reserved[0] = 1;
	EXPECT_EQ(-EINVAL, rvmx_set_sregs(&v[0], &s));
	s.reserved[0] = 0;
	s.cs.ar |= 1 << 20;
	EXPECT_EQ(-EINVAL, rvmx_set_sregs(&v[0], &s));
	s.cs.ar &= ~(1 << 20);
	s.cr8 = 16;
	EXPECT_EQ(-EINVAL, rvmx_set_sregs(&v[0], &s));
	EXPECT_EQ(-1, ioctl(v[0].fd, RVMX_RUN, 1));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, ioctl(v[0].fd, RVMX_GET_REGS, NULL));
	EXPECT_EQ(EFAULT, errno);
	/* Closing one id makes it free again. */
	rvmx_vcpu_close(&v[5]);
	ASSERT_EQ(0, rvmx_create_vcpu(&g->vm, 5, &v[5]));
	for (int i = 0; i < 64; i++)
		rvmx_vcpu_close(&v[i]);
}

/* Another process (a fork, with another address space) may not run it. */
TEST_F(vm, run_from_other_process_refused)
{
	struct guest *g = &self->g;
	int status;
	pid_t pid;

	ASSERT_EQ(0, guest_create(g, 1 << 20, 1, rm_io_start, rm_io_end));
	ASSERT_EQ(0, guest_real_mode(g, 0));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0)
		_exit(rvmx_run(&g->vcpu[0]) == -EIO ? 0 : 1);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	ASSERT_EQ(0x42, guest_expect_out(g, 0, 0x10));
}

/* No IDT: INT3 cannot be delivered, nor the #GP, nor the #DF. */
GUEST_CODE(tf, ".code16",
	"	int3\n"
	"	hlt\n");

TEST_F(vm, triple_fault_is_shutdown)
{
	struct guest *g = &self->g;
	struct rvmx_sregs s;

	ASSERT_EQ(0, guest_create(g, 1 << 20, 1, tf_start, tf_end));
	ASSERT_EQ(0, guest_real_mode(g, 0));
	ASSERT_EQ(0, rvmx_get_sregs(&g->vcpu[0], &s));
	s.idt.limit = 0;
	ASSERT_EQ(0, rvmx_set_sregs(&g->vcpu[0], &s));
	ASSERT_EQ(0, rvmx_run(&g->vcpu[0]));
	ASSERT_EQ(RVMX_EXIT_SHUTDOWN, g->vcpu[0].run->exit_reason)
		TH_LOG("exit %s", rvmx_exit_name(g->vcpu[0].run->exit_reason));
}

/* RVMX_RUN by a bare SYSCALL, so that no library code touches XMM15 or
 * the GS base between the test's own instructions. */
static long run_raw(int fd)
{
	long ret;

	asm volatile("syscall" : "=a"(ret)
		     : "0"((long)__NR_ioctl), "D"((long)fd), "S"((long)RVMX_RUN), "d"(0L)
		     : "rcx", "r11", "memory");
	return ret;
}

/* The guest sets XMM15 to all ones; the host's XMM15 must not change,
 * and the guest's must survive a return to userland. */
GUEST_CODE(sse, ".code64",
	"	pcmpeqb %xmm15, %xmm15\n"
	"	movq %xmm15, %rax\n"
	"	out %eax, $0x90\n"
	"	movq %xmm15, %rax\n"
	"	shr $32, %rax\n"
	"	out %eax, $0x91\n"
	"	hlt\n");

TEST_F(vm, fpu_state_kept_apart)
{
	struct guest *g = &self->g;
	unsigned long long mine = 0x1122334455667788ull, after;
	struct rvmx_sregs s;
	long r;

	ASSERT_EQ(0, guest_create(g, 1 << 20, 1, sse_start, sse_end));
	ASSERT_EQ(0, guest_long_mode(g, 0));
	ASSERT_EQ(0, rvmx_get_sregs(&g->vcpu[0], &s));
	s.cr4 |= 0x600;	/* OSFXSR | OSXMMEXCPT: SSE on */
	ASSERT_EQ(0, rvmx_set_sregs(&g->vcpu[0], &s));
	asm volatile("movq %0, %%xmm15" : : "r"(mine) : "xmm15");
	r = run_raw(g->vcpu[0].fd);
	asm volatile("movq %%xmm15, %0" : "=r"(after));
	ASSERT_EQ(0, r);
	ASSERT_EQ(mine, after) TH_LOG("the host's XMM15 changed to %#llx", after);
	ASSERT_EQ(RVMX_EXIT_IO, g->vcpu[0].run->exit_reason);
	ASSERT_EQ(0xffffffff, g->vcpu[0].run->io.data);
	/* The guest's XMM15 is still all ones after our round trip. */
	ASSERT_EQ(0xffffffff, guest_expect_out(g, 0, 0x91));
}

/* SWAPGS in the guest swaps the guest's GS base with the real
 * IA32_KERNEL_GS_BASE, which holds the host task's user GS base. */
GUEST_CODE(swapgs, ".code64",
	"	swapgs\n"
	"	mov %gs:0x10, %eax\n"
	"	out %eax, $0x92\n"
	"	swapgs\n"
	"	mov %gs:0x10, %eax\n"
	"	out %eax, $0x93\n"
	"	hlt\n");

TEST_F(vm, kernel_gs_base_kept_apart)
{
	struct guest *g = &self->g;
	unsigned long host_gs = 0x5a5a0000, now = 0;
	struct rvmx_sregs s;

	ASSERT_EQ(0, guest_create(g, 1 << 20, 1, swapgs_start, swapgs_end));
	ASSERT_EQ(0, guest_long_mode(g, 0));
	ASSERT_EQ(0, rvmx_get_sregs(&g->vcpu[0], &s));
	s.gs.base = 0x3000;
	ASSERT_EQ(0, rvmx_set_sregs(&g->vcpu[0], &s));
	*(uint32_t *)(g->mem + 0x3010) = 0xaaaa;	/* GS base 0x3000 */
	*(uint32_t *)(g->mem + 0x0010) = 0xbbbb;	/* GS base 0 (the guest's KERNEL_GS_BASE) */
	ASSERT_EQ(0, syscall(SYS_arch_prctl, ARCH_SET_GS, host_gs));
	ASSERT_EQ(0, run_raw(g->vcpu[0].fd));
	ASSERT_EQ(0, syscall(SYS_arch_prctl, ARCH_GET_GS, &now));
	ASSERT_EQ(host_gs, now) TH_LOG("the host's GS base became %#lx", now);
	ASSERT_EQ(0x92, g->vcpu[0].run->io.port);
	ASSERT_EQ(0xbbbb, g->vcpu[0].run->io.data);
	ASSERT_EQ(0xaaaa, guest_expect_out(g, 0, 0x93));
	ASSERT_EQ(0, syscall(SYS_arch_prctl, ARCH_SET_GS, 0UL));
}

/* The run record maps shared only: a private mapping would hide what
 * userland writes there (an IN's data) from rvmx. */
TEST_F(vm, run_record_maps_shared_only)
{
	struct guest *g = &self->g;
	void *p;

	ASSERT_EQ(0, guest_create(g, 1 << 20, 1, rm_io_start, rm_io_end));
	p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE, g->vcpu[0].fd, 0);
	ASSERT_EQ(MAP_FAILED, p);
	EXPECT_EQ(EINVAL, errno);
	p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, g->vcpu[0].fd, 0);
	ASSERT_NE(MAP_FAILED, p);
	munmap(p, 4096);
}

/* Only the VM's creator runs it: after the creator exited, a process that
 * inherited the fds (a grandchild) gets EIO; so do new processes it forks
 * (each gets a newly allocated mm_struct, which could land at the
 * creator's freed address if rvmx did not hold a reference on it, as KVM's
 * mmgrab: then the address check alone would let them in). */
TEST(creator_gone_vm_refuses_others)
{
	int to_gc[2], from_gc[2];
	pid_t child;
	int status;
	char r = 0;

	ASSERT_EQ(0, rvmx_ensure_loaded());
	ASSERT_EQ(0, pipe(to_gc));
	ASSERT_EQ(0, pipe(from_gc));
	child = fork();
	ASSERT_LE(0, child);
	if (child == 0) {
		struct guest g;

		close(to_gc[1]);
		close(from_gc[0]);
		if (guest_create(&g, 1 << 20, 1, rm_io_start, rm_io_end) || guest_real_mode(&g, 0))
			_exit(2);
		if (fork() == 0) {
			char c;

			/* Wait for the creator to be gone, then try, here and in
			 * new processes. */
			if (read(to_gc[0], &c, 1) != 1)
				_exit(3);
			c = rvmx_run(&g.vcpu[0]) == -EIO ? 'y' : 'n';
			if (c == 'y' && rvmx_set_memory(&g.vm, 1, 0x200000, g.mem, 0x1000) != -EIO)
				c = 'm';
			for (int i = 0; i < 16 && c == 'y'; i++) {
				pid_t p = fork();
				int st;

				if (p == 0)
					_exit(rvmx_run(&g.vcpu[0]) == -EIO ? 0 : 1);
				if (p < 0 || waitpid(p, &st, 0) != p || !WIFEXITED(st) || WEXITSTATUS(st))
					c = 'f';
			}
			if (write(from_gc[1], &c, 1) != 1)
				_exit(4);
			_exit(0);
		}
		_exit(0);	/* the creator goes; the grandchild keeps the fds */
	}
	close(to_gc[0]);
	close(from_gc[1]);
	ASSERT_EQ(child, waitpid(child, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(0, WEXITSTATUS(status));
	ASSERT_EQ(1, write(to_gc[1], "g", 1));
	close(to_gc[1]);
	/* EOF (0) if the grandchild died without an answer. */
	ASSERT_EQ(1, read(from_gc[0], &r, 1));
	EXPECT_EQ('y', r) TH_LOG("n: RUN, m: SET_MEMORY_REGION, f: a new process's RUN did not refuse");
}

TEST_HARNESS_MAIN
