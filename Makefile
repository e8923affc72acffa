# SPDX-License-Identifier: GPL-2.0
# rvmx: `make` builds rvmx.ko against KDIR (a Rust-enabled kernel build tree).
# The emulated test host (no VMX needed on this machine) is driven by the
# targets below; see README.md.

KDIR ?= /lib/modules/$(shell uname -r)/build
LLVM ?= 1

all: module

module:
	$(MAKE) -C $(KDIR) M=$(CURDIR) LLVM=$(LLVM) modules

clean:
	$(MAKE) -C $(KDIR) M=$(CURDIR) LLVM=$(LLVM) clean
	rm -rf gen

# Install the toolchain, build the test kernel (cached), the module, the
# tests, and boot the emulated host. See tools/.
setup:
	tools/setup.sh
demo:
	tools/rvmx demo
check:
	tools/rvmx test
shell:
	tools/rvmx shell

.PHONY: all module clean setup demo check shell
