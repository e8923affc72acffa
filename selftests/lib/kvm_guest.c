// SPDX-License-Identifier: GPL-2.0
#include "kvm_guest.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#define CHECK(c) do { if (!(c)) { ret = __LINE__; goto out; } } while (0)

int kvm_run_tiny_guest(void)
{
	static const unsigned char code[] = { 0xb0, 0x42, 0xe6, 0x10, 0xf4 };
	int kvm = -1, vm = -1, vcpu = -1, ret = 0;
	size_t mem_size = 0x10000, run_size;
	struct kvm_userspace_memory_region region;
	struct kvm_sregs sregs;
	struct kvm_regs regs;
	struct kvm_run *run = MAP_FAILED;
	void *mem;

	kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0)
		return -errno;
	mem = mmap(NULL, mem_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(mem != MAP_FAILED);
	memcpy((char *)mem + 0x1000, code, sizeof(code));
	vm = ioctl(kvm, KVM_CREATE_VM, 0);
	CHECK(vm >= 0);
	region = (struct kvm_userspace_memory_region){
		.slot = 0, .guest_phys_addr = 0, .memory_size = mem_size,
		.userspace_addr = (unsigned long)mem,
	};
	CHECK(ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) == 0);
	vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
	CHECK(vcpu >= 0);
	run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	run = mmap(NULL, run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
	CHECK(run != MAP_FAILED);
	CHECK(ioctl(vcpu, KVM_GET_SREGS, &sregs) == 0);
	sregs.cs.base = 0;
	sregs.cs.selector = 0;
	CHECK(ioctl(vcpu, KVM_SET_SREGS, &sregs) == 0);
	memset(&regs, 0, sizeof(regs));
	regs.rip = 0x1000;
	regs.rflags = 2;
	CHECK(ioctl(vcpu, KVM_SET_REGS, &regs) == 0);
	CHECK(ioctl(vcpu, KVM_RUN, 0) == 0);
	CHECK(run->exit_reason == KVM_EXIT_IO);
	CHECK(run->io.direction == KVM_EXIT_IO_OUT && run->io.port == 0x10 && run->io.size == 1);
	CHECK(*((unsigned char *)run + run->io.data_offset) == 0x42);
	CHECK(ioctl(vcpu, KVM_RUN, 0) == 0);
	CHECK(run->exit_reason == KVM_EXIT_HLT);
out:
	if (run != MAP_FAILED)
		munmap(run, run_size);
	if (vcpu >= 0)
		close(vcpu);
	if (vm >= 0)
		close(vm);
	close(kvm);
	return ret;
}
