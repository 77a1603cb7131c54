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
 * Then both children write raw lines (plain write calls, no marker, no
 * lock) timed so that their slices end inside a write: each measures its
 * slice and the cost of one line in loop turns, then, FA_ROUNDS times,
 * spins to 1.5 lines before its slice ends and writes up to FA_ROUND_LINES
 * lines "raw <k> <i> <FA_FILL letters>". A kernel that switches tasks in
 * the middle of a write mixes the two children's lines; the judge checks
 * that every line a child reports ("wrote k= lines=") came out whole.
 * Neither child prints a marker while the other may be inside a raw write
 * (a barrier before the first and after the last).
 *
 * Seed draws, in order: for child 0 then child 1: start, step; then the
 * fill letters: child 0's is 'a' + d % 26, child 1's the next letter. */
#include "ulib.h"

#define FA_LINES 5             /* progress lines a child prints */
#define FA_TURNS 100000UL      /* additions a chunk (~0.3 M instructions) */
#define FA_MAX_CHUNKS 1000UL   /* bound for a kernel that never switches */
#define FA_WAIT_MAX 50000000UL /* bound on a wait for child 0 (a kernel that never switches) */
#define FA_RATE_TURNS 5000000UL /* u_spin turns timed in ticks: 10 M instructions, 10 ticks at 1 kHz, shift 0 */
#define FA_PHASE_WAIT 10000000UL /* bound on a write-phase wait (~25 of the bundled kernel's slices) */
#define FA_ROUNDS 3            /* slice ends each child aims a write at */
#define FA_ROUND_LINES 3       /* lines a round writes at most (the middle one holds the tick) */
#define FA_FILL 960            /* letters a raw line holds: near WRITE_MAX (1024) with its head */
#define FA_RAW_MAX (FA_FILL + 32)
#define FA_LETTERS 26

static u64 fa_start[2], fa_step[2];
static volatile unsigned long fa_chunks[2]; /* chunks each child has done */
static volatile int fa_finished[2];
static volatile unsigned long fa_beat[2]; /* bumped on every turn of the write phase */
static volatile int fa_writing[2];        /* in the write phase (0, 1), or past it (2) */
static char fa_letter[2];
static char fa_raw[2][FA_RAW_MAX];

/* x + turns * step, one add at a time (asm: the loop must really run). */
static u64 fa_work(u64 x, u64 step, unsigned long turns)
{
    __asm__ volatile("1: add %0, %0, %2\n\t"
                     "sub %1, %1, #1\n\t"
                     "cbnz %1, 1b"
                     : "+r"(x), "+r"(turns)
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

/* Spin until child 1 - k has beaten (the caller was switched out and is back
 * at the start of a slice) or `turns` turns have passed; the turns spun.
 * Not inlined: every caller must spin the same loop, turn for turn. */
static __attribute__((noinline)) unsigned long fa_until_switched(unsigned long k, unsigned long turns)
{
    unsigned long seen = fa_beat[1 - k], n = 0;

    while (fa_beat[1 - k] == seen && n < turns) {
        fa_beat[k]++;
        n++;
    }
    return n;
}

/* Wait until the other child's write phase state is at least `state`;
 * 0 if the wait gave up (a kernel that never switches). */
static int fa_await(unsigned long k, int state)
{
    for (unsigned long n = 0; fa_writing[1 - k] < state; n++) {
        if (n == U_WAIT(FA_PHASE_WAIT))
            return 0;
        fa_beat[k]++;
    }
    return 1;
}

/* Wait for the next switch-in (fa_until_switched); 0 if it never came. */
static int fa_switched(unsigned long k)
{
    return fa_until_switched(k, U_WAIT(FA_PHASE_WAIT)) < U_WAIT(FA_PHASE_WAIT);
}

/* Write raw line i of child k (one write call, no lock); 1 if the other
 * child beat meanwhile (the caller was switched out and back in). */
static int fa_raw_line(unsigned long k, unsigned long i)
{
    unsigned long seen = fa_beat[1 - k];
    int head = u_snprintf(fa_raw[k], FA_RAW_MAX, "raw %lu %lu ", k, i);

    u_fill(fa_raw[k] + head, fa_letter[k], FA_FILL);
    fa_raw[k][head + FA_FILL] = '\n';
    fa_raw[k][head + FA_FILL + 1] = '\0';
    u_write(fa_raw[k]);
    return fa_beat[1 - k] != seen;
}

/* Child k's write phase (module comment); returns the raw lines written.
 * It gives up as soon as a wait for the other child does (a kernel that
 * never switches: the judges above name that). */
static unsigned long fa_write_phase(unsigned long k)
{
    unsigned long slice, line, lines = 0;
    int fresh = 0;

    fa_writing[k] = 1;
    if (!fa_await(k, 1) || !fa_switched(k))           /* now at a slice's start */
        goto out;
    slice = fa_until_switched(k, U_WAIT(FA_PHASE_WAIT)); /* one whole slice, in turns */
    if (slice == U_WAIT(FA_PHASE_WAIT))
        goto out;
    fresh = fa_raw_line(k, lines++);
    line = fresh ? slice : slice - fa_until_switched(k, slice); /* one line's cost */
    for (int r = 0; r < FA_ROUNDS; r++) {
        unsigned long lead = slice > line + line / 2 ? slice - line - line / 2 : 0;

        if (!fresh && !fa_switched(k))
            break;
        fresh = fa_until_switched(k, lead) < lead; /* switched out early: start over */
        for (int n = 0; !fresh && n < FA_ROUND_LINES; n++)
            fresh = fa_raw_line(k, lines++);
    }
out:
    fa_writing[k] = 2;
    fa_await(k, 2);
    return lines;
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
    lines = fa_write_phase(k);
    u_printf("wrote k=%lu lines=%lu fill=%d\n", k, lines, FA_FILL);
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
    fa_letter[0] = (char)('a' + u_rng_next(&rng) % FA_LETTERS);
    fa_letter[1] = (char)('a' + (fa_letter[0] - 'a' + 1) % FA_LETTERS);
    u_printf("rate turns=%lu\n", FA_RATE_TURNS);
    u_spin(FA_RATE_TURNS);
    u_printf("rate done\n");
    for (unsigned long k = 0; k < 2; k++) {
        if (k == 1)
            fa_midslice();
        u_printf("clone k=%lu ret=%ld\n", k, u_clone(fa_child, k, u_malloc()));
    }
}
