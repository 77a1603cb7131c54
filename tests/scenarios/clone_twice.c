/* clone_twice: two raw clones, each with the caller's registers filled
 * from the seed (clone_probe.S). The parent prints what its registers held
 * after each clone; each child prints the registers it woke up with and
 * the argument it got, then both children run rounds that can only
 * progress when the other one has run (so preemption must interleave
 * them), and exit. The judge (test_clone_twice.py) recomputes every value.
 *
 * Seed draws, in order: arg[0], arg[1]; then for k = 0, 1: 31 register
 * values in[k][0..30] and one NZCV draw (its top 4 bits). */
#include "ulib.h"

#define CT_ROUNDS 4             /* progress lines per child */
#define CT_WAIT_MAX 20000000UL  /* bound on a wait for the other child */

long ct_clone_probe(void *stack, const u64 *in, u64 *out_parent,
                    u64 *out_child, long (*fn)(u64, u64 *), u64 arg);

static u64 ct_in[2][U_REGS_IN];
static u64 ct_parent_regs[2][U_REGS_OUT];
static u64 ct_child_regs[2][U_REGS_OUT];
static u64 ct_arg[2];
static volatile unsigned long ct_rounds[2]; /* rounds each child finished */

/* Which child (0 or 1) was given arg; 2 if neither. */
static int ct_which(u64 arg)
{
    return arg == ct_arg[0] ? 0 : arg == ct_arg[1] ? 1 : 2;
}

/* Child body: report what clone left in the registers, then run rounds
 * that each wait (bounded) for the other child to have run. */
static long ct_child(u64 arg, u64 *regs)
{
    int k = ct_which(arg);
    char tag[16];

    u_printf("child arg=0x%lx k=%d\n", arg, k);
    u_snprintf(tag, sizeof(tag), "child%d", k);
    u_print_regs(tag, regs);
    if (k > 1)
        return 0;
    for (unsigned long r = 0; r < CT_ROUNDS; r++) {
        u_printf("round k=%d r=%lu other=%lu\n", k, r, ct_rounds[1 - k]);
        ct_rounds[k] = r + 1;
        for (unsigned long w = 0; w < U_WAIT(CT_WAIT_MAX); w++)
            if (ct_rounds[1 - k] > r || ct_rounds[1 - k] == CT_ROUNDS)
                break;
    }
    u_printf("done k=%d\n", k);
    return 0;
}

USER_SCENARIO(clone_twice)
{
    struct u_rng rng;

    u_rng_seed(&rng, seed);
    ct_arg[0] = u_rng_next(&rng);
    ct_arg[1] = u_rng_next(&rng);
    for (int k = 0; k < 2; k++) {
        for (int i = 0; i < 31; i++)
            ct_in[k][i] = u_rng_next(&rng);
        ct_in[k][31] = (u_rng_next(&rng) >> 60) << 28;
    }
    u_printf("parent seed=0x%lx\n", seed);
    for (int k = 0; k < 2; k++) {
        void *stack = u_malloc();
        char tag[16];
        long pid;

        u_printf("before%d stack=0x%lx x2=0x%lx x3=0x%lx x4=0x%lx x5=0x%lx\n",
                 k, (u64)stack, (u64)ct_parent_regs[k], (u64)ct_child_regs[k],
                 (u64)ct_child, ct_arg[k]);
        u_expect_child(stack);
        pid = ct_clone_probe(stack, ct_in[k], ct_parent_regs[k],
                             ct_child_regs[k], ct_child, ct_arg[k]);
        u_cloned(pid);
        u_printf("clone%d ret=%ld\n", k, pid);
        u_snprintf(tag, sizeof(tag), "parent%d", k);
        u_print_regs(tag, ct_parent_regs[k]);
    }
    /* The parent's own stack and locals must have survived: the next
     * draw continues the sequence. */
    u_printf("parent next=0x%lx\n", u_rng_next(&rng));
}
