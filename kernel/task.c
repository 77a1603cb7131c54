/* task.c: making tasks (the first user task of a run, clones) and ending
 * them (exit, or a fault). Pids count up and are never reused; a zombie's
 * slot is reused only when no slot is unused (docs/syscalls.md). */
#include "events.h"
#include "mm.h"
#include "panic.h"
#include "run.h"
#include "string.h"
#include "sysregs.h"
#include "task.h"
#include "uapi/syscall.h"

extern char user_entry[]; /* EL0 trampoline: user_entry(main, arg) */

static u64 next_pid = 1;

/* claim_slot: an unused slot, else the lowest zombie slot (reaped), else
 * NULL when every user slot holds a live task. */
static struct task *claim_slot(void)
{
    for (int i = 1; i < NR_TASKS; i++)
        if (tasks[i].state == TASK_UNUSED)
            return &tasks[i];
    for (int i = 1; i < NR_TASKS; i++) {
        struct task *t = &tasks[i];
        if (t->state == TASK_ZOMBIE) {
            ev_task(t->pid, t->parent, "reaped", "slot_reuse");
            t->state = TASK_UNUSED;
            return t;
        }
    }
    return NULL;
}

/* task_setup: fill slot p as a new runnable task that first runs fn(a0,
 * a1, a2) in the kernel (fn NULL: none) and then returns to EL0 through its
 * pt_regs. The caller fills the pt_regs. */
static void task_setup(struct task *p, u64 fn, u64 a0, u64 a1, u64 a2)
{
    memset(p, 0, sizeof(*p));
    p->ctx.x19 = fn;
    p->ctx.x20 = a0;
    p->ctx.x21 = a1;
    p->ctx.x22 = a2;
    p->ctx.pc = (u64)ret_from_fork;
    p->ctx.sp = (u64)task_pt_regs(p);
    p->state = TASK_RUNNING;
    p->priority = current->pid ? current->priority : DEFAULT_PRIORITY;
    p->counter = p->priority;
    p->preempt_count = 1; /* until schedule_tail */
    p->pid = next_pid++;
    p->parent = current->pid;
}

/* move_to_user_mode: kernel-thread body of a run's first task: point its
 * frame at user_entry(main, arg) on the given stack, at EL0. */
static void move_to_user_mode(u64 main, u64 arg, u64 stack)
{
    struct pt_regs *regs = task_pt_regs(current);

    memset(regs, 0, sizeof(*regs));
    regs->pc = (u64)user_entry;
    regs->regs[0] = main;
    regs->regs[1] = arg;
    regs->sp = stack + PAGE_SIZE;
    regs->pstate = SPSR_EL0_USER;
    ev_task(current->pid, current->parent, "user", "entry");
}

long task_start_user(u64 main, u64 arg)
{
    struct task *p = claim_slot();
    u64 stack;

    if (!p)
        return -EAGAIN;
    task_setup(p, (u64)move_to_user_mode, main, arg, 0);
    ev_task(p->pid, p->parent, "new", "scenario");
    stack = page_alloc(p->pid);
    if (!stack) {
        p->state = TASK_UNUSED;
        return -ENOMEM;
    }
    p->ctx.x22 = stack;
    return (long)p->pid;
}

/* holds_sp: is the stack pointer sp inside (or just above) page? */
static bool holds_sp(u64 page, u64 sp)
{
    return sp > page && sp <= page + PAGE_SIZE;
}

long task_clone(u64 stack)
{
    struct pt_regs *parent_regs = task_pt_regs(current);
    struct task *p;
    struct pt_regs *child_regs;

    if (!ALIGNED(stack, PAGE_SIZE) || page_owner(stack) != current->pid ||
        holds_sp(stack, parent_regs->sp))
        return -EINVAL;
    p = claim_slot();
    if (!p)
        return -EAGAIN;
    task_setup(p, 0, 0, 0, 0);
    child_regs = task_pt_regs(p);
    *child_regs = *parent_regs;
    child_regs->regs[0] = 0;
    child_regs->sp = stack + PAGE_SIZE;
    ev_task(p->pid, p->parent, "new", "clone");
    page_give(stack, current->pid, p->pid);
    return (long)p->pid;
}

void task_exit(const char *reason)
{
    page_free_all(current->pid);
    current->state = TASK_ZOMBIE;
    ev_task(current->pid, current->parent, "zombie", reason);
    if (live_user_tasks() == 0)
        run_finished();
    schedule();
    panic("sched", 0, 0, 0, "task_exit: a zombie was scheduled");
}
