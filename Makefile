# Raspberry Pi 3 teaching kernel and its conformance suite.
#
#   make               build/kernel8.img (demo) and build/kernel8-test.img (test mode)
#   make help          this list
#   make qemu          boot the demo in QEMU raspi3b on this terminal
#   make qemu-test     boot the test image on this terminal (type `list`, `run clone_twice 42`)
#   make check         the conformance suite against the bundled kernel
#   make check KERNEL=path/to/kernel8.img   ... against any image
#   make check BOOT=el3   ... started at EL3 (el2: QEMU -kernel; default auto, harness/boot.py)
#   make test          everything: harness self-tests, the suite, the broken-kernel proofs
#                      (minutes: a line names what is still running every 30 s of silence)
#   make bench         timing figures (not a test)
#   make gdb SCENARIO=name SEED=n [KERNEL=img | SUBMISSION=tree]   that run in QEMU, waiting for gdb-multiarch
#   make grade DIR=submissions OUT=results   grade a class (docs/grading.md; ROSTER=lms.csv:
#                      OUT/gradebook.csv for Canvas or Moodle; OUT/index.html: the class)
#   make selfcheck SUBMISSION=tree   the score the autograder will give a tree (docs/autograder.md)
#   make autograder    build/autograder.zip for Gradescope (docs/autograder.md)
#   make deps          check this Python has what the suite needs (every target above runs it)
#   make clean         remove build/
#
# Options: CONSOLE=mini|pl011 (default mini), PYTHON=/usr/bin/python3,
#          PYTEST_ARGS=... (extra pytest arguments), PYTEST_JOBS=-n 2 (xdist; empty: serial),
#          CROSS=aarch64-linux-gnu-, V=1 (show commands), HEARTBEAT=30 (seconds; 0: quiet)

CROSS   ?= aarch64-linux-gnu-
CC      := $(CROSS)gcc
LD      := $(CROSS)ld
OBJCOPY := $(CROSS)objcopy
NM      := $(CROSS)nm
QEMU    ?= qemu-system-aarch64
PYTHON  ?= /usr/bin/python3
CONSOLE ?= mini
B       := build
V       ?= 0
Q       := $(if $(filter 1,$(V)),,@)
say      = $(if $(Q),@printf '  %-8s %s\n' '$(1)' '$(2)';)

ifeq ($(filter $(CONSOLE),mini pl011),)
$(error CONSOLE must be 'mini' or 'pl011', not '$(CONSOLE)')
endif

ARCHFLAGS := -mcpu=cortex-a53 -mgeneral-regs-only -mstrict-align
CFLAGS := -std=gnu11 -O2 -g -Wall -Wextra -Werror -ffreestanding -fno-builtin \
          -nostdlib -fno-stack-protector -fno-pie -fno-pic -fno-common \
          -fno-tree-loop-distribute-patterns -fno-asynchronous-unwind-tables \
          $(ARCHFLAGS) -MMD -MP
KFLAGS := $(CFLAGS) -Ikernel/include -I$(B)/gen -DCONSOLE_NAME='"$(CONSOLE)"'
UFLAGS := $(CFLAGS) -Ikernel/include -Ikernel/user

# Kernel sources: every kernel/*.c and *.S, with exactly one console driver.
KSRC := $(filter-out kernel/uart_%.c kernel/asm-offsets.c,$(wildcard kernel/*.c)) \
        kernel/uart_$(CONSOLE).c $(wildcard kernel/*.S)
# EL0 sources: the user library and demo, and (test image only) the scenarios.
USRC := $(wildcard kernel/user/*.c kernel/user/*.S)
SSRC := $(wildcard tests/scenarios/*.c tests/scenarios/*.S)

kobj = $(patsubst kernel/%,$(B)/$(1)/%.o,$(KSRC))
DEMO_OBJ := $(call kobj,demo)
TEST_OBJ := $(call kobj,test)
USER_OBJ := $(patsubst kernel/user/%,$(B)/user/%.o,$(USRC))
SCEN_OBJ := $(patsubst tests/scenarios/%,$(B)/scenarios/%.o,$(SSRC))

IMAGES := $(B)/kernel8.img $(B)/kernel8-test.img
# binutils 2.39+ warns about the one RWX segment; 2.38 (Ubuntu 22.04) lacks the option.
LD_NORWX := $(shell $(LD) --help 2>/dev/null | grep -q -e --no-warn-rwx-segments && echo --no-warn-rwx-segments)

# The conformance programs as one relocatable object for kernels that emit
# no markers (docs/judging.md): the user library and every scenario, built
# with -DKT_EL0 (EL0 markers, kernel/user/kt/el0.c); only user_process global.
KT_SRC := $(filter-out kernel/user/demo.c,$(USRC)) kernel/user/kt/el0.c kernel/user/kt/tick.c $(SSRC)
KT_OBJ := $(patsubst %,$(B)/kt/%.o,$(KT_SRC))
KT_USER := $(B)/kt-user.o
# Their C never holds a value in x21..x23, the scratch registers of the
# lesson's kernel_exit: a kernel that forgets to reload one on the way back
# to EL0 (on any exception, a tick too) then garbles no program state, and
# the register probes (uregs.S) name the register (test_invalid_syscall.py).
KT_FIXED := -ffixed-x21 -ffixed-x22 -ffixed-x23

.PHONY: all help qemu qemu-test gdb check test bench grade selfcheck autograder deps clean FORCE
all: $(IMAGES) $(KT_USER)

# The header comment above, up to its first blank line, is the list of targets.
help:
	@sed -n '1,/^$$/s/^# \{0,1\}//p' $(firstword $(MAKEFILE_LIST))

# A stamp that changes when CONSOLE does, so a switch rebuilds everything.
$(B)/config: FORCE
	@mkdir -p $(B); tmp=$@.new.$$$$; echo "CONSOLE=$(CONSOLE)" > $$tmp; \
	 cmp -s $$tmp $@ && rm -f $$tmp || mv -f $$tmp $@

# Offsets shared by C and assembly, generated from the C structs.
$(B)/gen/asm-offsets.h: kernel/asm-offsets.c $(B)/config
	@mkdir -p $(dir $@)
	$(call say,GEN,$@)
	$(Q)$(CC) $(filter-out -MMD -MP,$(KFLAGS)) -S -o $@.s $<
	$(Q)sed -n 's/.*->\([A-Z_0-9]*\) [#$$]*\(-*[0-9][0-9]*\).*/#define \1 \2/p' $@.s > $@
	$(Q)rm -f $@.s

$(B)/demo/%.o: kernel/% $(B)/config $(B)/gen/asm-offsets.h
	@mkdir -p $(dir $@)
	$(call say,CC,$@)
	$(Q)$(CC) $(KFLAGS) -DKT_TEST=0 -c -o $@ $<
$(B)/test/%.o: kernel/% $(B)/config $(B)/gen/asm-offsets.h
	@mkdir -p $(dir $@)
	$(call say,CC,$@)
	$(Q)$(CC) $(KFLAGS) -DKT_TEST=1 -c -o $@ $<
$(B)/user/%.o: kernel/user/% $(B)/config
	@mkdir -p $(dir $@)
	$(call say,CC,$@)
	$(Q)$(CC) $(UFLAGS) -c -o $@ $<
$(B)/scenarios/%.o: tests/scenarios/% $(B)/config
	@mkdir -p $(dir $@)
	$(call say,CC,$@)
	$(Q)$(CC) $(UFLAGS) -c -o $@ $<

$(B)/kt/%.o: % $(B)/config Makefile
	@mkdir -p $(dir $@)
	$(call say,CC,$@)
	$(Q)$(CC) $(UFLAGS) $(KT_FIXED) -DKT_EL0=1 -c -o $@ $<

$(KT_USER): $(KT_OBJ) kernel/user/kt/kt-user.ld
	$(call say,LD,$@)
	$(Q)$(LD) -r -T kernel/user/kt/kt-user.ld -o $@ $(KT_OBJ)
	@undef=$$($(NM) -u $@); if [ -n "$$undef" ]; then \
	  echo "error: kt-user.o references symbols it does not define:" >&2; \
	  echo "$$undef" >&2; rm -f $@; exit 1; fi
	$(Q)$(OBJCOPY) --keep-global-symbol=user_process $@

# EL0 code is linked on its own first: it must not reference a single kernel
# symbol (it reaches the kernel by svc only), and only user_entry stays global.
define userland
	$(call say,LD,$@)
	$(Q)$(LD) -r -o $@ $^
	@undef=$$($(NM) -u $@); if [ -n "$$undef" ]; then \
	  echo "error: EL0 code references symbols it does not define (kernel functions or libc?):" >&2; \
	  echo "$$undef" >&2; rm -f $@; exit 1; fi
	$(Q)$(OBJCOPY) --keep-global-symbol=user_entry --keep-global-symbol=user_process $@
endef
$(B)/demo/userland.o: $(USER_OBJ)
	$(userland)
$(B)/test/userland.o: $(USER_OBJ) $(SCEN_OBJ)
	$(userland)

$(B)/kernel8.elf: $(DEMO_OBJ) $(B)/demo/userland.o kernel/linker.ld
	$(call say,LD,$@)
	$(Q)$(LD) -nostdlib $(LD_NORWX) -T kernel/linker.ld -o $@ $(DEMO_OBJ) $(B)/demo/userland.o
$(B)/kernel8-test.elf: $(TEST_OBJ) $(B)/test/userland.o kernel/linker.ld
	$(call say,LD,$@)
	$(Q)$(LD) -nostdlib $(LD_NORWX) -T kernel/linker.ld -o $@ $(TEST_OBJ) $(B)/test/userland.o
$(B)/%.img: $(B)/%.elf
	$(call say,OBJCOPY,$@)
	$(Q)$(OBJCOPY) -O binary $< $@

# QEMU on this terminal. Serial #1 is the PL011, #2 the mini UART.
SERIAL_mini  := -serial null -serial stdio
SERIAL_pl011 := -serial stdio
QEMU_RUN := $(QEMU) -M raspi3b -display none -monitor none -no-reboot \
            -semihosting-config enable=on,target=native $(SERIAL_$(CONSOLE))
qemu: $(B)/kernel8.img
	$(QEMU_RUN) -kernel $<
qemu-test: $(B)/kernel8-test.img
	$(QEMU_RUN) -kernel $<

# Debug one run (a report's "debug:" line): QEMU's gdb stub waits, gdb-multiarch
# starts on the ELF and stops at the entry (harness/gdb.py). GDB_ARGS=... more options.
gdb: $(if $(KERNEL),,all)
	@sh tools/ensure-deps.sh gdb
	@test -n "$(SCENARIO)" || { echo "usage: make gdb SCENARIO=name [SEED=n] [KERNEL=img | SUBMISSION=tree] [BOOT=el3] [ENTRY=sym]" >&2; exit 2; }
	$(PYTHON) -m harness gdb $(SCENARIO) $(if $(SEED),--seed $(SEED)) $(if $(KERNEL),--kernel $(abspath $(KERNEL))) \
	    $(if $(SUBMISSION),--submission $(abspath $(SUBMISSION))) $(if $(BOOT),--boot $(BOOT)) \
	    $(if $(ENTRY),--entry $(ENTRY)) $(GDB_ARGS)

# The Python side runs with Debian's interpreter and packages.
deps:
	@sh tools/ensure-deps.sh

# Two QEMUs at a time (the machine's cores), each scenario's tests on one
# worker so it boots once (tests/scenarios/conftest.py); JUnit XML for CI.
PYTEST_JOBS ?= -n 2 --dist loadgroup
KERNEL_ARG := $(if $(KERNEL),--kernel=$(abspath $(KERNEL))) $(if $(BOOT),--boot=$(BOOT))
# SUBMISSION=tree-or-image judges a kernel without markers from EL0 facts
# (docs/judging.md); RULES=lesson judges what the lesson teaches; ENTRY=sym
# names the user program when it is not user_process; RUN_TIMEOUT=s and
# STALL=s bound each run (also passed on by `make grade`).
RUN_ARGS := $(if $(RUN_TIMEOUT),--run-timeout=$(RUN_TIMEOUT)) $(if $(STALL),--stall=$(STALL))
SUBMISSION_ARG := $(if $(SUBMISSION),--submission=$(abspath $(SUBMISSION))) $(if $(RULES),--rules=$(RULES)) \
                  $(if $(ENTRY),--entry=$(ENTRY))
check: deps $(if $(KERNEL),,all)
	$(PYTHON) -m pytest tests/scenarios $(PYTEST_JOBS) $(KERNEL_ARG) $(SUBMISSION_ARG) $(RUN_ARGS) $(PYTEST_ARGS)
# The suite runs twice on the bundled kernel: as auto decides (EL2, QEMU's
# -kernel) with everything else, then once more entered at EL3 (its
# kernel_old=1 path, -device loader, cores 1-3 parked).
HEARTBEAT ?= 30
test: deps all
	@sh tools/ensure-deps.sh gdb   # the make gdb self-test runs too (tests/harness/test_harness_gdb.py)
	@echo "make test: [1/2] harness self-tests, the suite, the broken-kernel proofs, grading (minutes)"
	$(PYTHON) -m pytest tests $(PYTEST_JOBS) --heartbeat=$(HEARTBEAT) --junitxml=$(B)/junit.xml $(PYTEST_ARGS)
	@echo "make test: [2/2] the suite once more, the bundled kernel entered at EL3"
	$(PYTHON) -m pytest tests/scenarios $(PYTEST_JOBS) --heartbeat=$(HEARTBEAT) --boot=el3 --junitxml=$(B)/junit-el3.xml $(PYTEST_ARGS)
bench: deps all
	$(PYTHON) -u -m harness.bench

# Grade a class: make grade DIR=submissions OUT=results [GRADE_ARGS="--class-seed 7 -j 2"]
# [RULES=lesson] [ENTRY=sym] [RUN_TIMEOUT=s] [STALL=s]: passed on to every child pytest;
# [ROSTER=lms-export.csv] [ASSIGNMENT="Lab 5"]: OUT/gradebook.csv's rows and points column
grade: deps all
	@test -n "$(DIR)" -a -n "$(OUT)" || { echo "usage: make grade DIR=folder-of-submissions OUT=results-folder [GRADE_ARGS=...]" >&2; exit 2; }
	$(PYTHON) -m harness grade $(abspath $(DIR)) --out $(abspath $(OUT)) $(if $(RULES),--rules $(RULES)) \
	    $(if $(ENTRY),--entry $(ENTRY)) $(RUN_ARGS) $(if $(ROSTER),--roster $(abspath $(ROSTER))) \
	    $(if $(ASSIGNMENT),--assignment "$(ASSIGNMENT)") $(GRADE_ARGS)

# A student's check before handing in: the autograder's table and score.
selfcheck: deps all
	@test -n "$(SUBMISSION)" || { echo "usage: make selfcheck SUBMISSION=your-tree [RULES=lesson]" >&2; exit 2; }
	$(PYTHON) -m harness selfcheck $(abspath $(SUBMISSION)) $(if $(RULES),--rules $(RULES)) $(SELFCHECK_ARGS)

# The Gradescope bundle: make autograder [RULES=lesson] [VISIBILITY=after_published]
# [CLASS_SEED=N] (default: a random class seed, kept only inside the zip).
autograder:
	$(Q)KT_CLASS_SEED='$(CLASS_SEED)' $(PYTHON) -m harness.autograder bundle $(B)/autograder.zip \
	  $(if $(RULES),--rules $(RULES)) $(if $(VISIBILITY),--visibility $(VISIBILITY))

clean:
	rm -rf $(B)

-include $(shell find $(B) -name '*.d' 2>/dev/null)
