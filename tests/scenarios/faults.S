/* faults.S: one EL0 fault per function, for scenario el0_faults. Each
 * function's faulting instruction carries a global label ef_pc_<kind>, so
 * the scenario can print its address (the judge compares it with the
 * fault's ELR). If the kernel does not kill the task, each function
 * returns normally. */

.section .text.user

/* A system-register read: sctlr_el1 is not accessible at EL0. */
.globl ef_sysreg, ef_pc_sysreg
ef_sysreg:
ef_pc_sysreg:
    mrs     x0, sctlr_el1
    ret

/* Masking IRQs from EL0 (trapped while SCTLR_EL1.UMA is 0). */
.globl ef_daif, ef_pc_daif
ef_daif:
ef_pc_daif:
    msr     daifset, #2
    msr     daifclr, #2
    ret

/* A permanently undefined instruction. */
.globl ef_udf, ef_pc_udf
ef_udf:
ef_pc_udf:
    udf     #0
    ret

/* A breakpoint instruction. */
.globl ef_brk, ef_pc_brk
ef_brk:
ef_pc_brk:
    brk     #0x2a
    ret

/* An 8-byte load from x0, which the caller makes misaligned. */
.globl ef_load, ef_pc_load
ef_load:
ef_pc_load:
    ldr     x0, [x0]
    ret

/* A load through an sp that is 8 but not 16-byte aligned. */
.globl ef_sp, ef_pc_sp
ef_sp:
    mov     x9, sp
    sub     x10, x9, #8
    mov     sp, x10
ef_pc_sp:
    ldr     x0, [sp]
    mov     sp, x9
    ret

/* A branch to x0, which the caller makes misaligned (ef_pc_target + 2). */
.globl ef_pc, ef_pc_branch, ef_pc_target
ef_pc:
ef_pc_branch:
    br      x0
ef_pc_target:
    ret
