/* panic.h: the end of the run when the kernel cannot go on. */
#ifndef PANIC_H
#define PANIC_H

#include "types.h"

/* panic: report why the kernel cannot go on (where, the exception's ESR,
 * ELR and FAR, or 0s, and what), end the run; never returns. */
void panic(const char *vector, u64 esr, u64 elr, u64 far, const char *what)
    __attribute__((noreturn));

#endif
