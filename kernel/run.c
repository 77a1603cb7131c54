/* run.c: a run of a user program: its first task, the timer, and what
 * happens when the last user task has exited. */
#include "events.h"
#include "panic.h"
#include "power.h"
#include "printk.h"
#include "run.h"
#include "sched.h"
#include "string.h"
#include "task.h"
#include "timer.h"

const struct user_scenario *scenario_find(const char *name)
{
    for (const struct user_scenario *s = __scenarios_start; s < __scenarios_end; s++)
        if (str_eq(s->name, name))
            return s;
    return NULL;
}

void run_start(const struct user_scenario *s, u64 seed)
{
    ev_start(s->name, seed);
    if (task_start_user((u64)s->main, seed) < 0)
        panic("run", 0, 0, 0, "cannot start the first user task");
    timer_init();
    idle_loop();
}

void run_finished(void)
{
#if KT_TEST
    ev_all_exited();
    ev_end("all_exited");
    power_off(0);
#else
    kprintf("All user tasks have exited.\n");
#endif
}
