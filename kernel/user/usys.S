/* usys.S: EL0 system-call stubs and the user entry trampoline.
 * User code only: nothing here may call into the kernel except by svc. */
#include "uapi/syscall.h"

/* user_entry(main, seed): where the kernel starts a scenario's first task.
 * Calls main(seed); if main returns, the task exits. */
.section .text.user
.globl user_entry
user_entry:
    mov     x9, x0
    mov     x0, x1
    blr     x9
    b       u_exit

/* long u_write(const char *s) */
.globl u_write
u_write:
    mov     w8, #SYS_WRITE
    svc     #0
    ret

/* void *u_malloc(void): a zeroed page, or (void *)-1 when none is free */
.globl u_malloc
u_malloc:
    mov     w8, #SYS_MALLOC
    svc     #0
    ret

/* Call u_expect_child(x0 = stack) keeping x0..x2 and lr: the stubs below
 * announce their child first (a no-op in marker mode, see ulib.h). */
.macro expect_child stack
    stp     x0, x1, [sp, #-32]!
    stp     x2, x30, [sp, #16]
    mov     x0, \stack
    bl      u_expect_child
    ldp     x2, x30, [sp, #16]
    ldp     x0, x1, [sp], #32
.endm

/* long u_clone_raw(void *stack): the bare syscall; returns twice */
.globl u_clone_raw
u_clone_raw:
    expect_child x0
    mov     w8, #SYS_CLONE
    svc     #0
    cbz     x0, 1f              /* the child returns at once */
    stp     x0, x30, [sp, #-16]!
    bl      u_cloned            /* the parent reports the result first */
    ldp     x0, x30, [sp], #16
1:  ret

/* long u_clone(long (*fn)(unsigned long), unsigned long arg, void *stack)
 * glibc-like wrapper: the parent gets the child's pid (or -errno); the
 * child runs fn(arg) on its new stack and then exits. */
.globl u_clone
u_clone:
    expect_child x2
    mov     x10, x0             /* fn: survives the syscall (x1-x30 preserved) */
    mov     x11, x1             /* arg */
    mov     x0, x2              /* the syscall takes only the stack */
    mov     w8, #SYS_CLONE
    svc     #0
    cbz     x0, 1f
    stp     x0, x30, [sp, #-16]!
    bl      u_cloned            /* parent: report, then pid or -errno */
    ldp     x0, x30, [sp], #16
    ret
1:  mov     x29, #0             /* child: a fresh frame chain on the new stack */
    mov     x30, #0
    mov     x0, x11
    blr     x10
    b       u_exit

/* void u_exit(void): never returns */
.globl u_exit
u_exit:
    mov     x0, xzr
    mov     x1, xzr
    mov     x2, xzr
    /* fall through */

/* void u_exit_args(u64 a0, u64 a1, u64 a2): exit with x0..x2 as given.
 * EL0-marker mode reports the exit first; if the svc ever returns (a
 * broken kernel), u_after_exit reports that and spins forever. */
.globl u_exit_args
u_exit_args:
#ifdef KT_EL0
    mov     x19, x0             /* never returns: callee-saved regs are ours */
    mov     x20, x1
    mov     x21, x2
    bl      kt_before_exit
    mov     x0, x19
    mov     x1, x20
    mov     x2, x21
#endif
    mov     w8, #SYS_EXIT
    svc     #0
    b       u_after_exit        /* unreachable if the kernel keeps its word */

/* long u_syscall(unsigned long x8, unsigned long a0, unsigned long a1,
 *                unsigned long a2): any number, all 64 bits of x8 as given. */
.globl u_syscall
u_syscall:
    mov     x8, x0
    mov     x0, x1
    mov     x1, x2
    mov     x2, x3
    svc     #0
    ret
