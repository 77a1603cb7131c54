/* el0_faults: children that each do one thing EL0 may not do (read a
 * system register, mask IRQs, an undefined instruction, a breakpoint, a
 * misaligned load, a load through a misaligned sp, a branch to a
 * misaligned address). Each must be killed alone: a fault marker, its
 * pages freed, a zombie with reason=fault. A CPU-bound sibling and the
 * parent go on and print after the faults. Each child mallocs
 * EF_CHILD_PAGES pages, prints "f<k> kind=.. pc=0x.. addr=0x.. page=0x.."
 * (the faulting instruction, the address it uses, its first page) before
 * its fault and "survived" if it is not killed. After the faults the
 * parent mallocs up to EF_BACK_TRIES pages and says which of the
 * children's malloc'd pages it got back ("parent after=1 back=<mask>",
 * bit k * EF_CHILD_PAGES + i: page i of kind k): a kill must free them
 * all, not only the stack. The judge (test_el0_faults.py) compares these
 * with the fault markers.
 *
 * Seed draws, in order: the order of the kinds (a shuffle, one draw per
 * position), the misalignment of the load (1 + d % 7), sibling word. */
#include "ulib.h"

#define EF_KINDS 7
#define EF_WAIT_MAX 50000000UL /* bound on any busy wait */
#define EF_CHILD_PAGES 2       /* pages each faulting child mallocs */
/* The parent's mallocs looking for them: twice the pages the children had
 * (their stacks too), so any allocator that hands out freed pages soon will. */
#define EF_BACK_TRIES (2 * EF_KINDS * (EF_CHILD_PAGES + 1))

void ef_sysreg(void);
void ef_daif(void);
void ef_udf(void);
void ef_brk(void);
void ef_load(u64 addr);
void ef_sp(void);
void ef_pc(u64 target);
extern const char ef_pc_sysreg[], ef_pc_daif[], ef_pc_udf[], ef_pc_brk[],
    ef_pc_load[], ef_pc_sp[], ef_pc_branch[], ef_pc_target[];

static const char *const ef_names[EF_KINDS] = {
    "sysreg", "daif", "udf", "brk", "load", "sp", "pc",
};
static u64 ef_buf[4];            /* the misaligned load reads in here */
static u64 ef_load_off;
static u64 ef_word;
static u64 ef_pages[EF_KINDS][EF_CHILD_PAGES]; /* what each child malloc'd */
static volatile int ef_flag[EF_KINDS]; /* child of kind k is about to fault */
static volatile u64 ef_sibling_turns;
static volatile int ef_parent_done;

/* Where kind k faults (the instruction) and the address it touches. */
static void ef_where(unsigned long k, u64 *pc, u64 *addr)
{
    static const char *const pcs[EF_KINDS] = {
        ef_pc_sysreg, ef_pc_daif, ef_pc_udf, ef_pc_brk, ef_pc_load,
        ef_pc_sp, ef_pc_branch,
    };

    *pc = (u64)pcs[k];
    *addr = 0;
    if (k == 4)
        *addr = (u64)ef_buf + ef_load_off;
    if (k == 6)
        *addr = (u64)ef_pc_target + 2;
}

/* A faulting child: take its pages, say what it will do, do it. */
static long ef_child(unsigned long k)
{
    u64 pc, addr;

    ef_where(k, &pc, &addr);
    for (int i = 0; i < EF_CHILD_PAGES; i++)
        ef_pages[k][i] = (u64)u_malloc();
    u_printf("f%lu kind=%s pc=0x%lx addr=0x%lx page=0x%lx\n", k, ef_names[k], pc,
             addr, ef_pages[k][0]);
    u_expect_death();
    ef_flag[k] = 1;
    switch (k) {
    case 0: ef_sysreg(); break;
    case 1: ef_daif(); break;
    case 2: ef_udf(); break;
    case 3: ef_brk(); break;
    case 4: ef_load(addr); break;
    case 5: ef_sp(); break;
    default: ef_pc(addr); break;
    }
    u_printf("survived k=%lu kind=%s\n", k, ef_names[k]);
    return 0;
}

/* Whether every faulting child has reached its fault. */
static int ef_all_flagged(void)
{
    for (int k = 0; k < EF_KINDS; k++)
        if (!ef_flag[k])
            return 0;
    return 1;
}

/* Which of the children's malloc'd pages come back to the parent within
 * EF_BACK_TRIES mallocs: bit k * EF_CHILD_PAGES + i for page i of kind k. */
static u64 ef_pages_back(void)
{
    u64 back = 0, all = (1UL << (EF_KINDS * EF_CHILD_PAGES)) - 1;

    for (unsigned long t = 0; t < EF_BACK_TRIES && back != all; t++) {
        u64 p = (u64)u_malloc();

        if (p == (u64)MALLOC_FAILED)
            break;
        for (int k = 0; k < EF_KINDS; k++)
            for (int i = 0; i < EF_CHILD_PAGES; i++)
                if (p == ef_pages[k][i])
                    back |= 1UL << (k * EF_CHILD_PAGES + i);
    }
    return back;
}

/* The sibling: busy (counting turns) until the parent has seen the faults
 * through, then says it is still alive. */
static long ef_sibling(unsigned long arg)
{
    unsigned long w;

    (void)arg;
    for (w = 0; !ef_parent_done && w < U_WAIT(EF_WAIT_MAX); w++)
        ef_sibling_turns++;
    u_printf("sibling after=1 word=0x%lx\n", ef_word);
    return 0;
}

USER_SCENARIO(el0_faults)
{
    struct u_rng rng;
    unsigned long order[EF_KINDS], w;
    u64 seen, back;

    u_rng_seed(&rng, seed);
    for (unsigned long i = 0; i < EF_KINDS; i++)
        order[i] = i;
    for (unsigned long i = EF_KINDS - 1; i > 0; i--) {
        unsigned long j = u_rng_next(&rng) % (i + 1), tmp = order[i];
        order[i] = order[j];
        order[j] = tmp;
    }
    ef_load_off = 1 + u_rng_next(&rng) % 7;
    ef_word = u_rng_next(&rng);

    u_printf("sibling ret=%ld\n", u_clone(ef_sibling, 0, u_malloc()));
    for (unsigned long i = 0; i < EF_KINDS; i++)
        u_printf("clone k=%lu ret=%ld\n", order[i],
                 u_clone(ef_child, order[i], u_malloc()));
    for (w = 0; !ef_all_flagged() && w < U_WAIT(EF_WAIT_MAX); w++)
        ;
    /* Each child sets its flag just before its faulting instruction; let
     * the scheduler go round a few more times so that all have faulted:
     * the sibling must have run anew three times. */
    for (int turns = 0; turns < 3; turns++) {
        seen = ef_sibling_turns;
        for (w = 0; ef_sibling_turns == seen && w < U_WAIT(EF_WAIT_MAX); w++)
            ;
    }
    back = ef_pages_back();
    ef_parent_done = 1;
    u_printf("parent after=1 back=0x%lx\n", back);
}
