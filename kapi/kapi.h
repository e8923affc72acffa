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
