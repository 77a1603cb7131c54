/* syscall.h: the kernel side of system calls. */
#ifndef SYSCALL_H
#define SYSCALL_H

#include "ptregs.h"

/* One handler type for every table entry: arguments come from the frame,
 * the result is returned (the dispatcher stores it in x0). */
typedef long (*syscall_fn)(struct pt_regs *regs);

/* syscall_dispatch: run the call named by w8 and set the frame's x0. */
void syscall_dispatch(struct pt_regs *regs);

#endif
