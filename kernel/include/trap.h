/* trap.h: the exception handlers entry.S calls (the frame: ptregs.h). */
#ifndef TRAP_H
#define TRAP_H

#include "ptregs.h"
#include "types.h"

/* el0_sync_handler: a synchronous exception from EL0 (svc or fault). */
void el0_sync_handler(struct pt_regs *regs);

/* bad_exception: an exception no handler expects; panics (never returns). */
void bad_exception(u64 vector, struct pt_regs *regs) __attribute__((noreturn));

/* esr_class_name: a few words for an ESR exception class. */
const char *esr_class_name(u64 ec);

/* Vector numbers, in table order, for bad_exception's report. */
enum vector_id {
    VEC_EL1T_SYNC, VEC_EL1T_IRQ, VEC_EL1T_FIQ, VEC_EL1T_ERROR,
    VEC_EL1H_SYNC, VEC_EL1H_IRQ, VEC_EL1H_FIQ, VEC_EL1H_ERROR,
    VEC_EL0_64_SYNC, VEC_EL0_64_IRQ, VEC_EL0_64_FIQ, VEC_EL0_64_ERROR,
    VEC_EL0_32_SYNC, VEC_EL0_32_IRQ, VEC_EL0_32_FIQ, VEC_EL0_32_ERROR,
    NR_VECTORS
};

#endif
