/* SPDX-License-Identifier: GPL-2.0 */
/*
 * VMX instructions that can fault or fail, as small functions with
 * exception-table fixups (a fault returns RVMX_INSN_FAULT instead of an
 * oops). Preprocessed by Kbuild with the kernel's assembler flags and pulled
 * into the crate by global_asm! in vmx/insn.rs.
 *
 * Return values (SDM Vol. 3C 31.2, "Conventions"): 0 = VMsucceed,
 * 1 = VMfailInvalid (CF=1), 2 = VMfailValid (ZF=1, error in the VMCS),
 * 3 = the instruction faulted (#UD or #GP).
 */
#include <linux/linkage.h>
#include <asm/asm.h>
#include <asm/nospec-branch.h>

#define RVMX_INSN_FAIL_INVALID	1
#define RVMX_INSN_FAIL_VALID	2
#define RVMX_INSN_FAULT		3

/* The tail after a VMX instruction at label 1: turn RFLAGS into a result. */
.macro vmx_result
	jc 3f
	jz 4f
	xor %eax, %eax
	RET
2:	mov $RVMX_INSN_FAULT, %eax
	RET
3:	mov $RVMX_INSN_FAIL_INVALID, %eax
	RET
4:	mov $RVMX_INSN_FAIL_VALID, %eax
	RET
	_ASM_EXTABLE(1b, 2b)
.endm

.text

/* int rvmx_vmxon(const u64 *region_pa) */
SYM_FUNC_START(rvmx_vmxon)
1:	vmxon (%rdi)
	vmx_result
SYM_FUNC_END(rvmx_vmxon)

/* int rvmx_vmxoff(void) */
SYM_FUNC_START(rvmx_vmxoff)
1:	vmxoff
	vmx_result
SYM_FUNC_END(rvmx_vmxoff)

/* int rvmx_vmclear(const u64 *vmcs_pa) */
SYM_FUNC_START(rvmx_vmclear)
1:	vmclear (%rdi)
	vmx_result
SYM_FUNC_END(rvmx_vmclear)

/* int rvmx_vmptrld(const u64 *vmcs_pa) */
SYM_FUNC_START(rvmx_vmptrld)
1:	vmptrld (%rdi)
	vmx_result
SYM_FUNC_END(rvmx_vmptrld)

/* int rvmx_invept(u64 type, const u64 desc[2]) */
SYM_FUNC_START(rvmx_invept)
1:	invept (%rsi), %rdi
	vmx_result
SYM_FUNC_END(rvmx_invept)

/* int rvmx_invvpid(u64 type, const u64 desc[2]) */
SYM_FUNC_START(rvmx_invvpid)
1:	invvpid (%rsi), %rdi
	vmx_result
SYM_FUNC_END(rvmx_invvpid)

/*
 * The VM entry/exit stub: the seed's vmx_setjmp/vmx_launch/vmx_longjmp in
 * one function.
 *
 * int rvmx_vmrun(u64 *gprs, int launched)
 *
 * gprs: the guest's 16 general registers in x86 encoding order (RAX, RCX,
 * RDX, RBX, RSP (unused: RSP is in the VMCS), RBP, RSI, RDI, R8..R15).
 * Enters the guest with VMLAUNCH (launched == 0) or VMRESUME. A VM exit
 * lands at rvmx_vmexit (HOST_RIP) with RSP = HOST_RSP, which is written
 * here to this frame, saves the guest registers and returns 0. A VM entry
 * that fails as an instruction returns 1 (VMfailInvalid) or 2 (VMfailValid),
 * a fault 3, with the host registers intact either way.
 * Called with interrupts off and the vCPU's VMCS current.
 */
#define GPR(n) (n * 8)

SYM_FUNC_START(rvmx_vmrun)
	push %rbp
	mov %rsp, %rbp
	push %r15
	push %r14
	push %r13
	push %r12
	push %rbx
	/* The gprs pointer, for after the exit. */
	push %rdi

	/* HOST_RSP (0x6c14) = this frame: the exit comes back here. */
	mov $0x6c14, %eax
1:	vmwrite %rsp, %rax
	jbe .Lvmrun_fail
	_ASM_EXTABLE(1b, .Lvmrun_fault)

	/* Launch or resume (ZF from this test survives the MOVs below). */
	test %esi, %esi

	mov GPR(0)(%rdi), %rax
	mov GPR(1)(%rdi), %rcx
	mov GPR(2)(%rdi), %rdx
	mov GPR(3)(%rdi), %rbx
	mov GPR(5)(%rdi), %rbp
	mov GPR(6)(%rdi), %rsi
	mov GPR(8)(%rdi), %r8
	mov GPR(9)(%rdi), %r9
	mov GPR(10)(%rdi), %r10
	mov GPR(11)(%rdi), %r11
	mov GPR(12)(%rdi), %r12
	mov GPR(13)(%rdi), %r13
	mov GPR(14)(%rdi), %r14
	mov GPR(15)(%rdi), %r15
	mov GPR(7)(%rdi), %rdi

	jz .Lvmlaunch
	UNWIND_HINT_SAVE
.Lvmresume:
	vmresume
	jmp .Lvmrun_entry_failed
.Lvmlaunch:
	vmlaunch
	jmp .Lvmrun_entry_failed
	_ASM_EXTABLE(.Lvmlaunch, .Lvmrun_entry_fault)
	_ASM_EXTABLE(.Lvmresume, .Lvmrun_entry_fault)

SYM_INNER_LABEL_ALIGN(rvmx_vmexit, SYM_L_GLOBAL)
	UNWIND_HINT_RESTORE
	ENDBR
	/* Guest RDI aside, then the gprs pointer back. */
	push %rdi
	mov 8(%rsp), %rdi
	mov %rax, GPR(0)(%rdi)
	mov %rcx, GPR(1)(%rdi)
	mov %rdx, GPR(2)(%rdi)
	mov %rbx, GPR(3)(%rdi)
	mov %rbp, GPR(5)(%rdi)
	mov %rsi, GPR(6)(%rdi)
	mov %r8, GPR(8)(%rdi)
	mov %r9, GPR(9)(%rdi)
	mov %r10, GPR(10)(%rdi)
	mov %r11, GPR(11)(%rdi)
	mov %r12, GPR(12)(%rdi)
	mov %r13, GPR(13)(%rdi)
	mov %r14, GPR(14)(%rdi)
	mov %r15, GPR(15)(%rdi)
	pop GPR(7)(%rdi)
	xor %eax, %eax

.Lvmrun_out:
	/* No guest value stays in a register the host could use. */
	xor %ecx, %ecx
	xor %edx, %edx
	xor %esi, %esi
	xor %edi, %edi
	xor %r8d, %r8d
	xor %r9d, %r9d
	xor %r10d, %r10d
	xor %r11d, %r11d
	add $8, %rsp
	pop %rbx
	pop %r12
	pop %r13
	pop %r14
	pop %r15
	pop %rbp
	RET

/* VMLAUNCH/VMRESUME did not enter: CF=1 invalid, ZF=1 valid. */
.Lvmrun_entry_failed:
	mov $RVMX_INSN_FAIL_INVALID, %eax
	jc .Lvmrun_out
	mov $RVMX_INSN_FAIL_VALID, %eax
	jmp .Lvmrun_out
.Lvmrun_entry_fault:
	mov $RVMX_INSN_FAULT, %eax
	jmp .Lvmrun_out

/* The VMWRITE of HOST_RSP failed: nothing was loaded yet. */
.Lvmrun_fail:
	mov $RVMX_INSN_FAIL_INVALID, %eax
	jc .Lvmrun_out
	mov $RVMX_INSN_FAIL_VALID, %eax
	jmp .Lvmrun_out
.Lvmrun_fault:
	mov $RVMX_INSN_FAULT, %eax
	jmp .Lvmrun_out
SYM_FUNC_END(rvmx_vmrun)
