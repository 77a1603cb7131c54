/* exit_zombie: the first task P clones A and B. A takes a few pages,
 * writes, and exits early with the raw syscall; if exit ever returned, A
 * would write an "after-exit" line and then spin silently forever. B is
 * CPU-bound: once A has exited it counts "turns" (times it sees that P ran
 * since it last looked) until enough context switches have happened,
 * writing a line per turn. P counts until B is done. The judge
 * (test_exit_zombie.py) checks that A is never scheduled again. Then P
 * mallocs once more: the lowest free page is now A's stack, sa. Then P
 * mallocs up to EZ_BACK_TRIES more pages and counts how many of the pages
 * A malloc'd it gets back (an exit must free them, not only the stack).
 *
 * Seed draws, in order: a_word (in A's text), a_pages (1 + d % 3),
 * exit_args[0..2] (x0..x2 of A's exit), b_word (in B's text). */
#include "ulib.h"

#define EZ_TURNS 12            /* P-ran-in-between observations B waits for */
#define EZ_WAIT_MAX 50000000UL /* bound on any busy wait (a broken kernel) */
#define EZ_A_PAGES_MAX 3       /* A mallocs 1 + d % 3 pages */
#define EZ_BACK_TRIES 12       /* P's mallocs looking for A's pages */

static volatile int ez_a_exiting; /* A is about to exit */
static volatile int ez_b_done;    /* B counted its turns */
static volatile u64 ez_counter;   /* P's progress, watched by B */
static u64 ez_a_word, ez_b_word, ez_exit_args[3];
static unsigned long ez_a_pages;
static u64 ez_a_got[EZ_A_PAGES_MAX]; /* the pages A malloc'd */

/* A: own some pages, write, exit for real. Nothing after the exit may run
 * (u_exit_args reports "after-exit" and spins if it does). */
static long ez_a(unsigned long arg)
{
    (void)arg;
    for (unsigned long i = 0; i < ez_a_pages; i++) {
        ez_a_got[i] = (u64)u_malloc();
        u_printf("a page=0x%lx\n", ez_a_got[i]);
    }
    u_printf("a word=0x%lx\n", ez_a_word);
    ez_a_exiting = 1;
    u_exit_args(ez_exit_args[0], ez_exit_args[1], ez_exit_args[2]);
}

/* B: after A's exit, count EZ_TURNS times that P ran in between. */
static long ez_b(unsigned long arg)
{
    unsigned long turns = 0, w;
    u64 seen;

    (void)arg;
    u_printf("b word=0x%lx\n", ez_b_word);
    for (w = 0; !ez_a_exiting && w < U_WAIT(EZ_WAIT_MAX); w++)
        ;
    seen = ez_counter;
    for (w = 0; turns < EZ_TURNS && w < U_WAIT(EZ_WAIT_MAX); w++) {
        if (ez_counter != seen) {
            seen = ez_counter;
            turns++;
            u_printf("b turn=%lu\n", turns);
        }
    }
    u_printf("b done=%lu\n", turns);
    ez_b_done = 1;
    return 0;
}

/* How many of A's malloc'd pages P gets back within EZ_BACK_TRIES mallocs
 * (after A's exit they are free; any allocator hands them out soon). */
static unsigned long ez_pages_back(void)
{
    unsigned long back = 0;

    for (unsigned long t = 0; t < EZ_BACK_TRIES && back < ez_a_pages; t++) {
        u64 p = (u64)u_malloc();

        if (p == (u64)MALLOC_FAILED)
            break;
        for (unsigned long i = 0; i < ez_a_pages; i++)
            back += p == ez_a_got[i];
    }
    return back;
}

USER_SCENARIO(exit_zombie)
{
    struct u_rng rng;
    void *sa, *sb;
    unsigned long w, nonzero = 0;
    u64 *again;

    u_rng_seed(&rng, seed);
    ez_a_word = u_rng_next(&rng);
    ez_a_pages = 1 + u_rng_next(&rng) % 3;
    for (int i = 0; i < 3; i++)
        ez_exit_args[i] = u_rng_next(&rng);
    ez_b_word = u_rng_next(&rng);

    sa = u_malloc();
    sb = u_malloc();
    u_printf("p sa=0x%lx sb=0x%lx\n", (u64)sa, (u64)sb);
    u_printf("p a=%ld\n", u_clone(ez_a, 0, sa));
    u_printf("p b=%ld\n", u_clone(ez_b, 0, sb));
    for (w = 0; !ez_b_done && w < U_WAIT(EZ_WAIT_MAX); w++)
        ez_counter++;
    u_printf("p done=%d\n", ez_b_done);
    /* A's pages are free again: the lowest free page is A's stack, which A
     * used, so only a kernel that zeroes pages hands it out clean. */
    again = (u64 *)u_malloc();
    for (unsigned long i = 0; again != (u64 *)MALLOC_FAILED && i < U_PAGE_SIZE / 8; i++)
        nonzero += again[i] != 0;
    u_printf("p again=0x%lx nonzero=%lu\n", (u64)again, nonzero);
    u_printf("p back=%lu of=%lu\n", ez_pages_back(), ez_a_pages);
}
