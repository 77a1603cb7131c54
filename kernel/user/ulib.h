/* ulib.h: the EL0 user library. Scenario programs and the demo use only
 * this: system-call stubs, string formatting, and the seed PRNG.
 * Nothing here calls a kernel function; the kernel is reached by svc only. */
#ifndef ULIB_H
#define ULIB_H

#include <stdarg.h> /* GCC's own, freestanding */

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
/* exit with x0..x2 = a0..a2 (to see what the kernel reports); never returns */
void u_exit_args(u64 a0, u64 a1, u64 a2) __attribute__((noreturn));
long u_syscall(unsigned long x8, unsigned long a0, unsigned long a1,
               unsigned long a2);

/* --- ulib.c: strings, formatting, output, PRNG, busy waits --- */

#define U_PRINTF_MAX 512 /* longest line u_printf formats (then truncates) */

/* Number of bytes before the first NUL of s. */
unsigned long u_strlen(const char *s);
/* Fill n bytes at p with byte b (a loop: no memset for GCC to call). */
void u_fill(void *p, int b, unsigned long n);
/* Fill n 8-byte words at p (8-aligned) with v. */
void u_fill64(u64 *p, u64 v, unsigned long n);
/* Copy n bytes from src to dst (regions must not overlap). */
void u_copy(void *dst, const void *src, unsigned long n);
/* 1 if the n bytes at a and b are equal, else 0. */
int u_equal(const void *a, const void *b, unsigned long n);

/* Format into buf (at most n bytes, always NUL-terminated when n > 0).
 * Conversions: %s %c %d %u %x %ld %lu %lx %p %%, with an optional '0' flag
 * and width (e.g. %016lx). Returns the length the result would have had. */
int u_vsnprintf(char *buf, unsigned long n, const char *fmt, va_list ap);
int u_snprintf(char *buf, unsigned long n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Format (at most U_PRINTF_MAX-1 bytes) and write it with ONE write
 * syscall, so the harness attributes the whole line to this task.
 * Returns write's result. */
long u_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The seed PRNG: splitmix64, exactly as docs/protocol.md and
 * harness.prng.SplitMix64 (seed 0 gives 0xe220a8397b1dcdaf first). */
struct u_rng {
    unsigned long state;
};
void u_rng_seed(struct u_rng *r, unsigned long seed);
unsigned long u_rng_next(struct u_rng *r);

#define U_PROOF_SALT 0x6b742d70726f6f66UL /* "kt-proof" */
/* Print "proof seed=<seed> draw=0x<first draw of splitmix64(seed ^
 * U_PROOF_SALT)>": every scenario's first line, so a transcript recorded
 * with another seed cannot pass for this one (test_invariants.py). */
void u_seed_proof(unsigned long seed);

/* --- how a task reports, waits and leaves (marker mode here; EL0-marker
 * mode, for kernels that emit no markers, in kernel/user/kt/el0.c) --- */

/* Write one finished line of facts: a plain write in marker mode, an `out`
 * EL0 marker (docs/protocol.md, "EL0 markers") otherwise. Returns write's
 * result. */
long u_emit(const char *line);
/* Say that the next clone's child runs on `stack`: in EL0-marker mode it
 * gets the next task id (the program's own pid) and a `clone` marker
 * names it; nothing in marker mode, where the kernel reports clones. */
void u_expect_child(void *stack);
/* Report clone's result in the parent (u_clone and u_clone_raw do; code
 * that makes the svc itself calls it): EL0-marker mode writes a `cloned`
 * marker, so the harness knows whether the announced child exists. */
void u_cloned(long ret);
/* Say that this task's next instruction must get it killed (a fault at
 * EL0): the harness then does not wait for its exit. */
void u_expect_death(void);
/* Called when exit's svc came back (a broken kernel): report it, then spin
 * forever without another syscall. */
void u_after_exit(void) __attribute__((noreturn));

/* U_WAIT(n): the bound of a busy wait for another task's progress. In
 * marker mode n loop turns (the bundled kernel ticks at 1 kHz). In EL0-
 * marker mode unbounded: a lesson kernel may tick only every 270 ms, so a
 * bound in loop turns would end the wait before the other task ran; the
 * harness's stall window (guest progress) ends a wait that never ends. */
#ifdef KT_EL0
#define U_WAIT(n) (~0UL)
#else
#define U_WAIT(n) (n)
#endif

/* Busy-wait for about `iterations` loop turns (2 instructions each);
 * the loop is asm, so the compiler cannot delete it. */
void u_spin(unsigned long iterations);

/* --- uregs.S: register-level probes --- */
#define U_REGS_IN  32 /* in[0..30] = x0..x30, in[31] = NZCV (bits 31..28) */
#define U_REGS_OUT 34 /* out[0..30] = x0..x30, [31] NZCV, [32] sp after, [33] sp before */
/* Load x0..x30 and NZCV from in, `svc #0`, store x0..x30, NZCV and sp
 * (after and before the svc) to out (out[0] is 0x6b74736b69707065 if the
 * kernel returned past the instruction after the svc: uregs.S). x8 (the number) comes from in[8].
 * Callee-saved registers are kept for the C caller. Returns out[0]. */
long u_regs_svc(const u64 in[U_REGS_IN], u64 out[U_REGS_OUT]);
/* Like u_regs_svc, but instead of the svc it busy-waits: x0 counts down
 * from in[0] (which must be > 0) with `sub` and `cbnz` only (no flags, no
 * other register), so every other register and NZCV must survive timer
 * interrupts and context switches. out[0] is 0 when the loop ends. */
void u_regs_spin(const u64 in[U_REGS_IN], u64 out[U_REGS_OUT]);
/* Print out[] as five lines "<tag> x0=0x.. .. x7=0x..", .., "<tag> x24=..
 * x30=..", "<tag> nzcv=0x.. sp=0x.. sp0=0x.." (sp0 = sp before). */
void u_print_regs(const char *tag, const u64 out[U_REGS_OUT]);

#endif
