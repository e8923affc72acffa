/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * rvmx: the userland ABI. This header is the single source of the ABI: the
 * module's Rust view is generated from it by bindgen, and C and Rust clients
 * use it as is.
 *
 * Rules for every struct: fixed-size types only, explicit padding, and
 * reserved fields that the caller must zero (else -EINVAL), so the ABI can
 * grow without new ioctl numbers.
 */
#ifndef _UAPI_RVMX_H
#define _UAPI_RVMX_H

#include <linux/types.h>
#include <linux/ioctl.h>

#define RVMX_API_VERSION 3

/* ioctl type byte; 0xBA is free in Documentation/userspace-api/ioctl/ioctl-number.rst */
#define RVMX_IOC 0xBA

/* ---- /dev/rvmx (system fd) ---- */

struct rvmx_version {
	__u32 api;		/* RVMX_API_VERSION */
	__u32 reserved;		/* written as zero */
};

#define RVMX_GET_VERSION	_IOR(RVMX_IOC, 0x00, struct rvmx_version)

/* What the hardware and rvmx support: check before use. */
struct rvmx_caps {
	__u64 flags;			/* RVMX_CAP_* */
	__u32 max_vcpus;		/* per VM */
	__u32 max_mem_slots;		/* per VM */
	__u32 vmcs_revision;		/* IA32_VMX_BASIC[30:0] */
	__u32 preemption_timer_shift;	/* timer ticks every 2^n TSC cycles */
	__u64 vmx_basic;		/* raw IA32_VMX_BASIC */
	__u64 ept_vpid_cap;		/* raw IA32_VMX_EPT_VPID_CAP */
	__u64 reserved[10];		/* zero */
};

#define RVMX_CAP_EPT			(1ULL << 0)
#define RVMX_CAP_VPID			(1ULL << 1)
#define RVMX_CAP_UNRESTRICTED_GUEST	(1ULL << 2)
#define RVMX_CAP_PREEMPTION_TIMER	(1ULL << 3)
#define RVMX_CAP_VIRTUAL_NMI		(1ULL << 4)
#define RVMX_CAP_EPT_AD			(1ULL << 5)
#define RVMX_CAP_EPT_2M			(1ULL << 6)
#define RVMX_CAP_EPT_1G			(1ULL << 7)
#define RVMX_CAP_EPT_EXEC_ONLY		(1ULL << 8)
#define RVMX_CAP_INVVPID		(1ULL << 9)
#define RVMX_CAP_PML			(1ULL << 10)
#define RVMX_CAP_MTF			(1ULL << 11)	/* RVMX_VCPU_CAP_MTF works */
#define RVMX_CAP_PAUSE_EXIT		(1ULL << 12)	/* RVMX_VCPU_CAP_PAUSE_EXIT works */
#define RVMX_CAP_XSAVE			(1ULL << 13)	/* guests may use XSAVE */

#define RVMX_GET_CAPS		_IOR(RVMX_IOC, 0x01, struct rvmx_caps)

/* Which CPUs are online and which are in VMX operation right now (read
 * from CR4.VMXE on each CPU). Bit n is CPU n; CPUs >= 64 are not shown. */
struct rvmx_cpu_status {
	__u64 online;
	__u64 vmx_on;
	__u32 nr_cpu_ids;
	__u32 reserved;
};

#define RVMX_GET_CPU_STATUS	_IOR(RVMX_IOC, 0x02, struct rvmx_cpu_status)

/*
 * The MSRs to save and restore a vCPU (RVMX_GET_MSRS/RVMX_SET_MSRS):
 * rvmx writes up to `nmsrs` indices at `indices` (a user pointer to
 * __u32s) and sets `nmsrs` to how many there are (-E2BIG if that is more
 * than were asked for).
 */
struct rvmx_msr_list {
	__u32 nmsrs;
	__u32 reserved;			/* zero */
	__u64 indices;
};

#define RVMX_GET_MSR_LIST	_IOWR(RVMX_IOC, 0x04, struct rvmx_msr_list)

/*
 * CPUID tables (KVM_SET_CPUID2's shape). A leaf's entry answers every
 * subleaf unless RVMX_CPUID_SUBLEAF_SIGNIFICANT is set. `entries` is a
 * user pointer to `nent` entries; GET ioctls write up to `nent` and set
 * `nent` to the table's size (-E2BIG if more than were asked for).
 */
#define RVMX_CPUID_SUBLEAF_SIGNIFICANT	(1 << 0)
#define RVMX_MAX_CPUID_ENTRIES		128

struct rvmx_cpuid_entry {
	__u32 function;			/* leaf (EAX) */
	__u32 index;			/* subleaf (ECX) */
	__u32 flags;			/* RVMX_CPUID_* */
	__u32 eax, ebx, ecx, edx;
	__u32 reserved;			/* zero */
};

struct rvmx_cpuid {
	__u32 nent;
	__u32 reserved;			/* zero */
	__u64 entries;			/* struct rvmx_cpuid_entry[nent] */
};

/* Everything a guest may be shown: what RVMX_SET_CPUID accepts. */
#define RVMX_GET_SUPPORTED_CPUID	_IOWR(RVMX_IOC, 0x05, struct rvmx_cpuid)

/* Creates a VM; returns its fd. The argument must be 0. */
#define RVMX_CREATE_VM		_IO(RVMX_IOC, 0x03)

/* ---- VM fd ---- */

/*
 * Guest memory: `memory_size` bytes of the caller's memory at
 * `userspace_addr` appear at guest-physical `guest_phys_addr`. All three
 * are 4-KiB aligned; regions may not overlap. Size 0 deletes the slot; a
 * new region in a used slot replaces it. rvmx pins pages as the guest first
 * touches them and unpins them when the region or the VM goes; the memory
 * must stay mapped in the caller (the VM's creator) meanwhile.
 */
#define RVMX_MEM_READONLY	(1 << 0)	/* guest writes exit as MMIO (ROM, flash) */

struct rvmx_memory_region {
	__u32 slot;			/* < rvmx_caps.max_mem_slots */
	__u32 flags;			/* RVMX_MEM_* */
	__u64 guest_phys_addr;
	__u64 memory_size;
	__u64 userspace_addr;
	__u64 reserved[2];		/* zero */
};

#define RVMX_SET_MEMORY_REGION	_IOW(RVMX_IOC, 0x10, struct rvmx_memory_region)

/*
 * MSRs whose guest RDMSR/WRMSR exit to userland (RVMX_EXIT_MSR) instead of
 * being emulated by rvmx (KVM's user-space MSR filter). Replaces the VM's
 * filter; nranges 0 removes it. Each range is `count` MSRs from `base`.
 */
#define RVMX_MSR_FILTER_READ	(1 << 0)
#define RVMX_MSR_FILTER_WRITE	(1 << 1)
#define RVMX_MSR_FILTER_MAX_RANGES 16

struct rvmx_msr_filter_range {
	__u32 base;
	__u32 count;			/* > 0 */
	__u32 flags;			/* RVMX_MSR_FILTER_* (at least one) */
	__u32 reserved;			/* zero */
};

struct rvmx_msr_filter {
	__u32 nranges;			/* <= RVMX_MSR_FILTER_MAX_RANGES */
	__u32 reserved;			/* zero */
	struct rvmx_msr_filter_range ranges[RVMX_MSR_FILTER_MAX_RANGES];
};

#define RVMX_SET_MSR_FILTER	_IOW(RVMX_IOC, 0x12, struct rvmx_msr_filter)

/* Creates vCPU `id` (the argument, < rvmx_caps.max_vcpus); returns its fd. */
#define RVMX_CREATE_VCPU	_IO(RVMX_IOC, 0x11)

/* ---- vCPU fd ---- */

/* General registers, RIP and RFLAGS. */
struct rvmx_regs {
	__u64 rax, rbx, rcx, rdx, rsi, rdi, rsp, rbp;
	__u64 r8, r9, r10, r11, r12, r13, r14, r15;
	__u64 rip, rflags;
};

/*
 * A segment register with its hidden part. `ar` is in the VMCS
 * access-rights format (SDM Vol. 3C 25.4.1, Table 25-2): type 3:0, S 4,
 * DPL 6:5, P 7, AVL 12, L 13, D/B 14, G 15, unusable 16.
 */
struct rvmx_segment {
	__u64 base;
	__u32 limit;
	__u16 selector;
	__u16 reserved;			/* zero */
	__u32 ar;
	__u32 reserved2;		/* zero */
};

struct rvmx_dtable {
	__u64 base;
	__u32 limit;
	__u32 reserved;			/* zero */
};

/* Segment, descriptor-table and control registers, as the guest sees them. */
struct rvmx_sregs {
	struct rvmx_segment cs, ds, es, fs, gs, ss, tr, ldtr;
	struct rvmx_dtable gdt, idt;
	__u64 cr0, cr2, cr3, cr4, cr8;
	__u64 efer;
	__u64 reserved[4];		/* zero */
};

/* Debug registers; DR7 is also the guest's (loaded at entry). */
struct rvmx_debugregs {
	__u64 db[4];
	__u64 dr6;
	__u64 dr7;
	__u64 debugctl;			/* IA32_DEBUGCTL */
	__u64 reserved[5];		/* zero */
};

/*
 * Events (KVM's vcpu events): an exception, NMI or external interrupt
 * waiting to be delivered at the next entry, and the guest's blocking
 * state. RVMX_INJECT queues one event; GET/SET_EVENTS save and restore
 * them all.
 */
#define RVMX_EVENT_EXCEPTION	1
#define RVMX_EVENT_NMI		2
#define RVMX_EVENT_INTERRUPT	3

struct rvmx_event {
	__u8 kind;			/* RVMX_EVENT_* */
	__u8 vector;			/* exception or interrupt vector */
	__u8 has_error_code;		/* exceptions with an error code */
	__u8 has_payload;		/* #PF: CR2; #DB: DR6 bits (B0-B3, BD, BS) */
	__u32 error_code;
	__u64 payload;
	__u64 reserved;			/* zero */
};

#define RVMX_INJECT		_IOW(RVMX_IOC, 0x30, struct rvmx_event)

/* Interruptibility: the VMCS format (SDM Vol. 3C 25.4.2, Table 25-3). */
#define RVMX_BLOCKING_STI	(1 << 0)
#define RVMX_BLOCKING_MOV_SS	(1 << 1)
#define RVMX_BLOCKING_NMI	(1 << 3)

struct rvmx_events {
	struct rvmx_event exception;	/* kind 0: none pending */
	struct rvmx_event nmi;		/* kind 0: none pending */
	struct rvmx_event interrupt;	/* kind 0: none pending */
	__u32 interruptibility;		/* RVMX_BLOCKING_* */
	__u32 reserved[7];		/* zero */
};

#define RVMX_GET_EVENTS		_IOR(RVMX_IOC, 0x31, struct rvmx_events)
#define RVMX_SET_EVENTS		_IOW(RVMX_IOC, 0x32, struct rvmx_events)
#define RVMX_GET_DEBUGREGS	_IOR(RVMX_IOC, 0x33, struct rvmx_debugregs)
#define RVMX_SET_DEBUGREGS	_IOW(RVMX_IOC, 0x34, struct rvmx_debugregs)

/* Per-vCPU capabilities (bhyve's getcap/setcap). */
#define RVMX_VCPU_CAP_HLT_EXIT		0	/* HLT exits to userland (default on) */
#define RVMX_VCPU_CAP_MTF		1	/* exit to userland after each instruction */
#define RVMX_VCPU_CAP_PAUSE_EXIT	2	/* PAUSE exits to userland */

struct rvmx_vcpu_cap {
	__u32 cap;			/* RVMX_VCPU_CAP_* */
	__u32 value;			/* 0 or 1 */
};

/* -EINVAL for an unknown cap, -EOPNOTSUPP if the CPU lacks it. */
#define RVMX_GET_CAP		_IOWR(RVMX_IOC, 0x35, struct rvmx_vcpu_cap)
#define RVMX_SET_CAP		_IOW(RVMX_IOC, 0x36, struct rvmx_vcpu_cap)

/*
 * MSRs of a vCPU: `nmsrs` (<= RVMX_MAX_MSRS) entries at `entries` (a user
 * pointer). GET fills `data`; SET writes each. Both return how many
 * entries were done: they stop at an MSR rvmx does not have or a value it
 * refuses (as the guest's WRMSR would #GP).
 */
#define RVMX_MAX_MSRS		256

struct rvmx_msr_entry {
	__u32 index;
	__u32 reserved;			/* zero */
	__u64 data;
};

struct rvmx_msrs {
	__u32 nmsrs;
	__u32 reserved;			/* zero */
	__u64 entries;			/* struct rvmx_msr_entry[nmsrs] */
};

/*
 * The vCPU's CPUID table (a new vCPU has rvmx's default: the host's
 * values less what rvmx does not virtualize). SET: -EINVAL for a table
 * that offers a feature RVMX_GET_SUPPORTED_CPUID does not.
 */
#define RVMX_GET_CPUID		_IOWR(RVMX_IOC, 0x39, struct rvmx_cpuid)
#define RVMX_SET_CPUID		_IOW(RVMX_IOC, 0x3a, struct rvmx_cpuid)

/*
 * A guest-linear address through the guest's page tables as they are now
 * (for debuggers). valid 0: the access would page-fault (error_code) or
 * the address is not canonical (error_code 0).
 */
struct rvmx_translation {
	__u64 linear_address;		/* in */
	__u64 physical_address;		/* out */
	__u64 page_size;		/* out: 4 KiB, 2 MiB, 4 MiB or 1 GiB */
	__u8 valid;			/* out: a supervisor read works */
	__u8 writeable;			/* out: a supervisor write works */
	__u8 usermode;			/* out: a user (CPL 3) read works */
	__u8 reserved;			/* zero */
	__u32 error_code;		/* out: #PF error code of the read */
};

#define RVMX_TRANSLATE		_IOWR(RVMX_IOC, 0x3b, struct rvmx_translation)

/*
 * The guest's FPU/SSE/AVX state in the standard XSAVE format (SDM Vol. 1
 * 13.4; KVM_GET_XSAVE's 4 KiB) at `buffer` (a user pointer), and its XCR0.
 * SET: -EINVAL for components or an XCR0 the guest's CPUID does not offer.
 */
#define RVMX_XSAVE_SIZE		4096

struct rvmx_xsave {
	__u64 xcr0;
	__u64 buffer;			/* RVMX_XSAVE_SIZE bytes */
	__u64 reserved[2];		/* zero */
};

#define RVMX_GET_XSAVE		_IOWR(RVMX_IOC, 0x3c, struct rvmx_xsave)
#define RVMX_SET_XSAVE		_IOW(RVMX_IOC, 0x3d, struct rvmx_xsave)

#define RVMX_GET_MSRS		_IOW(RVMX_IOC, 0x37, struct rvmx_msrs)
#define RVMX_SET_MSRS		_IOW(RVMX_IOC, 0x38, struct rvmx_msrs)

#define RVMX_RUN		_IO(RVMX_IOC, 0x20)
#define RVMX_GET_REGS		_IOR(RVMX_IOC, 0x21, struct rvmx_regs)
#define RVMX_SET_REGS		_IOW(RVMX_IOC, 0x22, struct rvmx_regs)
#define RVMX_GET_SREGS		_IOR(RVMX_IOC, 0x23, struct rvmx_sregs)
#define RVMX_SET_SREGS		_IOW(RVMX_IOC, 0x24, struct rvmx_sregs)

/*
 * While one ioctl runs on a vCPU (RVMX_RUN: for as long as the guest runs),
 * every other ioctl on that vCPU fails with EBUSY at once.
 *
 * The exit record: mmap the vCPU fd (one page, offset 0) to get a
 * struct rvmx_run shared with rvmx. After RVMX_RUN returns 0, exit_reason
 * says why the guest stopped and the matching member of the union says
 * the rest.
 */
enum rvmx_exit_reason {
	RVMX_EXIT_NONE = 0,
	RVMX_EXIT_IO = 1,		/* IN/OUT: io */
	RVMX_EXIT_HLT = 2,		/* HLT (RIP is past it) */
	RVMX_EXIT_MMIO = 3,		/* access outside all memory regions: mmio */
	RVMX_EXIT_SHUTDOWN = 4,		/* triple fault */
	RVMX_EXIT_FAIL_ENTRY = 5,	/* VM entry failed: fail_entry */
	RVMX_EXIT_VMX = 6,		/* an exit rvmx does not handle (yet): vmx */
	RVMX_EXIT_IRQ_WINDOW = 7,	/* the guest can take an interrupt now */
	RVMX_EXIT_MTF = 8,		/* one instruction done (RVMX_VCPU_CAP_MTF) */
	RVMX_EXIT_PAUSE = 9,		/* PAUSE (RVMX_VCPU_CAP_PAUSE_EXIT; RIP past it) */
	RVMX_EXIT_MSR = 10,		/* RDMSR/WRMSR userland asked to see: msr */
};

#define RVMX_IO_IN	0
#define RVMX_IO_OUT	1

#define RVMX_MMIO_READ	(1 << 0)
#define RVMX_MMIO_WRITE	(1 << 1)
#define RVMX_MMIO_FETCH	(1 << 2)

/*
 * IN/OUT and their string forms: `count` elements of `size` bytes, at
 * `data_offset` bytes from the start of struct rvmx_run, in the order the
 * CPU moves them (for IN/OUT, count is 1 and data_offset points at `data`).
 * OUT: the elements hold what the guest wrote. IN: userland fills them and
 * rvmx completes the instruction on the next RVMX_RUN.
 */
struct rvmx_exit_io {
	__u8 direction;		/* RVMX_IO_IN / RVMX_IO_OUT */
	__u8 size;		/* 1, 2 or 4 */
	__u16 port;
	__u32 count;
	__u64 data;
	__u32 data_offset;
	__u32 reserved;
};

/* Where string I/O elements go in the shared page. */
#define RVMX_RUN_DATA_OFFSET	512
#define RVMX_RUN_DATA_SIZE	3584

/*
 * An access outside every memory region, or a write to a read-only one.
 * rvmx decodes the instruction: `size` bytes at `gpa`; a write carries
 * `data`; for a read userland puts the value in `data` and rvmx completes
 * the instruction on the next RVMX_RUN. size 0: rvmx could not decode the
 * instruction: RIP is at it, its first `insn_len` bytes are in `insn`.
 */
struct rvmx_exit_mmio {
	__u64 gpa;
	__u64 qualification;	/* raw EPT-violation qualification */
	__u32 access;		/* RVMX_MMIO_* */
	__u32 size;		/* 1 to 8 (a page-crossing access is split:
				 * e.g. 2 then 6); 0: not decoded */
	__u64 data;
	__u8 insn_len;
	__u8 reserved[7];
	__u8 insn[16];
};

#define RVMX_MSR_READ	0
#define RVMX_MSR_WRITE	1

/* RDMSR/WRMSR of an MSR userland filters: a write carries `data`; for a
 * read userland sets `data`; `error` = 1 makes the instruction raise #GP.
 * Completed on the next RVMX_RUN. */
struct rvmx_exit_msr {
	__u8 error;
	__u8 reserved[3];
	__u32 direction;	/* RVMX_MSR_READ / RVMX_MSR_WRITE */
	__u32 index;
	__u32 reserved2;
	__u64 data;
};

/*
 * VM-entry failure. vm_instruction_error is nonzero when VMLAUNCH/VMRESUME
 * failed as an instruction (SDM Vol. 3C 31.4, e.g. 7 = invalid control
 * field); otherwise reason and qualification are the exit reason (bit 31
 * set: 33 = invalid guest state, 34 = MSR loading, 41 = machine check) and
 * its exit qualification.
 */
struct rvmx_exit_fail_entry {
	__u32 reason;
	__u32 vm_instruction_error;
	__u64 qualification;
	/* Which field broke which rule (SDM section), or what the
	 * VM-instruction error means; NUL-terminated. */
	char account[240];
};

/* Raw VMX exit information (SDM Vol. 3C 28.2). */
struct rvmx_exit_vmx {
	__u32 reason;
	__u32 instruction_length;
	__u64 qualification;
	__u64 guest_physical_address;
	__u64 guest_linear_address;
	__u32 intr_info;
	__u32 instruction_info;
};

struct rvmx_run {
	__u32 exit_reason;		/* enum rvmx_exit_reason */
	/* Set by userland: RVMX_RUN completes a pending IN, then returns
	 * -EINTR without entering the guest (closes the race between a
	 * signal and RVMX_RUN, like KVM's immediate_exit). */
	__u8 immediate_exit;
	/* Set by userland: exit (RVMX_EXIT_IRQ_WINDOW) as soon as the guest
	 * can take an external interrupt. */
	__u8 request_interrupt_window;
	/* Set by rvmx on every exit: an interrupt injected now (RVMX_INJECT)
	 * would be delivered at the next entry; and the guest's RFLAGS.IF. */
	__u8 ready_for_interrupt_injection;
	__u8 if_flag;
	union {
		struct rvmx_exit_io io;
		struct rvmx_exit_mmio mmio;
		struct rvmx_exit_msr msr;
		struct rvmx_exit_fail_entry fail_entry;
		struct rvmx_exit_vmx vmx;
		__u64 padding[32];
	};
};

#endif /* _UAPI_RVMX_H */
