/* uregs.S: register-level probes for the conformance scenarios.
 * Both helpers load every general register and NZCV from an array, do one
 * thing (an svc, or a busy loop on x0), and store every register back, so a
 * judge can compare what the kernel was supposed to preserve. */

/* U_REGS_SKIPPED (0x6b74736b69707065, "ktskippe"): what out[0] holds when the
 * instruction after u_regs_svc's svc (the store of x0) never ran, i.e. the
 * kernel returned past it (test_invalid_syscall.py knows the value). */
#define U_REGS_SKIPPED_0  0x7065
#define U_REGS_SKIPPED_16 0x6970
#define U_REGS_SKIPPED_32 0x736b
#define U_REGS_SKIPPED_48 0x6b74

/* Frame: x29,x30 | x19..x28 | out pointer | x0 spill  (112 bytes) */
.macro regs_enter
    stp     x29, x30, [sp, #-112]!
    mov     x29, sp
    stp     x19, x20, [sp, #16]
    stp     x21, x22, [sp, #32]
    stp     x23, x24, [sp, #48]
    stp     x25, x26, [sp, #64]
    stp     x27, x28, [sp, #80]
    str     x1, [sp, #96]           /* out */
    movz    x2, #U_REGS_SKIPPED_0
    movk    x2, #U_REGS_SKIPPED_16, lsl #16
    movk    x2, #U_REGS_SKIPPED_32, lsl #32
    movk    x2, #U_REGS_SKIPPED_48, lsl #48
    str     x2, [sp, #104]          /* x0's spill: stays U_REGS_SKIPPED if the store after the svc is skipped */
    mov     x2, sp
    str     x2, [x1, #264]          /* out[33] = sp before */
    ldr     x2, [x0, #248]
    msr     nzcv, x2                /* in[31] = NZCV */
    ldp     x1, x2, [x0, #8]
    ldp     x3, x4, [x0, #24]
    ldp     x5, x6, [x0, #40]
    ldp     x7, x8, [x0, #56]
    ldp     x9, x10, [x0, #72]
    ldp     x11, x12, [x0, #88]
    ldp     x13, x14, [x0, #104]
    ldp     x15, x16, [x0, #120]
    ldp     x17, x18, [x0, #136]
    ldp     x19, x20, [x0, #152]
    ldp     x21, x22, [x0, #168]
    ldp     x23, x24, [x0, #184]
    ldp     x25, x26, [x0, #200]
    ldp     x27, x28, [x0, #216]
    ldp     x29, x30, [x0, #232]
    ldr     x0, [x0]                /* x0 last: it was the base */
.endm

/* Store x0..x30, NZCV, sp to out (found through sp, which must have
 * survived), then give the C caller its registers back. */
.macro regs_leave
    str     x0, [sp, #104]          /* spill x0 */
    ldr     x0, [sp, #96]           /* out */
    stp     x1, x2, [x0, #8]
    stp     x3, x4, [x0, #24]
    stp     x5, x6, [x0, #40]
    stp     x7, x8, [x0, #56]
    stp     x9, x10, [x0, #72]
    stp     x11, x12, [x0, #88]
    stp     x13, x14, [x0, #104]
    stp     x15, x16, [x0, #120]
    stp     x17, x18, [x0, #136]
    stp     x19, x20, [x0, #152]
    stp     x21, x22, [x0, #168]
    stp     x23, x24, [x0, #184]
    stp     x25, x26, [x0, #200]
    stp     x27, x28, [x0, #216]
    stp     x29, x30, [x0, #232]
    mrs     x1, nzcv                /* before anything that sets flags */
    str     x1, [x0, #248]
    mov     x1, sp
    str     x1, [x0, #256]          /* out[32] = sp after */
    ldr     x1, [sp, #104]
    str     x1, [x0]                /* out[0] = x0 */
    mov     x0, x1
    ldp     x19, x20, [sp, #16]
    ldp     x21, x22, [sp, #32]
    ldp     x23, x24, [sp, #48]
    ldp     x25, x26, [sp, #64]
    ldp     x27, x28, [sp, #80]
    ldp     x29, x30, [sp], #112
    ret
.endm

.section .text.user

/* long u_regs_svc(const u64 in[32], u64 out[34]): see ulib.h */
.globl u_regs_svc
.type u_regs_svc, %function
u_regs_svc:
    regs_enter
    svc     #0
    regs_leave
.size u_regs_svc, . - u_regs_svc

/* void u_regs_spin(const u64 in[32], u64 out[34]): see ulib.h */
.globl u_regs_spin
.type u_regs_spin, %function
u_regs_spin:
    regs_enter
1:  sub     x0, x0, #1              /* no flags, no other register */
    cbnz    x0, 1b
    regs_leave
.size u_regs_spin, . - u_regs_spin
