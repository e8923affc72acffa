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
 * The VM entry/exit stub: bhyve's vmx_setjmp/vmx_launch/vmx_longjmp in one
 * function.
 *
 * int rvmx_vmrun(struct GuestRegs *regs, int launched, u64 *host_rsp)
 *
 * regs: the guest's general registers but RSP (which is in the VMCS); the
 * offsets (REGS_*) and the HOST_RSP field encoding come from Rust
 * (vmx/regs.rs, vmcs/field.rs) as global_asm! operands in vmx/insn.rs.
 * Enters the guest with VMLAUNCH (launched == 0) or VMRESUME. A VM exit
 * lands at rvmx_vmexit (HOST_RIP) with RSP = HOST_RSP = this frame, saves
 * the guest registers and returns 0. HOST_RSP is written only when this
 * frame is not where *host_rsp (the VMCS's last value) says. A VM entry
 * that fails as an instruction returns 1 (VMfailInvalid) or 2
 * (VMfailValid), a fault 3, with the host registers intact either way.
 * Called with interrupts off and the vCPU's VMCS current.
 */
SYM_FUNC_START(rvmx_vmrun)
	push %rbp
	mov %rsp, %rbp
	push %r15
	push %r14
	push %r13
	push %r12
	push %rbx
	/* The regs pointer, for after the exit. */
	push %rdi

	cmp %rsp, (%rdx)
	je 2f
	mov ${HOST_RSP}, %eax
1:	vmwrite %rsp, %rax
	jbe .Lvmrun_failed
	_ASM_EXTABLE(1b, .Lvmrun_fault)
	mov %rsp, (%rdx)
2:
	/* Launch or resume (ZF from this test survives the MOVs below). */
	test %esi, %esi

	mov {REGS_RAX}(%rdi), %rax
	mov {REGS_RCX}(%rdi), %rcx
	mov {REGS_RDX}(%rdi), %rdx
	mov {REGS_RBX}(%rdi), %rbx
	mov {REGS_RBP}(%rdi), %rbp
	mov {REGS_RSI}(%rdi), %rsi
	mov {REGS_R8}(%rdi), %r8
	mov {REGS_R9}(%rdi), %r9
	mov {REGS_R10}(%rdi), %r10
	mov {REGS_R11}(%rdi), %r11
	mov {REGS_R12}(%rdi), %r12
	mov {REGS_R13}(%rdi), %r13
	mov {REGS_R14}(%rdi), %r14
	mov {REGS_R15}(%rdi), %r15
	mov {REGS_RDI}(%rdi), %rdi

	jz .Lvmlaunch
	UNWIND_HINT_SAVE
.Lvmresume:
	vmresume
	jmp .Lvmrun_failed
.Lvmlaunch:
	vmlaunch
	jmp .Lvmrun_failed
	_ASM_EXTABLE(.Lvmlaunch, .Lvmrun_fault)
	_ASM_EXTABLE(.Lvmresume, .Lvmrun_fault)

SYM_INNER_LABEL_ALIGN(rvmx_vmexit, SYM_L_GLOBAL)
	UNWIND_HINT_RESTORE
	ENDBR
	/* Guest RDI aside, then the regs pointer back. */
	push %rdi
	mov 8(%rsp), %rdi
	mov %rax, {REGS_RAX}(%rdi)
	mov %rcx, {REGS_RCX}(%rdi)
	mov %rdx, {REGS_RDX}(%rdi)
	mov %rbx, {REGS_RBX}(%rdi)
	mov %rbp, {REGS_RBP}(%rdi)
	mov %rsi, {REGS_RSI}(%rdi)
	mov %r8, {REGS_R8}(%rdi)
	mov %r9, {REGS_R9}(%rdi)
	mov %r10, {REGS_R10}(%rdi)
	mov %r11, {REGS_R11}(%rdi)
	mov %r12, {REGS_R12}(%rdi)
	mov %r13, {REGS_R13}(%rdi)
	mov %r14, {REGS_R14}(%rdi)
	mov %r15, {REGS_R15}(%rdi)
	pop {REGS_RDI}(%rdi)
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

/*
 * The one failure tail: the VMWRITE of HOST_RSP or VMLAUNCH/VMRESUME did
 * not complete (CF=1 VMfailInvalid, ZF=1 VMfailValid), or faulted; the
 * guest's registers were not loaded or are discarded.
 */
.Lvmrun_failed:
	mov $RVMX_INSN_FAIL_INVALID, %eax
	jc .Lvmrun_out
	mov $RVMX_INSN_FAIL_VALID, %eax
	jmp .Lvmrun_out
.Lvmrun_fault:
	mov $RVMX_INSN_FAULT, %eax
	jmp .Lvmrun_out
SYM_FUNC_END(rvmx_vmrun)
