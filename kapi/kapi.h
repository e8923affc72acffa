/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Kernel C APIs that the 6.12 `kernel` crate does not wrap. bindgen turns
 * the items allowed in kapi.allow into gen/kapi.rs at module build time;
 * kapi/mod.rs wraps them once, behind safe functions.
 */
#include <linux/cpuhotplug.h>
#include <linux/cpumask.h>
#include <linux/gfp.h>
#include <linux/miscdevice.h>
#include <linux/smp.h>
#include <linux/syscore_ops.h>
#include <asm/pgtable_types.h>
#include <asm/reboot.h>
#include <asm/tlbflush.h>
#include <linux/anon_inodes.h>
#include <linux/mm.h>
#include <linux/sched.h>
#include <linux/cpu.h>
#include <asm/fpu/api.h>
#include <asm/fpu/types.h>
#include <asm/current.h>

/* Constants bindgen evaluates (clang folds the initialisers). */
const unsigned long RVMX_PCPU_CPU_NUMBER = __builtin_offsetof(struct pcpu_hot, cpu_number);
#include <asm/cpufeature.h>
#include <asm/processor.h>
#include <asm/debugreg.h>
#include <asm/msr-index.h>
const unsigned int RVMX_FEATURE_FLUSH_L1D = X86_FEATURE_FLUSH_L1D;
const unsigned int RVMX_FEATURE_ARCH_CAPABILITIES = X86_FEATURE_ARCH_CAPABILITIES;
const unsigned int RVMX_BUG_L1TF = X86_BUG_L1TF;
#include <linux/irqflags.h>
#include <linux/rcupdate.h>
const unsigned long RVMX_CPUINFO_CAPS = __builtin_offsetof(struct cpuinfo_x86, x86_capability);
#include <asm/mce.h>
#include <asm/cpu.h>
#include <asm/desc.h>
#include <linux/preempt.h>
#include <asm/hardirq.h>
const unsigned int RVMX_FEATURE_IBPB_EXIT_TO_USER = X86_FEATURE_IBPB_EXIT_TO_USER;
#if IS_ENABLED(CONFIG_KVM_INTEL)
const unsigned long RVMX_IRQ_STAT_L1TF = __builtin_offsetof(irq_cpustat_t, kvm_cpu_l1tf_flush_l1d);
#endif
