// SPDX-License-Identifier: GPL-2.0
/*
 * rvmx_hello: the smallest VMM. A real-mode guest prints a greeting through
 * port 0xE9, one OUT per character, and halts; this program prints what the
 * guest wrote.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "rvmx.h"

/* Guest code, loaded at 0x1000 and entered at 0000:1000 in real mode. */
extern const unsigned char hello_start[], hello_end[];
asm(".pushsection .rodata\n"
    "hello_start:\n"
    ".code16\n"
    "	mov $(hello_msg - hello_start + 0x1000), %si\n"
    "1:	lodsb\n"
    "	test %al, %al\n"
    "	jz 2f\n"
    "	out %al, $0xe9\n"
    "	jmp 1b\n"
    "2:	hlt\n"
    "hello_msg: .asciz \"Hello from a rvmx guest!\\n\"\n"
    ".code64\n"
    "hello_end:\n"
    ".popsection\n");

static void die(const char *what, int err)
{
	fprintf(stderr, "rvmx_hello: %s: %s\n", what, strerror(-err));
	exit(1);
}

int main(void)
{
	struct rvmx_vm vm;
	struct rvmx_vcpu vcpu;
	struct rvmx_regs regs = { .rip = 0x1000, .rflags = 2 };
	struct rvmx_sregs sregs;
	size_t mem_size = 64 << 10;
	unsigned long exits = 0;
	unsigned char *mem;
	int sys, r;

	sys = rvmx_open();
	if (sys < 0)
		die("open /dev/rvmx", sys);
	if ((r = rvmx_create_vm(sys, &vm)))
		die("create VM", r);
	mem = mmap(NULL, mem_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		die("mmap", -12);
	memcpy(mem + 0x1000, hello_start, hello_end - hello_start);
	if ((r = rvmx_set_memory(&vm, 0, 0, mem, mem_size)))
		die("set memory", r);
	if ((r = rvmx_create_vcpu(&vm, 0, &vcpu)))
		die("create vCPU", r);
	if ((r = rvmx_get_sregs(&vcpu, &sregs)))
		die("get sregs", r);
	sregs.cs.selector = 0;
	sregs.cs.base = 0;
	if ((r = rvmx_set_sregs(&vcpu, &sregs)) || (r = rvmx_set_regs(&vcpu, &regs)))
		die("set registers", r);
	for (;;) {
		if ((r = rvmx_run(&vcpu)))
			die("run", r);
		exits++;
		if (vcpu.run->exit_reason == RVMX_EXIT_IO && vcpu.run->io.port == 0xe9 &&
		    vcpu.run->io.direction == RVMX_IO_OUT) {
			putchar((int)vcpu.run->io.data);
			continue;
		}
		if (vcpu.run->exit_reason == RVMX_EXIT_HLT)
			break;
		fprintf(stderr, "rvmx_hello: unexpected exit %s\n", rvmx_exit_name(vcpu.run->exit_reason));
		if (vcpu.run->exit_reason == RVMX_EXIT_FAIL_ENTRY)
			fprintf(stderr, "rvmx_hello: %.240s\n", vcpu.run->fail_entry.account);
		return 1;
	}
	printf("rvmx_hello: the guest halted after %lu exits to userland\n", exits);
	rvmx_vcpu_close(&vcpu);
	rvmx_vm_close(&vm);
	return 0;
}
