/* ulib.h: the EL0 user library. Scenario programs and the demo use only
 * this: system-call stubs, string formatting, and the seed PRNG.
 * Nothing here calls a kernel function; the kernel is reached by svc only. */
#ifndef ULIB_H
#define ULIB_H

#include "uapi/syscall.h"
#include "uapi/scenario.h"

#define U_PAGE_SIZE 4096UL

typedef unsigned long u64;

/* System-call stubs (usys.S). */
long u_write(const char *s);
void *u_malloc(void);
long u_clone_raw(void *stack);
long u_clone(long (*fn)(unsigned long), unsigned long arg, void *stack);
void u_exit(void) __attribute__((noreturn));
long u_syscall(unsigned long x8, unsigned long a0, unsigned long a1,
               unsigned long a2);

#endif
