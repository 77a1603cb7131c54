/* malloc_race: two children call malloc right where their time slices end,
 * so that a tick, and the switch it makes, lands while one of them is
 * inside malloc and the other then calls malloc too. A kernel whose malloc
 * can be preempted between finding a free page and marking it used then
 * hands one page to both (the judge, test_malloc_race.py, replays the
 * palloc markers). This kernel is not preemptible: it never happens here.
 *
 * The first task clones the two children and exits. Each child counts
 * its progress in mr_prog[k] turn by turn; the other child's count
 * changing means this one was switched out and is back. A child first
 * measures one whole slice of its own in loop turns (as fairness does),
 * then, MR_ROUNDS times: right after being switched in it calls malloc
 * once (the other child may be inside malloc, switched out there), spins
 * through most of its slice, and calls malloc back to back from
 * slice / MR_BURST_PART + d % (slice / MR_JITTER_PART) turns before the
 * slice's end until it is switched out. The jitter, a few mallocs long and
 * drawn anew each round, moves where in a malloc the tick lands: rounds
 * alike would all miss or all hit. Output: one line per child at the end.
 *
 * Seed draws, in order: child 0's key, child 1's key; each child then
 * draws from its key one d per round. */
#include "ulib.h"

#define MR_ROUNDS 8            /* slices a child ends inside a malloc burst */
#define MR_BURST_MAX 64UL      /* mallocs a burst at most (a slice that does not end) */
#define MR_WAIT_MAX 50000000UL /* bound on a wait for the other child (a kernel that never switches) */
#define MR_BURST_PART 64UL     /* a burst starts 1/64 of a slice before its end ... */
#define MR_JITTER_PART 128UL   /* ... plus up to 1/128 more, drawn each round */

static volatile unsigned long mr_prog[2]; /* loop turns each child has made */
static volatile int mr_done[2];
static u64 mr_key[2];

/* Whether child k must wait no more: the other child ran since `seen`,
 * or it has finished. */
static int mr_other_moved(unsigned long k, unsigned long seen)
{
    return mr_prog[1 - k] != seen || mr_done[1 - k];
}

/* Spin at most `max` turns, counting them, until the other child has run
 * (or finished); returns the turns. Not inlined: a turn must cost the same
 * where the slice is measured and where it is spent. */
static __attribute__((noinline)) unsigned long mr_spin(unsigned long k, unsigned long seen, unsigned long max)
{
    unsigned long turns = 0;

    while (!mr_other_moved(k, seen) && turns < max) {
        mr_prog[k]++;
        turns++;
    }
    return turns;
}

/* Child k: a measured slice, then MR_ROUNDS slices ended in a malloc burst. */
static long mr_child(unsigned long k)
{
    unsigned long slice, mallocs = 0, rounds;
    struct u_rng rng;

    u_rng_seed(&rng, mr_key[k]);
    mr_spin(k, mr_prog[1 - k], U_WAIT(MR_WAIT_MAX)); /* until a switch-in */
    slice = mr_spin(k, mr_prog[1 - k], U_WAIT(MR_WAIT_MAX));
    for (rounds = 0; rounds < MR_ROUNDS && !mr_done[1 - k]; rounds++) {
        unsigned long seen = mr_prog[1 - k], burst = 0;
        unsigned long early = slice / MR_BURST_PART + u_rng_next(&rng) % (slice / MR_JITTER_PART + 1);

        u_malloc(); /* just switched in: the other child may be inside malloc */
        mallocs++;
        mr_spin(k, seen, slice > early ? slice - early : 0);
        while (!mr_other_moved(k, seen) && burst < MR_BURST_MAX) {
            u_malloc();
            mallocs++;
            burst++;
            mr_prog[k]++;
        }
        mr_spin(k, seen, U_WAIT(MR_WAIT_MAX));
    }
    mr_done[k] = 1;
    u_printf("race k=%lu slice=%lu rounds=%lu mallocs=%lu\n", k, slice, rounds, mallocs);
    return 0;
}

USER_SCENARIO(malloc_race)
{
    struct u_rng rng;

    u_rng_seed(&rng, seed);
    mr_key[0] = u_rng_next(&rng);
    mr_key[1] = u_rng_next(&rng);
    for (unsigned long k = 0; k < 2; k++)
        u_printf("clone k=%lu ret=%ld\n", k, u_clone(mr_child, k, u_malloc()));
}
