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

/* long u_clone_raw(void *stack): the bare syscall; returns twice */
.globl u_clone_raw
u_clone_raw:
    mov     w8, #SYS_CLONE
    svc     #0
    ret

/* long u_clone(long (*fn)(unsigned long), unsigned long arg, void *stack)
 * glibc-like wrapper: the parent gets the child's pid (or -errno); the
 * child runs fn(arg) on its new stack and then exits. */
.globl u_clone
u_clone:
    mov     x10, x0             /* fn: survives the syscall (x1-x30 preserved) */
    mov     x11, x1             /* arg */
    mov     x0, x2              /* the syscall takes only the stack */
    mov     w8, #SYS_CLONE
    svc     #0
    cbz     x0, 1f
    ret                         /* parent: pid or -errno */
1:  mov     x29, #0             /* child: a fresh frame chain on the new stack */
    mov     x30, #0
    mov     x0, x11
    blr     x10
    b       u_exit

/* void u_exit(void): never returns */
.globl u_exit
u_exit:
    mov     w8, #SYS_EXIT
    svc     #0
1:  b       1b                  /* unreachable if the kernel keeps its word */

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
