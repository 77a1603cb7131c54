/* regs_hold.S: the register holds of scenario regs_preserved (layout and
 * protocol: regs_hold.h). Four entry points, one per register set and side:
 *
 *   void rp_hold_a0(struct rp_pair *), rp_hold_a1: scratch x0 (the pair) and
 *       x1; x2..x30, NZCV and sp held;
 *   void rp_hold_b0(struct rp_pair *), rp_hold_b1: scratch x16 (the pair) and
 *       x17; x0..x15, x18..x30, NZCV and sp held.
 *
 * Together the two sets hold every general register. Inside the hold only
 * ldr/str/eor/add/sub/mov without flags and flag-reading branches are used,
 * so nothing but a kernel can change a held register or NZCV. On the way
 * out every register is stored to side.out (the scratch pair too, which the
 * judge ignores), then the C caller's callee-saved registers come back. */
#include "regs_hold.h"

.section .text.user

/* Compare one held register with its value in side.exp: differ -> 8f. */
.macro rp_check r, b, v, s
    ldr     \v, [\b, #(\s + RP_EXP + 8 * \r)]
    eor     \v, \v, x\r
    cbnz    \v, 8f
.endm

/* Compare one NZCV flag (condition cond true when it is set) with bit
 * `bit` of side.exp[31]: differ -> 8f. */
.macro rp_flag cond, bit, b, v, s
    b.\cond 11f
    ldr     \v, [\b, #(\s + RP_EXP + 248)]
    tbnz    \v, #\bit, 8f
    b       12f
11: ldr     \v, [\b, #(\s + RP_EXP + 248)]
    tbz     \v, #\bit, 8f
12:
.endm

.macro rp_hold name, p, b, v, held:vararg
.globl \name
.type \name, %function
\name:
    stp     x29, x30, [sp, #-96]!
    stp     x19, x20, [sp, #16]
    stp     x21, x22, [sp, #32]
    stp     x23, x24, [sp, #48]
    stp     x25, x26, [sp, #64]
    stp     x27, x28, [sp, #80]
    mov     \b, x0
    mov     \v, sp
    str     \v, [\b, #(RP_SIDE(\p) + RP_SPB)]
    ldr     \v, [\b, #(RP_SIDE(\p) + RP_EXP + 248)]
    msr     nzcv, \v
    .irp r, \held
    ldr     x\r, [\b, #(RP_SIDE(\p) + RP_EXP + 8 * \r)]
    .endr
1:  /* every held register, sp and NZCV as loaded? */
    .irp r, \held
    rp_check \r, \b, \v, RP_SIDE(\p)
    .endr
    ldr     \v, [\b, #(RP_SIDE(\p) + RP_SPB)]
    sub     \v, sp, \v
    cbnz    \v, 8f
    rp_flag mi, 31, \b, \v, RP_SIDE(\p)
    rp_flag eq, 30, \b, \v, RP_SIDE(\p)
    rp_flag cs, 29, \b, \v, RP_SIDE(\p)
    rp_flag vs, 28, \b, \v, RP_SIDE(\p)
    /* the wait's bound (loop turns), for kernels that never switch */
    ldr     \v, [\b, #(RP_SIDE(\p) + RP_BUDGET)]
    cbz     \v, 7f
    sub     \v, \v, #1
    str     \v, [\b, #(RP_SIDE(\p) + RP_BUDGET)]
    ldr     \v, [\b, #RP_TURN]
    .if \p
    tbz     \v, #0, 3f              /* not this side's turn */
    .else
    tbnz    \v, #0, 3f
    .endif
    ldr     \v, [\b, #(RP_SIDE(\p) + RP_SAW)]
    cbnz    \v, 6f                  /* stepped before: the partner stepped since */
    ldr     \v, [\b, #RP_TURN]
    sub     \v, \v, #RP_LIMIT
    tbz     \v, #63, 7f             /* turn >= RP_LIMIT: done */
    ldr     \v, [\b, #RP_TURN]
    add     \v, \v, #1
    str     \v, [\b, #RP_TURN]
    mov     \v, #1
    str     \v, [\b, #(RP_SIDE(\p) + RP_SAW)]
    b       1b
3:  sub     \v, \v, #RP_LIMIT        /* the turn read above: a second read could */
    tbz     \v, #63, 7f             /* see the partner's release and leave at 1 */
    b       1b
6:  mov     \v, #2
    str     \v, [\b, #(RP_SIDE(\p) + RP_SAW)]
    b       7f
8:  /* a register differs: leave as found, release the partner */
    ldr     \v, [\b, #RP_TURN]
    str     \v, [\b, #(RP_SIDE(\p) + RP_BROKE)]
    mov     \v, #RP_LIMIT
    str     \v, [\b, #RP_TURN]
7:  .irp r, \held
    str     x\r, [\b, #(RP_SIDE(\p) + RP_OUT + 8 * \r)]
    .endr
    mrs     \v, nzcv
    str     \v, [\b, #(RP_SIDE(\p) + RP_OUT + 248)]
    mov     \v, sp
    str     \v, [\b, #(RP_SIDE(\p) + RP_OUT + 256)]
    ldr     \v, [\b, #(RP_SIDE(\p) + RP_SPB)]
    str     \v, [\b, #(RP_SIDE(\p) + RP_OUT + 264)]
    ldp     x19, x20, [sp, #16]
    ldp     x21, x22, [sp, #32]
    ldp     x23, x24, [sp, #48]
    ldp     x25, x26, [sp, #64]
    ldp     x27, x28, [sp, #80]
    ldp     x29, x30, [sp], #96
    ret
.size \name, . - \name
.endm

#define HELD_A 2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30
#define HELD_B 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,18,19,20,21,22,23,24,25,26,27,28,29,30

rp_hold rp_hold_a0, 0, x0, x1, HELD_A
rp_hold rp_hold_a1, 1, x0, x1, HELD_A
rp_hold rp_hold_b0, 0, x16, x17, HELD_B
rp_hold rp_hold_b1, 1, x16, x17, HELD_B
