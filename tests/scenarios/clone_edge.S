/* clone_edge.S: the raw clone of scenario clone_errors made with a chosen
 * stack pointer, so the caller's sp can sit exactly on a page's edge: at
 * its top (the stack is in that page) or at its bottom (the stack is in
 * the page below). clone_errors is judged from markers only, so the child
 * is not announced to EL0-marker mode (u_expect_child). */
#include "uapi/syscall.h"

.section .text.user

/* long ce_clone_with_sp(u64 page, u64 sp)
 * clone(page) with sp = the given value at the svc. The parent gets its
 * own sp back and returns x0 (the child's pid or -errno). The child
 * (x0 == 0) exits at once without touching memory, so it never needs a
 * stack; if exit ever returns (a broken kernel), u_after_exit says so. */
.globl ce_clone_with_sp
.type ce_clone_with_sp, %function
ce_clone_with_sp:
    str     x19, [sp, #-16]!        /* x19 is the caller's: keep it */
    mov     x19, sp                 /* the real sp survives the svc in x19 */
    mov     sp, x1
    mov     w8, #SYS_CLONE
    svc     #0
    cbz     x0, 1f
    mov     sp, x19                 /* parent: back on its own stack */
    ldr     x19, [sp], #16
    ret
1:  mov     w8, #SYS_EXIT           /* child: no memory access before exit */
    svc     #0
    b       u_after_exit
.size ce_clone_with_sp, . - ce_clone_with_sp
