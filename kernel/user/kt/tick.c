/* kt_tick: how long the kernel under test lets a task run before it
 * switches, in guest instructions, for the harness to choose QEMU's
 * -icount shift (harness/calibrate.py). Linked only into kt-user.o: a
 * kernel without markers has no tick marker to read this from.
 *
 * The first task clones a partner that only counts. The first task then
 * spins in a loop of exactly KT_TICK_INSNS instructions, counting turns
 * until it sees the partner's count change: the partner ran in between,
 * so the first task had been switched out and has just come back. Turns
 * between two such changes are one whole time slice of the first task.
 * The first wait is cut short (the clone's slice was partly used) and is
 * not reported. Then KT_TICK_SLICES slices are reported, one line:
 *
 *     slices insns=4 turns=<n1>,<n2>,...
 *
 * A kernel that never switches never ends this run: the harness's stall
 * bound does. */
#include "ulib.h"

#define KT_TICK_SLICES 5
#define KT_TICK_INSNS 4 /* instructions of one turn of kt_tick_wait's loop */

static volatile unsigned long kt_tick_partner; /* the partner's count */
static volatile int kt_tick_stop;

/* The partner: count until told to stop. */
static long kt_tick_count(unsigned long arg)
{
    (void)arg;
    while (!kt_tick_stop)
        kt_tick_partner++;
    return 0;
}

/* Turns of a KT_TICK_INSNS-instruction loop until the partner's count is
 * no longer `seen`. */
static unsigned long kt_tick_wait(unsigned long seen)
{
    unsigned long turns = 0, now;

    __asm__ volatile("1: ldr %1, [%2]\n\t"
                     "add %0, %0, #1\n\t"
                     "cmp %1, %3\n\t"
                     "b.eq 1b"
                     : "+r"(turns), "=&r"(now)
                     : "r"(&kt_tick_partner), "r"(seen)
                     : "cc", "memory");
    return turns;
}

USER_SCENARIO(kt_tick)
{
    unsigned long turns[KT_TICK_SLICES];
    char line[U_PRINTF_MAX];
    int len;

    (void)seed;
    u_clone(kt_tick_count, 0, u_malloc());
    kt_tick_wait(kt_tick_partner); /* the rest of the slice clone was in */
    for (int i = 0; i < KT_TICK_SLICES; i++)
        turns[i] = kt_tick_wait(kt_tick_partner);
    kt_tick_stop = 1;
    len = u_snprintf(line, sizeof(line), "slices insns=%d turns=", KT_TICK_INSNS);
    for (int i = 0; i < KT_TICK_SLICES; i++)
        len += u_snprintf(line + len, sizeof(line) - (unsigned long)len, "%s%lu",
                          i ? "," : "", turns[i]);
    u_snprintf(line + len, sizeof(line) - (unsigned long)len, "\n");
    u_printf("%s", line);
}
