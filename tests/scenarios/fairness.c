/* fairness: two CPU-bound children with equal priority do chunks of
 * arithmetic (x += step, FA_TURNS times a chunk) and publish how many
 * chunks they have done. A child prints a progress line whenever it sees
 * that the other one has progressed since its last line (so the other ran
 * in between), and stops after FA_LINES such lines: the run lasts a few
 * time slices whatever the host's speed. The parent exits after cloning.
 * The judge (test_fairness.py) recomputes the values and checks that both
 * children are switched in repeatedly and that their progress interleaves.
 *
 * Before cloning, the first task, alone, spins FA_RATE_TURNS turns of a
 * 2-instruction loop between two lines ("rate turns=.." and "rate done"):
 * the judge counts the ticks in between against the boot marker's hz
 * (under -icount an instruction is a fixed slice of guest time).
 *
 * The raw writes a tick lands in are write_tick.c's.
 *
 * Seed draws, in order: for child 0 then child 1: start, step. */
#include "ulib.h"

#define FA_LINES 5             /* progress lines a child prints */
#define FA_TURNS 100000UL      /* additions a chunk (~0.125 M instructions) */
#define FA_UNROLL 8            /* additions a turn of fa_work's loop (FA_TURNS a multiple) */
#define FA_MAX_CHUNKS 1000UL   /* bound for a kernel that never switches */
#define FA_WAIT_MAX 50000000UL /* bound on a wait for child 0 (a kernel that never switches) */
#define FA_RATE_TURNS 5000000UL /* u_spin turns timed in ticks: 10 M instructions, 10 ticks at 1 kHz, shift 0 */

static u64 fa_start[2], fa_step[2];
static volatile unsigned long fa_chunks[2]; /* chunks each child has done */
static volatile int fa_finished[2];

/* x + turns * step, one add at a time (asm: the loop must really run);
 * turns a multiple of FA_UNROLL. Eight adds a loop turn: QEMU's cost per
 * guest instruction falls with the length of a loop's body. */
static u64 fa_work(u64 x, u64 step, unsigned long turns)
{
    unsigned long loops = turns / FA_UNROLL;

    __asm__ volatile("1: add %0, %0, %2\n\t"
                     "add %0, %0, %2\n\t"
                     "add %0, %0, %2\n\t"
                     "add %0, %0, %2\n\t"
                     "add %0, %0, %2\n\t"
                     "add %0, %0, %2\n\t"
                     "add %0, %0, %2\n\t"
                     "add %0, %0, %2\n\t"
                     "sub %1, %1, #1\n\t"
                     "cbnz %1, 1b"
                     : "+r"(x), "+r"(loops)
                     : "r"(step));
    return x;
}

/* Turns of a loop until child 0's chunk count is no longer `seen` (child 0
 * ran in between: the caller was switched out and has just come back). */
static unsigned long fa_wait_child0(unsigned long seen)
{
    unsigned long turns = 0;

    while (fa_chunks[0] == seen && turns < U_WAIT(FA_WAIT_MAX))
        turns++;
    return turns;
}

/* Before the second clone, use about 3/4 of a fresh slice, so the parent
 * clones with part of its slice used: a child that inherited what is left
 * of its caller's counter, not a fresh slice, then shows a short first one.
 * The slice is measured in the kernel's own terms, not as a fixed spin:
 * wait until child 0 has run (the parent is back at a slice's start), time
 * one whole slice the same way, then spin 3/4 of it (the bundled kernel:
 * 1.5 of the slice's 2 ticks, well clear of the tick in between). */
static void fa_midslice(void)
{
    unsigned long slice;

    fa_wait_child0(fa_chunks[0]);
    slice = fa_wait_child0(fa_chunks[0]);
    for (unsigned long turns = 0; turns < slice / 4 * 3; turns++)
        __asm__ volatile("" : : "r"(fa_chunks[0]) : "memory"); /* the same loop body */
}

/* Child k: chunks, a progress line each time the other child has run. */
static long fa_child(unsigned long k)
{
    u64 x = fa_start[k];
    unsigned long n = 0, lines = 0, seen = 0;

    while (lines < FA_LINES && n < U_WAIT(FA_MAX_CHUNKS)) {
        x = fa_work(x, fa_step[k], FA_TURNS);
        fa_chunks[k] = ++n;
        if (fa_chunks[1 - k] != seen || fa_finished[1 - k]) {
            seen = fa_chunks[1 - k];
            lines++;
            u_printf("prog k=%lu n=%lu x=0x%lx other=%lu\n", k, n, x, seen);
        }
    }
    fa_finished[k] = 1;
    u_printf("done k=%lu n=%lu lines=%lu\n", k, n, lines);
    return 0;
}

USER_SCENARIO(fairness)
{
    struct u_rng rng;

    u_rng_seed(&rng, seed);
    for (int k = 0; k < 2; k++) {
        fa_start[k] = u_rng_next(&rng);
        fa_step[k] = u_rng_next(&rng);
    }
    u_printf("rate turns=%lu\n", FA_RATE_TURNS);
    u_spin(FA_RATE_TURNS);
    u_printf("rate done\n");
    for (unsigned long k = 0; k < 2; k++) {
        if (k == 1)
            fa_midslice();
        u_printf("clone k=%lu ret=%ld\n", k, u_clone(fa_child, k, u_malloc()));
    }
}
