/* malloc_exhaustion: the first task clones child C and exits. C keeps one
 * page aside, then takes every free page of the pool, checking that each is
 * zeroed and then dirtying it with a seed pattern and stamping its first
 * word with pattern ^ index (a page given twice loses its first stamp:
 * "clobbered"); it calls malloc a few
 * more times once it gets -1, shows it can still write, clones G on the page
 * it kept aside, and exits. G retries malloc until C's pages are back and
 * checks the pages it gets are zeroed. Nobody busy-waits while C works.
 * The judge (test_malloc_exhaustion.py) checks the addresses against the
 * pool and the page events.
 *
 * Seed draws, in order: extra (2 + d % 4 calls after the first failure),
 * pattern (the word C fills its pages with), pages G takes (2 + d % 3). */
#include "ulib.h"

#define ME_MAX_CALLS 4096UL    /* stop even if malloc never fails */
#define ME_WINDOW_PAGES ME_MAX_CALLS /* pages above the first stack C may touch */
#define ME_POLL 2000UL         /* G: spin turns between two malloc attempts */
#define ME_RETRIES 5000UL      /* G: malloc attempts before giving up */

static u64 me_pool_lo;          /* the first task's stack page: the pool's first */
static u64 me_pattern;
static unsigned long me_extra;
static unsigned long me_pages;
static u64 me_got[ME_MAX_CALLS];  /* C's pages, in the order malloc gave them */

/* Words of the page at p that are not 0. */
static unsigned long me_nonzero(const u64 *p)
{
    unsigned long n = 0;

    for (unsigned long i = 0; i < U_PAGE_SIZE / 8; i++)
        n += p[i] != 0;
    return n;
}

/* Whether p is a page the child may touch: page-aligned, inside the pool
 * as far as EL0 can tell (a bad kernel could return anything). */
static int me_plausible(u64 p)
{
    return (p & (U_PAGE_SIZE - 1)) == 0 && p >= me_pool_lo &&
           p < me_pool_lo + ME_WINDOW_PAGES * U_PAGE_SIZE;
}

/* G: once C has exited its pages are free again: take me_pages of them. */
static long me_grandchild(unsigned long arg)
{
    unsigned long failed;
    u64 p = (u64)MALLOC_FAILED;

    (void)arg;
    for (failed = 0; failed < U_WAIT(ME_RETRIES); failed++) {
        p = (u64)u_malloc();
        if (p != (u64)MALLOC_FAILED)
            break;
        u_spin(ME_POLL);
    }
    u_printf("g failed=%lu got=0x%lx\n", failed, p);
    for (unsigned long i = 0; i < me_pages && p != (u64)MALLOC_FAILED; i++) {
        if (i > 0)
            p = (u64)u_malloc();
        u_printf("page%lu addr=0x%lx nonzero=%lu\n", i, p,
                 me_plausible(p) ? me_nonzero((const u64 *)p) : 0UL);
    }
    u_printf("g done=1\n");
    return 0;
}

/* Pages of me_got[0..count) whose first word no longer holds the stamp C
 * wrote there (pattern ^ index): a page handed out twice, or not memory. */
static unsigned long me_clobbered(unsigned long count)
{
    unsigned long n = 0;

    for (unsigned long i = 0; i < count; i++)
        if (me_plausible(me_got[i]) && *(volatile u64 *)me_got[i] != (me_pattern ^ i))
            n++;
    return n;
}

/* C: keep a page for G, exhaust the pool, report, clone G, exit. */
static long me_child(unsigned long arg)
{
    u64 count = 0, sum = 0, x = 0, lo = ~0UL, hi = 0, dirty = 0, last;
    void *g_stack = u_malloc();

    (void)arg;
    for (;;) {
        last = (u64)u_malloc();
        if (last == (u64)MALLOC_FAILED || last == 0 ||
            (last & (U_PAGE_SIZE - 1)) != 0 || count == ME_MAX_CALLS)
            break;
        count++;
        sum += last;
        x ^= last;
        lo = last < lo ? last : lo;
        hi = last > hi ? last : hi;
        me_got[count - 1] = last;
        if (me_plausible(last)) {
            dirty += me_nonzero((const u64 *)last) != 0;
            u_fill64((u64 *)last, me_pattern, U_PAGE_SIZE / 8);
            *(volatile u64 *)last = me_pattern ^ (count - 1); /* this page's stamp */
        }
    }
    u_printf("child count=%lu sum=0x%lx xor=0x%lx lo=0x%lx hi=0x%lx\n", count,
             sum, x, lo, hi);
    u_printf("child end=0x%lx dirty=%lu clobbered=%lu\n", last, dirty, me_clobbered(count));
    for (unsigned long i = 0; i < me_extra; i++)
        u_printf("again i=%lu ret=0x%lx\n", i, (u64)u_malloc());
    u_printf("child wrote=%ld\n", u_write("still writing\n"));
    u_printf("child g_stack=0x%lx clone=%ld\n", (u64)g_stack,
             u_clone(me_grandchild, 0, g_stack));
    return 0;
}

USER_SCENARIO(malloc_exhaustion)
{
    struct u_rng rng;
    void *stack;

    u_rng_seed(&rng, seed);
    me_extra = 2 + u_rng_next(&rng) % 4;
    me_pattern = u_rng_next(&rng);
    me_pages = 2 + u_rng_next(&rng) % 3;
    me_pool_lo = ((u64)&rng) & ~(U_PAGE_SIZE - 1);

    stack = u_malloc();
    u_printf("parent stack=0x%lx clone=%ld\n", (u64)stack,
             u_clone(me_child, 0, stack));
    /* The first task is done: its exit frees its stack page for C. */
}
