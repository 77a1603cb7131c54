/* clone_probe.S: the raw clone of scenario clone_twice, with every
 * register the caller does not need filled with seed values, so both the
 * parent's and the child's view of the registers after the svc can be
 * compared with what went in. */
#include "uapi/syscall.h"

/* Store x0..x30, NZCV and sp to the 34-word array at \base (the layout of
 * U_REGS_OUT in ulib.h, without word 33). Clobbers x1 after storing it. */
.macro store_all base
    .irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30
    str     x\n, [\base, #(8 * \n)]
    .endr
    mrs     x1, nzcv
    str     x1, [\base, #248]
    mov     x1, sp
    str     x1, [\base, #256]
.endm

.section .text.user

/* long ct_clone_probe(void *stack, const u64 in[32], u64 out_parent[34],
 *                     u64 out_child[34], long (*fn)(u64 arg, u64 *regs),
 *                     u64 arg)
 * At the svc: x0 = stack, x2..x5 = the arguments above, x8 = SYS_CLONE,
 * x1, x6, x7, x9..x30 and NZCV = in[...]. After it, the parent (the task
 * whose sp is the one saved in out_parent[33]) stores its
 * registers to out_parent and returns x0 (the child's pid or -errno);
 * the child stores its registers to out_child, calls fn(arg, out_child)
 * on its new stack and exits. Word 33 of both arrays = the parent's sp. */
.globl ct_clone_probe
.type ct_clone_probe, %function
ct_clone_probe:
    stp     x29, x30, [sp, #-96]!
    mov     x29, sp
    stp     x19, x20, [sp, #16]
    stp     x21, x22, [sp, #32]
    stp     x23, x24, [sp, #48]
    stp     x25, x26, [sp, #64]
    stp     x27, x28, [sp, #80]
    mov     x9, sp
    str     x9, [x2, #264]
    str     x9, [x3, #264]
    ldr     x9, [x1, #248]
    msr     nzcv, x9
    ldp     x6, x7, [x1, #48]
    .irp n, 9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30
    ldr     x\n, [x1, #(8 * \n)]
    .endr
    ldr     x1, [x1, #8]            /* last: x1 was the base */
    mov     x8, #SYS_CLONE
    svc     #0
    /* Parent or child? Decide by sp, not by x0, so that a kernel that
     * gets x0 wrong still sends each task down its own path: only the
     * parent is back on the frame whose sp it saved in out_parent[33].
     * x0 and NZCV are parked below sp and put back before the dump. */
    str     x0, [sp, #-16]!
    mrs     x0, nzcv
    str     x0, [sp, #8]
    ldr     x0, [x2, #264]
    sub     x0, x0, #16
    cmp     sp, x0
    ldr     x0, [sp, #8]            /* ldr/msr leave the cmp's flags for b.ne */
    b.ne    1f
    msr     nzcv, x0
    ldr     x0, [sp], #16
    store_all x2                    /* parent */
    ldr     x0, [x2]
    ldp     x19, x20, [sp, #16]
    ldp     x21, x22, [sp, #32]
    ldp     x23, x24, [sp, #48]
    ldp     x25, x26, [sp, #64]
    ldp     x27, x28, [sp, #80]
    ldp     x29, x30, [sp], #96
    ret
1:  msr     nzcv, x0
    ldr     x0, [sp], #16
    store_all x3                    /* child, on its new stack */
    mov     x0, x5
    mov     x1, x3
    mov     x29, #0
    mov     x30, #0
    blr     x4
    b       u_exit
.size ct_clone_probe, . - ct_clone_probe
