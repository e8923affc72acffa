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
