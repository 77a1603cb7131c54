/* task.h: creating, cloning and ending tasks. */
#ifndef TASK_H
#define TASK_H

#include "types.h"
#include "sched.h"

/* task_start_user: make the first task of a run: it enters EL0 at
 * user_entry(main, arg) on a fresh stack page. Returns its pid or -errno. */
long task_start_user(u64 main, u64 arg);

/* task_clone: copy current's user context into a new task whose sp is
 * stack + PAGE_SIZE and x0 is 0. Returns the child's pid or -errno. */
long task_clone(u64 stack);

/* task_exit: free current's pages, make it a zombie and switch away. */
void task_exit(const char *reason) __attribute__((noreturn));

#endif
