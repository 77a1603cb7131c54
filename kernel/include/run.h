/* run.h: starting a program's first task, and the end of a run. */
#ifndef RUN_H
#define RUN_H

#include "types.h"
#include "uapi/scenario.h"

/* run_start: start scenario s at EL0 with seed, start the timer, go idle. */
void run_start(const struct user_scenario *s, u64 seed) __attribute__((noreturn));

/* run_finished: the last user task has exited: say so (and in the test
 * image end the run). */
void run_finished(void);

/* scenario_find: the registered scenario called name, or NULL. */
const struct user_scenario *scenario_find(const char *name);

/* testmode_main: the test image's command loop (docs/protocol.md). */
void testmode_main(void) __attribute__((noreturn));

extern const struct user_scenario __scenarios_start[], __scenarios_end[];

#endif
