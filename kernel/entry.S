/* entry.S: the exception vector table, saving and restoring the whole user
 * context, the first return of a new task, and the context switch.
 * Decisions are made in C (trap.c, irq.c); this file only moves registers. */
#include "asm-offsets.h"

/* kernel_entry: push x0-x30, sp, elr_el1 and spsr_el1 as a struct pt_regs. */
.macro kernel_entry el
    sub     sp, sp, #S_FRAME_SIZE
    stp     x0, x1, [sp, #16 * 0]
    stp     x2, x3, [sp, #16 * 1]
    stp     x4, x5, [sp, #16 * 2]
    stp     x6, x7, [sp, #16 * 3]
    stp     x8, x9, [sp, #16 * 4]
    stp     x10, x11, [sp, #16 * 5]
    stp     x12, x13, [sp, #16 * 6]
    stp     x14, x15, [sp, #16 * 7]
    stp     x16, x17, [sp, #16 * 8]
    stp     x18, x19, [sp, #16 * 9]
    stp     x20, x21, [sp, #16 * 10]
    stp     x22, x23, [sp, #16 * 11]
    stp     x24, x25, [sp, #16 * 12]
    stp     x26, x27, [sp, #16 * 13]
    stp     x28, x29, [sp, #16 * 14]
    .if \el == 0
    mrs     x21, sp_el0
    .else
    add     x21, sp, #S_FRAME_SIZE
    .endif
    mrs     x22, elr_el1
    mrs     x23, spsr_el1
    stp     x30, x21, [sp, #S_X30]
    stp     x22, x23, [sp, #S_PC]
.endm

/* kernel_exit: restore the frame kernel_entry pushed and return. */
.macro kernel_exit el
    ldp     x22, x23, [sp, #S_PC]
    ldp     x30, x21, [sp, #S_X30]
    .if \el == 0
    msr     sp_el0, x21
    .endif
    msr     elr_el1, x22
    msr     spsr_el1, x23
    ldp     x0, x1, [sp, #16 * 0]
    ldp     x2, x3, [sp, #16 * 1]
    ldp     x4, x5, [sp, #16 * 2]
    ldp     x6, x7, [sp, #16 * 3]
    ldp     x8, x9, [sp, #16 * 4]
    ldp     x10, x11, [sp, #16 * 5]
    ldp     x12, x13, [sp, #16 * 6]
    ldp     x14, x15, [sp, #16 * 7]
    ldp     x16, x17, [sp, #16 * 8]
    ldp     x18, x19, [sp, #16 * 9]
    ldp     x20, x21, [sp, #16 * 10]
    ldp     x22, x23, [sp, #16 * 11]
    ldp     x24, x25, [sp, #16 * 12]
    ldp     x26, x27, [sp, #16 * 13]
    ldp     x28, x29, [sp, #16 * 14]
    add     sp, sp, #S_FRAME_SIZE
    eret
.endm

/* invalid_entry: any vector no handler expects ends in one panic. */
.macro invalid_entry vec
    kernel_entry 1
    mov     x0, #\vec
    mov     x1, sp
    b       bad_exception
.endm

.macro ventry label
    .balign 0x80
    b       \label
.endm

.section .text
.balign 0x800
.globl vectors
vectors:
    ventry  el1t_sync_invalid       /* EL1 with SP_EL0 */
    ventry  el1t_irq_invalid
    ventry  el1t_fiq_invalid
    ventry  el1t_error_invalid
    ventry  el1h_sync_invalid       /* EL1 with SP_EL1: the kernel itself */
    ventry  el1h_irq                /* the idle loop waits with IRQs on */
    ventry  el1h_fiq_invalid
    ventry  el1h_error_invalid
    ventry  el0_sync                /* EL0 AArch64: svc and faults */
    ventry  el0_irq                 /* EL0 AArch64: the timer preempts */
    ventry  el0_fiq_invalid
    ventry  el0_error_invalid
    ventry  el0_32_sync_invalid     /* EL0 AArch32: never used */
    ventry  el0_32_irq_invalid
    ventry  el0_32_fiq_invalid
    ventry  el0_32_error_invalid

/* Vector numbers match enum vector_id in trap.h. */
el1t_sync_invalid:      invalid_entry 0
el1t_irq_invalid:       invalid_entry 1
el1t_fiq_invalid:       invalid_entry 2
el1t_error_invalid:     invalid_entry 3
el1h_sync_invalid:      invalid_entry 4
el1h_fiq_invalid:       invalid_entry 6
el1h_error_invalid:     invalid_entry 7
el0_fiq_invalid:        invalid_entry 10
el0_error_invalid:      invalid_entry 11
el0_32_sync_invalid:    invalid_entry 12
el0_32_irq_invalid:     invalid_entry 13
el0_32_fiq_invalid:     invalid_entry 14
el0_32_error_invalid:   invalid_entry 15

el1h_irq:
    kernel_entry 1
    bl      handle_irq
    kernel_exit 1

el0_sync:
    kernel_entry 0
    mov     x0, sp
    bl      el0_sync_handler
    b       ret_to_user

el0_irq:
    kernel_entry 0
    bl      handle_irq
    b       ret_to_user

/* ret_to_user: back to EL0 with the frame at the top of the kernel stack. */
.globl ret_to_user
ret_to_user:
    kernel_exit 0

/* ret_from_fork: where a new task first runs (cpu_switch_to "returns" here).
 * x19 = kernel function to run first (0 for a clone), x20-x22 its arguments;
 * then the task leaves for EL0 through its pt_regs. */
.globl ret_from_fork
ret_from_fork:
    bl      schedule_tail
    cbz     x19, ret_to_user
    mov     x0, x20
    mov     x1, x21
    mov     x2, x22
    blr     x19
    b       ret_to_user

/* cpu_switch_to(prev, next): save prev's callee-saved registers, sp and
 * return address in prev->ctx, load next's, and return into next. */
.globl cpu_switch_to
cpu_switch_to:
    mov     x9, sp
    stp     x19, x20, [x0, #CTX_X19]
    stp     x21, x22, [x0, #CTX_X21]
    stp     x23, x24, [x0, #CTX_X23]
    stp     x25, x26, [x0, #CTX_X25]
    stp     x27, x28, [x0, #CTX_X27]
    stp     x29, x9, [x0, #CTX_FP]
    str     x30, [x0, #CTX_PC]
    ldp     x19, x20, [x1, #CTX_X19]
    ldp     x21, x22, [x1, #CTX_X21]
    ldp     x23, x24, [x1, #CTX_X23]
    ldp     x25, x26, [x1, #CTX_X25]
    ldp     x27, x28, [x1, #CTX_X27]
    ldp     x29, x9, [x1, #CTX_FP]
    ldr     x30, [x1, #CTX_PC]
    mov     sp, x9
    ret

/* irq_wait: with IRQs masked, sleep until one is pending, then take it. */
.globl irq_wait
irq_wait:
    wfi
    msr     daifclr, #2
    isb
    msr     daifset, #2
    ret
