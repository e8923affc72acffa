// SPDX-License-Identifier: LGPL-2.1 OR MIT
#include "rvmx.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

static int ret_errno(int r)
{
	return r < 0 ? -errno : r;
}

int rvmx_open(void)
{
	struct rvmx_version v;
	int fd = open("/dev/rvmx", O_RDWR | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (ioctl(fd, RVMX_GET_VERSION, &v) < 0) {
		int err = -errno;

		close(fd);
		return err;
	}
	if (v.api != RVMX_API_VERSION) {
		close(fd);
		return -EPROTO;
	}
	return fd;
}

int rvmx_get_caps(int sys_fd, struct rvmx_caps *caps)
{
	return ret_errno(ioctl(sys_fd, RVMX_GET_CAPS, caps));
}

int rvmx_create_vm(int sys_fd, struct rvmx_vm *vm)
{
	vm->fd = ioctl(sys_fd, RVMX_CREATE_VM, 0);
	return vm->fd < 0 ? -errno : 0;
}

int rvmx_set_memory(struct rvmx_vm *vm, uint32_t slot, uint64_t gpa, void *host, uint64_t size)
{
	struct rvmx_memory_region r = {
		.slot = slot,
		.guest_phys_addr = gpa,
		.memory_size = size,
		.userspace_addr = (uintptr_t)host,
	};

	return ret_errno(ioctl(vm->fd, RVMX_SET_MEMORY_REGION, &r));
}

int rvmx_create_vcpu(struct rvmx_vm *vm, uint32_t id, struct rvmx_vcpu *vcpu)
{
	vcpu->fd = ioctl(vm->fd, RVMX_CREATE_VCPU, id);
	if (vcpu->fd < 0)
		return -errno;
	vcpu->run = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu->fd, 0);
	if (vcpu->run == MAP_FAILED) {
		int err = -errno;

		close(vcpu->fd);
		return err;
	}
	return 0;
}

int rvmx_run(struct rvmx_vcpu *vcpu)
{
	return ret_errno(ioctl(vcpu->fd, RVMX_RUN, 0));
}

int rvmx_get_regs(struct rvmx_vcpu *vcpu, struct rvmx_regs *regs)
{
	return ret_errno(ioctl(vcpu->fd, RVMX_GET_REGS, regs));
}

int rvmx_set_regs(struct rvmx_vcpu *vcpu, const struct rvmx_regs *regs)
{
	return ret_errno(ioctl(vcpu->fd, RVMX_SET_REGS, regs));
}

int rvmx_get_sregs(struct rvmx_vcpu *vcpu, struct rvmx_sregs *sregs)
{
	return ret_errno(ioctl(vcpu->fd, RVMX_GET_SREGS, sregs));
}

int rvmx_set_sregs(struct rvmx_vcpu *vcpu, const struct rvmx_sregs *sregs)
{
	return ret_errno(ioctl(vcpu->fd, RVMX_SET_SREGS, sregs));
}

int rvmx_inject(struct rvmx_vcpu *vcpu, const struct rvmx_event *event)
{
	return ret_errno(ioctl(vcpu->fd, RVMX_INJECT, event));
}

int rvmx_get_events(struct rvmx_vcpu *vcpu, struct rvmx_events *events)
{
	return ret_errno(ioctl(vcpu->fd, RVMX_GET_EVENTS, events));
}

int rvmx_set_events(struct rvmx_vcpu *vcpu, const struct rvmx_events *events)
{
	return ret_errno(ioctl(vcpu->fd, RVMX_SET_EVENTS, events));
}

int rvmx_get_debugregs(struct rvmx_vcpu *vcpu, struct rvmx_debugregs *d)
{
	return ret_errno(ioctl(vcpu->fd, RVMX_GET_DEBUGREGS, d));
}

int rvmx_set_debugregs(struct rvmx_vcpu *vcpu, const struct rvmx_debugregs *d)
{
	return ret_errno(ioctl(vcpu->fd, RVMX_SET_DEBUGREGS, d));
}

int rvmx_get_cap(struct rvmx_vcpu *vcpu, uint32_t cap, uint32_t *value)
{
	struct rvmx_vcpu_cap c = { .cap = cap };
	int r = ret_errno(ioctl(vcpu->fd, RVMX_GET_CAP, &c));

	if (!r)
		*value = c.value;
	return r;
}

int rvmx_set_cap(struct rvmx_vcpu *vcpu, uint32_t cap, uint32_t value)
{
	struct rvmx_vcpu_cap c = { .cap = cap, .value = value };

	return ret_errno(ioctl(vcpu->fd, RVMX_SET_CAP, &c));
}

int rvmx_get_msrs(struct rvmx_vcpu *vcpu, struct rvmx_msr_entry *entries, uint32_t n)
{
	struct rvmx_msrs m = { .nmsrs = n, .entries = (uintptr_t)entries };

	return ret_errno(ioctl(vcpu->fd, RVMX_GET_MSRS, &m));
}

int rvmx_set_msrs(struct rvmx_vcpu *vcpu, const struct rvmx_msr_entry *entries, uint32_t n)
{
	struct rvmx_msrs m = { .nmsrs = n, .entries = (uintptr_t)entries };

	return ret_errno(ioctl(vcpu->fd, RVMX_SET_MSRS, &m));
}

int rvmx_get_msr(struct rvmx_vcpu *vcpu, uint32_t index, uint64_t *value)
{
	struct rvmx_msr_entry e = { .index = index };
	int r = rvmx_get_msrs(vcpu, &e, 1);

	if (r == 1)
		*value = e.data;
	return r < 0 ? r : r == 1 ? 0 : -EINVAL;
}

int rvmx_set_msr(struct rvmx_vcpu *vcpu, uint32_t index, uint64_t value)
{
	struct rvmx_msr_entry e = { .index = index, .data = value };
	int r = rvmx_set_msrs(vcpu, &e, 1);

	return r < 0 ? r : r == 1 ? 0 : -EINVAL;
}

int rvmx_get_msr_list(int sys_fd, uint32_t *indices, uint32_t *n)
{
	struct rvmx_msr_list l = { .nmsrs = *n, .indices = (uintptr_t)indices };
	int r = ret_errno(ioctl(sys_fd, RVMX_GET_MSR_LIST, &l));

	*n = l.nmsrs;
	return r;
}

int rvmx_set_msr_filter(struct rvmx_vm *vm, const struct rvmx_msr_filter *filter)
{
	return ret_errno(ioctl(vm->fd, RVMX_SET_MSR_FILTER, filter));
}

static int get_cpuid(int fd, unsigned long cmd, struct rvmx_cpuid_entry *entries, uint32_t *n)
{
	struct rvmx_cpuid c = { .nent = *n, .entries = (uintptr_t)entries };
	int r = ret_errno(ioctl(fd, cmd, &c));

	*n = c.nent;
	return r;
}

int rvmx_get_supported_cpuid(int sys_fd, struct rvmx_cpuid_entry *entries, uint32_t *n)
{
	return get_cpuid(sys_fd, RVMX_GET_SUPPORTED_CPUID, entries, n);
}

int rvmx_get_cpuid(struct rvmx_vcpu *vcpu, struct rvmx_cpuid_entry *entries, uint32_t *n)
{
	return get_cpuid(vcpu->fd, RVMX_GET_CPUID, entries, n);
}

int rvmx_set_cpuid(struct rvmx_vcpu *vcpu, const struct rvmx_cpuid_entry *entries, uint32_t n)
{
	struct rvmx_cpuid c = { .nent = n, .entries = (uintptr_t)entries };

	return ret_errno(ioctl(vcpu->fd, RVMX_SET_CPUID, &c));
}

void rvmx_vcpu_close(struct rvmx_vcpu *vcpu)
{
	if (vcpu->run && vcpu->run != MAP_FAILED)
		munmap(vcpu->run, 4096);
	if (vcpu->fd >= 0)
		close(vcpu->fd);
	vcpu->run = NULL;
	vcpu->fd = -1;
}

void rvmx_vm_close(struct rvmx_vm *vm)
{
	if (vm->fd >= 0)
		close(vm->fd);
	vm->fd = -1;
}

const char *rvmx_exit_name(uint32_t r)
{
	switch (r) {
	case RVMX_EXIT_NONE: return "none";
	case RVMX_EXIT_IO: return "io";
	case RVMX_EXIT_HLT: return "hlt";
	case RVMX_EXIT_MMIO: return "mmio";
	case RVMX_EXIT_SHUTDOWN: return "shutdown";
	case RVMX_EXIT_FAIL_ENTRY: return "fail_entry";
	case RVMX_EXIT_VMX: return "vmx";
	case RVMX_EXIT_IRQ_WINDOW: return "irq_window";
	case RVMX_EXIT_MTF: return "mtf";
	case RVMX_EXIT_PAUSE: return "pause";
	case RVMX_EXIT_MSR: return "msr";
	default: return "?";
	}
}
