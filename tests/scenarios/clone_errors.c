/* clone_errors: clone with bad stacks (misaligned, NULL, in the user
 * section, in the kernel, past RAM, a free pool page, the caller's own
 * stack page, pages owned by another task) must fail with -EINVAL and
 * change nothing. Then a chain of children fills the task table: each
 * filler mallocs a page, clones the next filler on it and spins until
 * released, so the table fills at the pace of the scheduler, not of one
 * task's slices; the chain ends when a clone fails (-EAGAIN). The parent's
 * own clone must then fail with -EAGAIN too (and a bad stack must still get
 * -EINVAL first). The fillers are released, all exit, and one more clone
 * must succeed in a reused zombie slot. Last, the caller's sp on a page's
 * edges (clone_edge.S): at the page's top the page holds the caller's
 * stack (-EINVAL); at its bottom the stack is in the page below, so clone
 * succeeds (the child exits at once and the parent waits until it has).
 * The parent prints "c_<case> stack=0x.. ret=.." per call (the sp cases
 * add "sp=0x..") and "fill i=.. stack=.. ret=.." per chain link; the judge
 * (test_clone_errors.py) replays the task events.
 *
 * Seed draws, in order: mis (misalignment, 1 + d % 4095), word (printed by
 * the last child). */
#include "ulib.h"

#define CE_MAX_FILL 20         /* chain links at most (a broken kernel) */
#define CE_WAIT_MAX 50000000UL /* bound on any busy wait (a broken kernel) */
#define CE_FLAG_TURN 4UL       /* a ce_wait_for turn is ~4 of a plain wait loop's */
#define CE_RETRIES 2000UL      /* final clone attempts */
#define CE_OUTLIVE_POLLS 8UL   /* bound on the checks that the parent exited (~4 ticks) */
#define CE_EXIT_POLLS 200UL    /* bound on the checks that an sp child exited (U_WAIT) */
#define CE_POLL_SPIN 250000UL  /* u_spin turns between two such checks */

/* clone_edge.S: clone(page) with sp set to `sp` at the svc; the child exits. */
long ce_clone_with_sp(u64 page, u64 sp);

static char ce_user_page[4096] __attribute__((aligned(4096)));
static volatile u64 ce_c1_page;     /* a page C1 owns, published by C1 */
static volatile int ce_release;     /* the fillers may exit */
static volatile int ce_full;        /* a filler's clone failed: table full */
static volatile int ce_parent_done; /* the parent is about to exit */
static volatile u64 ce_parent_page; /* a zeroed page the parent holds until it exits */
static volatile int ce_done[CE_MAX_FILL + 1]; /* filler k is about to exit */
static volatile u64 ce_stack[CE_MAX_FILL];    /* filler k's clone: stack */
static volatile long ce_ret[CE_MAX_FILL];     /* filler k's clone: result */
static volatile int ce_known[CE_MAX_FILL];    /* ce_stack/ce_ret[k] are set */
static u64 ce_word;

/* Spin until *flag is set or the bound (CE_WAIT_MAX plain turns) has
 * passed. A turn holds a dozen nops: QEMU's cost per guest instruction
 * falls with the length of a loop's body (the fillers spin most of the run). */
static void ce_wait_for(const volatile int *flag)
{
    for (unsigned long w = 0; !*flag && w < U_WAIT(CE_WAIT_MAX / CE_FLAG_TURN); w++)
        __asm__ volatile("nop\n\tnop\n\tnop\n\tnop\n\tnop\n\tnop\n\t"
                         "nop\n\tnop\n\tnop\n\tnop\n\tnop\n\tnop" : : : "memory");
}

/* clone(stack) with the child running fn, reported as "c_<name>". */
static long ce_try(const char *name, u64 stack, long (*fn)(unsigned long))
{
    long ret = u_clone(fn, 0, (void *)stack);

    u_printf("c_%s stack=0x%lx ret=%ld\n", name, stack, ret);
    return ret;
}

/* clone(page) made with the caller's sp at page + sp_off, reported as
 * "c_<name> stack=.. sp=.. ret=..". If a child was made, first wait until
 * it has exited: its page is then free, so writing the (zeroed) page stops
 * returning 0 and gets -EFAULT. The table filling starts without it. */
static long ce_try_sp(const char *name, u64 page, u64 sp_off)
{
    u64 sp = page + sp_off;
    long ret = ce_clone_with_sp(page, sp);

    for (unsigned long i = 0; ret > 0 && i < U_WAIT(CE_EXIT_POLLS); i++) {
        if (u_write((const char *)page) == -EFAULT)
            break;
        u_spin(CE_POLL_SPIN);
    }
    u_printf("c_%s stack=0x%lx sp=0x%lx ret=%ld\n", name, page, sp, ret);
    return ret;
}

/* A child that must never run (its clone must fail). */
static long ce_never(unsigned long arg)
{
    (void)arg;
    u_write("a clone that had to fail created this task\n");
    return 0;
}

/* C1: own a page of its own, publish it, and stay live (it counts in the
 * full table) until the fillers are released. */
static long ce_c1(unsigned long arg)
{
    (void)arg;
    ce_c1_page = (u64)u_malloc();
    u_printf("c1 page=0x%lx\n", ce_c1_page);
    ce_wait_for(&ce_release);
    return 0;
}

/* Filler k: clone filler k + 1 on a page of its own (the chain stops at
 * the first failure), then spin until released. The filler whose clone
 * failed, the task that filled the table, then outlives the parent: the
 * run's last task sits in the last slot the table had free. It knows the
 * parent has exited when writing the parent's last (zeroed) page stops
 * returning 0 and gets -EFAULT: the page is free. */
static long ce_filler(unsigned long k)
{
    unsigned long w;
    int filled_it = 1;

    if (k < CE_MAX_FILL) {
        u64 page = (u64)u_malloc();
        long ret = u_clone(ce_filler, k + 1, (void *)page);
        ce_stack[k] = page;
        ce_ret[k] = ret;
        ce_known[k] = 1;
        filled_it = ret <= 0;
    }
    if (filled_it)
        ce_full = 1;
    ce_wait_for(&ce_release);
    if (filled_it) {
        ce_wait_for(&ce_parent_done);
        for (w = 0; w < CE_OUTLIVE_POLLS && u_write((const char *)ce_parent_page) != -EFAULT; w++)
            u_spin(CE_POLL_SPIN);
        u_printf("outlive k=%lu\n", k);
    }
    ce_done[k] = 1;
    return 0;
}

/* The last child, in a reused slot. */
static long ce_last(unsigned long arg)
{
    (void)arg;
    u_printf("last word=0x%lx\n", ce_word);
    return 0;
}

/* Wait until every chain link has recorded its clone; returns the number
 * of fillers (filler 0 and every filler a link created). */
static unsigned long ce_chain_length(void)
{
    unsigned long k, w = 0;

    for (k = 0; k < CE_MAX_FILL; k++) {
        while (!ce_known[k] && w < U_WAIT(CE_WAIT_MAX))
            w++;
        if (!ce_known[k] || ce_ret[k] <= 0)
            break;
    }
    return k + 1;
}

/* Fillers that have not yet said they are done, but the last one (the
 * one that filled the table waits for the parent). */
static unsigned long ce_left(unsigned long fillers)
{
    unsigned long n = 0;

    for (unsigned long k = 0; k + 1 < fillers; k++)
        n += !ce_done[k];
    return n;
}

USER_SCENARIO(clone_errors)
{
    struct u_rng rng;
    u64 mis, s1, stack, chain_stack, sp_page;
    unsigned long fillers, w, tries;
    long ret, chain, full, full_mis;

    u_rng_seed(&rng, seed);
    mis = 1 + u_rng_next(&rng) % 4095;
    ce_word = u_rng_next(&rng);
    sp_page = ((u64)&rng) & ~(U_PAGE_SIZE - 1);

    s1 = (u64)u_malloc();
    u_printf("page s1=0x%lx user=0x%lx sp=0x%lx\n", s1, (u64)ce_user_page, sp_page);
    ce_try("misaligned", s1 + mis, ce_never);
    ce_try("null", 0, ce_never);
    ce_try("user_section", (u64)ce_user_page, ce_never);
    ce_try("kernel", 0x80000UL, ce_never);
    ce_try("past_ram", 0x7f000000UL, ce_never);
    ce_try("free_page", s1 + U_PAGE_SIZE, ce_never);
    ce_try("own_stack", sp_page, ce_never);

    /* Pages another task owns: C1's stack (was s1) and a page C1 took. */
    ce_try("c1", s1, ce_c1);
    for (w = 0; ce_c1_page == 0 && w < U_WAIT(CE_WAIT_MAX); w++)
        ;
    ce_try("other_stack", s1, ce_never);
    ce_try("other_page", ce_c1_page, ce_never);

    /* Fill the table with the chain of fillers, then try once more. While
     * the fillers spin the parent gets one slice in 15: print nothing until
     * they are gone. */
    chain_stack = (u64)u_malloc();
    stack = (u64)u_malloc();
    chain = u_clone(ce_filler, 0, (void *)chain_stack);
    fillers = ce_chain_length();
    full = u_clone(ce_never, 0, (void *)stack);
    full_mis = u_clone(ce_never, 0, (void *)(stack + mis));
    ce_release = 1;
    for (w = 0; ce_left(fillers) && w < U_WAIT(CE_WAIT_MAX); w++)
        ;
    u_printf("c_chain stack=0x%lx ret=%ld\n", chain_stack, chain);
    u_printf("c_full stack=0x%lx ret=%ld\n", stack, full);
    u_printf("c_full_misaligned stack=0x%lx ret=%ld\n", stack + mis, full_mis);
    for (unsigned long k = 0; k < fillers && k < CE_MAX_FILL; k++)
        u_printf("fill i=%lu stack=0x%lx ret=%ld\n", k, ce_stack[k], ce_ret[k]);

    /* Every filler has exited (or is about to): a zombie slot must be
     * reused, possibly after a few -EAGAIN while the last ones finish. */
    for (tries = 0; tries < CE_RETRIES; tries++) {
        ret = u_clone(ce_last, 0, (void *)stack);
        if (ret != -EAGAIN)
            break;
        u_spin(2000);
    }
    u_printf("last tries=%lu stack=0x%lx ret=%ld\n", tries, stack, ret);
    u_printf("parent fillers=%lu left=%lu\n", fillers, ce_left(fillers));

    /* The caller's sp exactly on a page's edges: its top, its bottom. Last,
     * while the filler that filled the table still holds the last slot: a
     * zombie made before the filling would be the slot that filler takes. */
    ce_try_sp("sp_top", (u64)u_malloc(), U_PAGE_SIZE);
    ce_try_sp("sp_below", (u64)u_malloc(), 0);
    ce_parent_page = (u64)u_malloc();
    ce_parent_done = 1;
}
