/* sched.h: tasks, the task table and the scheduler. */
#ifndef SCHED_H
#define SCHED_H

#include "types.h"
#include "param.h"
#include "ptregs.h"

/* Callee-saved registers kept across cpu_switch_to (offsets: asm-offsets.c). */
struct cpu_context {
    u64 x19, x20, x21, x22, x23, x24, x25, x26, x27, x28;
    u64 fp;  /* x29 */
    u64 sp;
    u64 pc;  /* where cpu_switch_to resumes: x30 at the switch */
};

enum task_state {
    TASK_UNUSED = 0, /* free slot */
    TASK_RUNNING,    /* runnable (or running) */
    TASK_ZOMBIE,     /* exited; never scheduled again; slot reusable */
};

struct task {
    struct cpu_context ctx; /* must stay first: cpu_switch_to uses it */
    enum task_state state;
    long counter;           /* ticks left in the current slice */
    long priority;          /* ticks per slice */
    long preempt_count;     /* > 0: the timer must not switch away */
    u64 pid;                /* 0: idle; user pids count up from 1 */
    u64 parent;             /* pid of the creator */
};

extern struct task *current;
extern struct task tasks[NR_TASKS];

/* sched_init: make the boot thread task 0 (idle) and current. */
void sched_init(void);

/* schedule: switch to the best runnable task (maybe the same one). */
void schedule(void);

/* schedule_tail: first C code of a new task, right after its first switch. */
void schedule_tail(void);

/* sched_tick: account one timer tick to current; may switch away. */
void sched_tick(void);

/* preempt_disable / preempt_enable: keep the timer from switching away. */
void preempt_disable(void);
void preempt_enable(void);

/* task_pt_regs: the user frame at the top of a task's kernel stack. */
struct pt_regs *task_pt_regs(struct task *t);

/* task_kstack_top: the first byte above a task's kernel stack page. */
u64 task_kstack_top(struct task *t);

/* live_user_tasks: how many user tasks are runnable (not zombie/unused). */
int live_user_tasks(void);

/* idle_loop: task 0's work once the system runs: wait for interrupts. */
void idle_loop(void) __attribute__((noreturn));

/* Assembly (entry.S). */
void cpu_switch_to(struct task *prev, struct task *next);
void ret_from_fork(void);
/* irq_wait: sleep until an IRQ is pending and take it (idle_loop's wait). */
void irq_wait(void);

#endif
