/* asm-offsets.c: compiled to assembly only, never linked. The Makefile turns
 * each "->NAME value" line into "#define NAME value" in asm-offsets.h, so
 * entry.S uses the C structs' real offsets instead of numbers kept by hand. */
#include <stddef.h>
#include "sched.h"
#include "ptregs.h"

#define DEFINE(sym, val) \
    __asm__ volatile("\n.ascii \"->" #sym " %0\"" : : "i"((long)(val)))

/* The frame is stored and loaded in pairs: these pairs must be adjacent. */
_Static_assert(offsetof(struct pt_regs, sp) == offsetof(struct pt_regs, regs[30]) + 8,
               "pt_regs: sp must follow x30");
_Static_assert(offsetof(struct pt_regs, pstate) == offsetof(struct pt_regs, pc) + 8,
               "pt_regs: pstate must follow pc");
_Static_assert(sizeof(struct pt_regs) % 16 == 0, "pt_regs keeps sp 16-byte aligned");
_Static_assert(offsetof(struct cpu_context, sp) == offsetof(struct cpu_context, fp) + 8,
               "cpu_context: sp must follow fp");
_Static_assert(offsetof(struct task, ctx) == 0, "cpu_switch_to takes a task as its context");

void asm_offsets(void);

/* asm_offsets: emit every offset entry.S needs. */
void asm_offsets(void)
{
    DEFINE(S_FRAME_SIZE, sizeof(struct pt_regs));
    DEFINE(S_X0, offsetof(struct pt_regs, regs[0]));
    DEFINE(S_X30, offsetof(struct pt_regs, regs[30]));
    DEFINE(S_PC, offsetof(struct pt_regs, pc));
    DEFINE(CTX_X19, offsetof(struct cpu_context, x19));
    DEFINE(CTX_X21, offsetof(struct cpu_context, x21));
    DEFINE(CTX_X23, offsetof(struct cpu_context, x23));
    DEFINE(CTX_X25, offsetof(struct cpu_context, x25));
    DEFINE(CTX_X27, offsetof(struct cpu_context, x27));
    DEFINE(CTX_FP, offsetof(struct cpu_context, fp));
    DEFINE(CTX_PC, offsetof(struct cpu_context, pc));
    DEFINE(KSTACK_SIZE, PAGE_SIZE);
}
