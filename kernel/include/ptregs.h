/* ptregs.h: the user context entry.S saves on every exception. */
#ifndef PTREGS_H
#define PTREGS_H

#include "types.h"

/* The frame entry.S pushes on exception entry (offsets: asm-offsets.c). */
struct pt_regs {
    u64 regs[31]; /* x0..x30 */
    u64 sp;       /* sp_el0 for an exception from EL0 */
    u64 pc;       /* elr_el1 */
    u64 pstate;   /* spsr_el1: EL, DAIF, NZCV */
};

#endif
