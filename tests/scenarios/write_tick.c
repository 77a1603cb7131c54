/* write_tick: two children write raw lines (plain write calls, no marker,
 * no lock) timed so that their slices end inside a write. Each measures
 * its slice and the cost of one line in loop turns, then, WT_ROUNDS times,
 * spins to 1.5 lines before its slice ends and writes up to WT_ROUND_LINES
 * lines "raw <k> <i> <WT_FILL letters>". A kernel that switches tasks in
 * the middle of a write mixes the two children's lines; the judge
 * (test_write_tick.py) checks that every line a child reports ("wrote k=
 * lines=") came out whole.
 *
 * No task prints a marker while a child may be inside a raw write: the
 * children start once the parent has printed its last line and both are
 * in the phase, and report once both are past it. The parent exits after
 * cloning.
 *
 * Seed draws: the fill letters: child 0's is 'a' + d % 26, child 1's the
 * next letter. */
#include "ulib.h"

#define WT_PHASE_WAIT 10000000UL /* bound on a wait (~25 of the bundled kernel's slices) */
#define WT_ROUNDS 3              /* slice ends each child aims a write at */
#define WT_ROUND_LINES 3         /* lines a round writes at most (the middle one holds the tick) */
#define WT_FILL 960              /* letters a raw line holds: near WRITE_MAX (1024) with its head */
#define WT_RAW_MAX (WT_FILL + 32)
#define WT_LETTERS 26

static volatile unsigned long wt_beat[2]; /* bumped on every turn of a child's wait */
static volatile int wt_writing[2];        /* in the write phase (0, 1), or past it (2) */
static volatile int wt_parent_done;       /* the parent has printed its last line */
static char wt_letter[2];
static char wt_raw[2][WT_RAW_MAX];

/* Spin until child 1 - k has beaten (the caller was switched out and is back
 * at the start of a slice) or `turns` turns have passed; the turns spun.
 * Not inlined: every caller must spin the same loop, turn for turn. */
static __attribute__((noinline)) unsigned long wt_until_switched(unsigned long k, unsigned long turns)
{
    unsigned long seen = wt_beat[1 - k], n = 0;

    while (wt_beat[1 - k] == seen && n < turns) {
        wt_beat[k]++;
        n++;
    }
    return n;
}

/* Wait until the other child's write phase state is at least `state` and
 * the parent is done; 0 if the wait gave up (a kernel that never switches). */
static int wt_await(unsigned long k, int state)
{
    for (unsigned long n = 0; wt_writing[1 - k] < state || !wt_parent_done; n++) {
        if (n == U_WAIT(WT_PHASE_WAIT))
            return 0;
        wt_beat[k]++;
    }
    return 1;
}

/* Wait for the next switch-in (wt_until_switched); 0 if it never came. */
static int wt_switched(unsigned long k)
{
    return wt_until_switched(k, U_WAIT(WT_PHASE_WAIT)) < U_WAIT(WT_PHASE_WAIT);
}

/* Write raw line i of child k (one write call, no lock); 1 if the other
 * child beat meanwhile (the caller was switched out and back in). */
static int wt_raw_line(unsigned long k, unsigned long i)
{
    unsigned long seen = wt_beat[1 - k];
    int head = u_snprintf(wt_raw[k], WT_RAW_MAX, "raw %lu %lu ", k, i);

    u_fill(wt_raw[k] + head, wt_letter[k], WT_FILL);
    wt_raw[k][head + WT_FILL] = '\n';
    wt_raw[k][head + WT_FILL + 1] = '\0';
    u_write(wt_raw[k]);
    return wt_beat[1 - k] != seen;
}

/* Child k's raw lines (module comment); returns how many it wrote. It
 * gives up as soon as a wait for the other child does (a kernel that
 * never switches: fairness's judges name that). */
static unsigned long wt_write_phase(unsigned long k)
{
    unsigned long slice, line, lines = 0;
    int fresh = 0;

    wt_writing[k] = 1;
    if (!wt_await(k, 1) || !wt_switched(k))           /* now at a slice's start */
        goto out;
    slice = wt_until_switched(k, U_WAIT(WT_PHASE_WAIT)); /* one whole slice, in turns */
    if (slice == U_WAIT(WT_PHASE_WAIT))
        goto out;
    fresh = wt_raw_line(k, lines++);
    line = fresh ? slice : slice - wt_until_switched(k, slice); /* one line's cost */
    for (int r = 0; r < WT_ROUNDS; r++) {
        unsigned long lead = slice > line + line / 2 ? slice - line - line / 2 : 0;

        if (!fresh && !wt_switched(k))
            break;
        fresh = wt_until_switched(k, lead) < lead; /* switched out early: start over */
        for (int n = 0; !fresh && n < WT_ROUND_LINES; n++)
            fresh = wt_raw_line(k, lines++);
    }
out:
    wt_writing[k] = 2;
    wt_await(k, 2);
    return lines;
}

/* Child k: its raw lines, then how many it wrote. */
static long wt_child(unsigned long k)
{
    unsigned long lines = wt_write_phase(k);

    u_printf("wrote k=%lu lines=%lu fill=%d\n", k, lines, WT_FILL);
    return 0;
}

USER_SCENARIO(write_tick)
{
    struct u_rng rng;

    u_rng_seed(&rng, seed);
    wt_letter[0] = (char)('a' + u_rng_next(&rng) % WT_LETTERS);
    wt_letter[1] = (char)('a' + (wt_letter[0] - 'a' + 1) % WT_LETTERS);
    for (unsigned long k = 0; k < 2; k++)
        u_printf("clone k=%lu ret=%ld\n", k, u_clone(wt_child, k, u_malloc()));
    wt_parent_done = 1;
}
