/* sched.c: the task table and a preemptive round-robin scheduler with
 * priorities (after the RPi OS lessons): the runnable task with the most
 * ticks left runs; when all are out, every counter is recharged. */
#include "events.h"
#include "panic.h"
#include "sched.h"

#define IDLE (&tasks[0])

struct task tasks[NR_TASKS];
struct task *current;
static u64 tick_count; /* ticks since the timer started */

/* One kernel stack page per table slot; kstacks[0] is the boot stack. */
u8 kstacks[NR_TASKS][PAGE_SIZE] __attribute__((aligned(PAGE_SIZE)));

void sched_init(void)
{
    IDLE->state = TASK_RUNNING;
    IDLE->pid = 0;
    IDLE->priority = 0;
    IDLE->preempt_count = 0;
    current = IDLE;
}

u64 task_kstack_top(struct task *t)
{
    return (u64)kstacks[t - tasks] + PAGE_SIZE;
}

struct pt_regs *task_pt_regs(struct task *t)
{
    return (struct pt_regs *)(task_kstack_top(t) - sizeof(struct pt_regs));
}

void preempt_disable(void)
{
    current->preempt_count++;
}

void preempt_enable(void)
{
    current->preempt_count--;
}

int live_user_tasks(void)
{
    int n = 0;

    for (int i = 1; i < NR_TASKS; i++)
        n += tasks[i].state == TASK_RUNNING;
    return n;
}

/* pick_next: the runnable user task with the largest counter, recharging
 * counters when every runnable task is out of ticks; idle if none runs. */
static struct task *pick_next(void)
{
    for (;;) {
        struct task *next = IDLE;
        long best = -1;

        for (int i = 1; i < NR_TASKS; i++) {
            struct task *t = &tasks[i];
            if (t->state == TASK_RUNNING && t->counter > best) {
                best = t->counter;
                next = t;
            }
        }
        if (best != 0)
            return next;
        for (int i = 1; i < NR_TASKS; i++) {
            struct task *t = &tasks[i];
            if (t->state == TASK_RUNNING)
                t->counter = (t->counter >> 1) + t->priority;
        }
    }
}

/* switch_to: make next current and run it; returns when prev runs again. */
static void switch_to(struct task *next)
{
    struct task *prev = current;

    if (next == prev)
        return;
    if (next != IDLE && next->state != TASK_RUNNING)
        panic("sched", 0, 0, 0, "switch_to: task not runnable");
    ev_switch(prev->pid, next->pid);
    current = next;
    cpu_switch_to(prev, next);
}

void schedule(void)
{
    preempt_disable();
    switch_to(pick_next());
    preempt_enable();
}

void schedule_tail(void)
{
    preempt_enable();
}

void sched_tick(void)
{
    ev_tick(current->pid, ++tick_count);
    if (current != IDLE && --current->counter > 0)
        return;
    if (current->preempt_count > 0)
        return;
    current->counter = 0;
    schedule();
}

void idle_loop(void)
{
    for (;;) {
        schedule();
        irq_wait();
    }
}
