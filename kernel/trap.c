/* trap.c: exception dispatch. From EL0: svc goes to the syscall
 * dispatcher, anything else kills the task. Anything unexpected at EL1 is a
 * panic (panic.c) that names the vector, ESR, ELR and FAR. */
#include "events.h"
#include "panic.h"
#include "power.h"
#include "printk.h"
#include "sched.h"
#include "syscall.h"
#include "sysregs.h"
#include "task.h"
#include "trap.h"

static const char *const vector_names[NR_VECTORS] = {
    [VEC_EL1T_SYNC] = "EL1t sync",     [VEC_EL1T_IRQ] = "EL1t IRQ",
    [VEC_EL1T_FIQ] = "EL1t FIQ",       [VEC_EL1T_ERROR] = "EL1t SError",
    [VEC_EL1H_SYNC] = "EL1h sync",     [VEC_EL1H_IRQ] = "EL1h IRQ",
    [VEC_EL1H_FIQ] = "EL1h FIQ",       [VEC_EL1H_ERROR] = "EL1h SError",
    [VEC_EL0_64_SYNC] = "EL0 sync",    [VEC_EL0_64_IRQ] = "EL0 IRQ",
    [VEC_EL0_64_FIQ] = "EL0 FIQ",      [VEC_EL0_64_ERROR] = "EL0 SError",
    [VEC_EL0_32_SYNC] = "EL0/32 sync", [VEC_EL0_32_IRQ] = "EL0/32 IRQ",
    [VEC_EL0_32_FIQ] = "EL0/32 FIQ",   [VEC_EL0_32_ERROR] = "EL0/32 SError",
};

/* read_esr / read_far: the syndrome and fault address of this exception. */
static u64 read_esr(void)
{
    u64 v;
    __asm__ volatile("mrs %0, esr_el1" : "=r"(v));
    return v;
}

static u64 read_far(void)
{
    u64 v;
    __asm__ volatile("mrs %0, far_el1" : "=r"(v));
    return v;
}

/* esr_class: the exception class field of an ESR value. */
static u64 esr_class(u64 esr)
{
    return (esr >> ESR_EC_SHIFT) & ESR_EC_MASK;
}

const char *esr_class_name(u64 ec)
{
    switch (ec) {
    case ESR_EC_UNKNOWN:  return "undefined instruction";
    case ESR_EC_SVC64:    return "svc";
    case ESR_EC_SYS64:    return "system register access";
    case ESR_EC_IABT_LOW: return "instruction abort from EL0";
    case ESR_EC_IABT_CUR: return "instruction abort in the kernel";
    case ESR_EC_PC_ALIGN: return "misaligned pc";
    case ESR_EC_DABT_LOW: return "data abort from EL0";
    case ESR_EC_DABT_CUR: return "data abort in the kernel";
    case ESR_EC_SP_ALIGN: return "misaligned stack pointer";
    case ESR_EC_BRK64:    return "breakpoint";
    default:              return "other exception";
    }
}

void bad_exception(u64 vector, struct pt_regs *regs)
{
    u64 esr = read_esr();

    if (power_is_shutting_down()) /* semihosting absent: the hlt trapped */
        watchdog_reset();
    panic(vector < NR_VECTORS ? vector_names[vector] : "?", esr, regs->pc,
          read_far(), esr_class_name(esr_class(esr)));
}

/* user_fault: an EL0 task did something only the kernel may (or nothing
 * can): report it and end the task, never the kernel. */
static void user_fault(struct pt_regs *regs, u64 esr)
{
    u64 far = read_far();
    const char *what = esr_class_name(esr_class(esr));

    ev_fault(current->pid, esr, regs->pc, far, what);
#if !KT_TEST
    kprintf("task %lu killed: %s (ESR %lx ELR %lx FAR %lx)\n",
            current->pid, what, esr, regs->pc, far);
#endif
    task_exit("fault");
}

void el0_sync_handler(struct pt_regs *regs)
{
    u64 esr = read_esr();

    switch (esr_class(esr)) {
    case ESR_EC_SVC64:
        syscall_dispatch(regs);
        break;
    default:
        user_fault(regs, esr);
    }
}
