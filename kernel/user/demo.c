/* demo.c: the lesson-5 demo. The first task greets, then clones two
 * children on stack pages it mallocs; each child prints its own string one
 * character at a time with busy waits in between, so timer preemption
 * interleaves them on the console. Everything ends by itself. */
#include "ulib.h"

#define DEMO_ROUNDS 6         /* times each child prints its string */
#define DEMO_DELAY  150000UL  /* busy-wait turns between two characters */

/* Print the string at `arg` DEMO_ROUNDS times, a character per write. */
static long demo_child(unsigned long arg)
{
    const char *s = (const char *)arg;
    char one[2] = { 0, 0 };

    for (int round = 0; round < DEMO_ROUNDS; round++) {
        for (unsigned long i = 0; s[i] != '\0'; i++) {
            one[0] = s[i];
            u_write(one);
            u_spin(DEMO_DELAY);
        }
    }
    return 0;
}

/* Clone one demo child printing s; says so if it cannot. */
static void demo_spawn(const char *s)
{
    void *stack = u_malloc();
    long pid;

    if (stack == (void *)MALLOC_FAILED) {
        u_write("demo: no page for a child stack\n");
        return;
    }
    pid = u_clone(demo_child, (unsigned long)s, stack);
    if (pid < 0)
        u_printf("demo: clone failed: %ld\n", pid);
}

USER_SCENARIO(demo)
{
    u_printf("Hello from user mode (seed %lu): two tasks will interleave.\n",
             seed);
    demo_spawn("12345");
    demo_spawn("abcde");
    /* The first task is done: returning from main exits it. */
}

/* The demo image's first task (kernel/main.c). It has the lesson's name so
 * that the suite can replace it at link time with its conformance program
 * (make check SUBMISSION=., docs/judging.md), as it does a student's. */
void user_process(unsigned long seed);
void user_process(unsigned long seed)
{
    demo_main(seed);
}
