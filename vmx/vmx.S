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
#include <asm/msr-index.h>
#include <asm/nospec-branch.h>
#include <asm/percpu.h>
#include <asm/segment.h>
#include <asm/trapnr.h>

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
 *
 * Speculation defences, as KVM's vmenter.S and each patched in or out by
 * the kernel's own mitigation choices (ALTERNATIVE, X86_FEATURE_*):
 * - last before entry, VERW clears CPU buffers (MDS, TAA, MMIO stale
 *   data, RFDS: X86_FEATURE_CLEAR_CPU_BUF);
 * - after the exit, before the first RET or CALL: the RSB is refilled
 *   (X86_FEATURE_RSB_VMEXIT, or the one-entry PBRSB fix with
 *   X86_FEATURE_RSB_VMEXIT_LITE), legacy IBRS is written again
 *   (X86_FEATURE_KERNEL_IBRS: the guest runs with the host's SPEC_CTRL,
 *   which it cannot change, but a VM exit needs IBRS rewritten), LFENCE
 *   stops speculation past this point, and the branch history is cleared
 *   (X86_FEATURE_CLEAR_BHB_LOOP_ON_VMEXIT).
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
	/* Launch or resume: CF = launched (VERW below clobbers ZF, not CF). */
	bt $0, %esi

	mov %rdi, %rax
	mov {REGS_RCX}(%rax), %rcx
	mov {REGS_RDX}(%rax), %rdx
	mov {REGS_RBX}(%rax), %rbx
	mov {REGS_RBP}(%rax), %rbp
	mov {REGS_RSI}(%rax), %rsi
	mov {REGS_RDI}(%rax), %rdi
	mov {REGS_R8}(%rax), %r8
	mov {REGS_R9}(%rax), %r9
	mov {REGS_R10}(%rax), %r10
	mov {REGS_R11}(%rax), %r11
	mov {REGS_R12}(%rax), %r12
	mov {REGS_R13}(%rax), %r13
	mov {REGS_R14}(%rax), %r14
	mov {REGS_R15}(%rax), %r15
	mov {REGS_RAX}(%rax), %rax

	/* Clear CPU buffers, the last thing before entry. */
	CLEAR_CPU_BUFFERS

	jnc .Lvmlaunch
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
	/* Guest RAX aside, then the regs pointer back. */
	push %rax
	mov 8(%rsp), %rax
	pop {REGS_RAX}(%rax)
	mov %rcx, {REGS_RCX}(%rax)
	mov %rdx, {REGS_RDX}(%rax)
	mov %rbx, {REGS_RBX}(%rax)
	mov %rbp, {REGS_RBP}(%rax)
	mov %rsi, {REGS_RSI}(%rax)
	mov %rdi, {REGS_RDI}(%rax)
	mov %r8, {REGS_R8}(%rax)
	mov %r9, {REGS_R9}(%rax)
	mov %r10, {REGS_R10}(%rax)
	mov %r11, {REGS_R11}(%rax)
	mov %r12, {REGS_R12}(%rax)
	mov %r13, {REGS_R13}(%rax)
	mov %r14, {REGS_R14}(%rax)
	mov %r15, {REGS_R15}(%rax)
	xor %ebx, %ebx

.Lvmrun_out:
	/*
	 * No guest value stays in a register the host could use, not even in
	 * those popped below (a cache miss could let speculation see them).
	 * The result is in EBX.
	 */
	xor %eax, %eax
	xor %ecx, %ecx
	xor %edx, %edx
	xor %ebp, %ebp
	xor %esi, %esi
	xor %edi, %edi
	xor %r8d, %r8d
	xor %r9d, %r9d
	xor %r10d, %r10d
	xor %r11d, %r11d
	xor %r12d, %r12d
	xor %r13d, %r13d
	xor %r14d, %r14d
	xor %r15d, %r15d

	/* Refill the RSB before the first RET or CALL (RSB underflow, PBRSB). */
	FILL_RETURN_BUFFER %rcx, RSB_CLEAR_LOOPS, X86_FEATURE_RSB_VMEXIT, X86_FEATURE_RSB_VMEXIT_LITE

	/* Legacy IBRS must be written again after a VM exit. */
	ALTERNATIVE "jmp .Lvmrun_ibrs_done", "", X86_FEATURE_KERNEL_IBRS
	mov $MSR_IA32_SPEC_CTRL, %ecx
	xor %edx, %edx
	mov PER_CPU_VAR(x86_spec_ctrl_current), %eax
	wrmsr
.Lvmrun_ibrs_done:
	/* No speculation past here with guest-controlled state. */
	lfence

	CLEAR_BRANCH_HISTORY_VMEXIT

	mov %ebx, %eax
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
	mov $RVMX_INSN_FAIL_INVALID, %ebx
	jc .Lvmrun_out
	mov $RVMX_INSN_FAIL_VALID, %ebx
	jmp .Lvmrun_out
.Lvmrun_fault:
	mov $RVMX_INSN_FAULT, %ebx
	jmp .Lvmrun_out
SYM_FUNC_END(rvmx_vmrun)

/*
 * void rvmx_do_nmi(void): hands an NMI that made the guest exit to the
 * host's NMI handler, as KVM's vmx_do_nmi_irqoff: through FRED's entry
 * where the kernel uses FRED, else by calling the IDT entry with an
 * interrupt frame built here (it returns with IRET). Interrupts off.
 */
#define RVMX_FRED_NMI_SS (__KERNEL_DS | (1 << 18) | (X86_TRAP_NMI << 32) | (EVENT_TYPE_NMI << 48) | (1 << 57))
SYM_FUNC_START(rvmx_do_nmi)
#ifdef CONFIG_X86_FRED
	ALTERNATIVE "", "jmp .Lnmi_fred", X86_FEATURE_FRED
#endif
	push %rbp
	mov %rsp, %rbp
#if IS_ENABLED(CONFIG_KVM_INTEL)
	and $-16, %rsp
	push $__KERNEL_DS
	push %rbp
	pushf
	push $__KERNEL_CS
	call asm_exc_nmi_kvm_vmx
#else
	int $2
#endif
	leave
	RET
#ifdef CONFIG_X86_FRED
.Lnmi_fred:
	movabs $RVMX_FRED_NMI_SS, %rdi
	call asm_fred_entry_from_kvm
	RET
#endif
SYM_FUNC_END(rvmx_do_nmi)

/*
 * void rvmx_ibpb(void): an indirect branch prediction barrier if the
 * kernel uses them (X86_FEATURE_USE_IBPB; spectre_v2_user=): run when this
 * CPU switches to another vCPU's VMCS, as KVM does.
 */
SYM_FUNC_START(rvmx_ibpb)
	ALTERNATIVE "jmp .Libpb_done", "", X86_FEATURE_USE_IBPB
	mov $MSR_IA32_PRED_CMD, %ecx
	mov x86_pred_cmd(%rip), %eax
	xor %edx, %edx
	wrmsr
.Libpb_done:
	RET
SYM_FUNC_END(rvmx_ibpb)

/*
 * void rvmx_l1d_flush_sw(const u8 *buf, u32 size): flush the L1D cache in
 * software on CPUs without IA32_FLUSH_CMD (L1TF): bring `size` bytes (twice
 * the L1D, as the replacement policy is not LRU) into the TLB, serialise,
 * then read one byte of each cache line.
 */
SYM_FUNC_START(rvmx_l1d_flush_sw)
	push %rbx
	xor %eax, %eax
.Ll1d_tlb:
	movzbl (%rdi, %rax), %ecx
	add $4096, %eax
	cmp %eax, %esi
	jne .Ll1d_tlb
	xor %eax, %eax
	cpuid
	xor %eax, %eax
.Ll1d_fill:
	movzbl (%rdi, %rax), %ecx
	add $64, %eax
	cmp %eax, %esi
	jne .Ll1d_fill
	lfence
	pop %rbx
	RET
SYM_FUNC_END(rvmx_l1d_flush_sw)
