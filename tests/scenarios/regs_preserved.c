/* regs_preserved: every register but x0, sp and NZCV must survive valid
 * syscalls (write, malloc: u_regs_svc), and every register, sp and NZCV
 * must survive preemption. For preemption the parent and a sibling hold
 * their registers while passing a turn word back and forth (regs_hold.h,
 * regs_hold.S): a hold ends only once the partner has run, so every hold
 * spans a preemption however slowly the kernel ticks, and each side makes
 * RP_HOLDS holds with each of two register sets (together: x0..x30). The
 * hold compares every register on every loop turn, so a kernel that
 * corrupts one on each tick is caught before a second tick can undo it.
 * Each dump is printed; the judge (test_regs_preserved.py) recomputes the
 * inputs.
 *
 * Seed draws, in order, 32 per register set (x0..x30, then one NZCV draw:
 * its top 4 bits): the write's, the malloc's, then for the holds: the
 * parent's set a, the sibling's set a, the parent's set b, the sibling's
 * set b. For the write x0 is the text's address. */
#include "ulib.h"
#include "regs_hold.h"

/* Loop turns a hold waits before it gives up (marker mode; EL0-marker mode
 * waits as long as the harness lets it, U_WAIT): about 50 ms of guest
 * time on the bundled kernel, many of its slices. */
#define RP_WAIT_TURNS 400000UL
#define RP_SETS 6

struct rp_side {
    u64 exp[U_REGS_IN];
    u64 spb, budget, saw, broke;
    u64 out[U_REGS_OUT];
};

struct rp_pair {
    volatile u64 turn;
    u64 pad;
    struct rp_side side[2];
};

_Static_assert(__builtin_offsetof(struct rp_pair, side[1].exp) == RP_SIDE(1) + RP_EXP, "exp");
_Static_assert(__builtin_offsetof(struct rp_pair, side[1].spb) == RP_SIDE(1) + RP_SPB, "spb");
_Static_assert(__builtin_offsetof(struct rp_pair, side[1].budget) == RP_SIDE(1) + RP_BUDGET, "budget");
_Static_assert(__builtin_offsetof(struct rp_pair, side[1].saw) == RP_SIDE(1) + RP_SAW, "saw");
_Static_assert(__builtin_offsetof(struct rp_pair, side[1].broke) == RP_SIDE(1) + RP_BROKE, "broke");
_Static_assert(__builtin_offsetof(struct rp_pair, side[1].out) == RP_SIDE(1) + RP_OUT, "out");
_Static_assert(sizeof(struct rp_side) == RP_SIDE(1) - RP_SIDE(0), "side size");

void rp_hold_a0(struct rp_pair *pair);
void rp_hold_a1(struct rp_pair *pair);
void rp_hold_b0(struct rp_pair *pair);
void rp_hold_b1(struct rp_pair *pair);

static u64 rp_in[RP_SETS][U_REGS_IN];
static u64 rp_out[2][U_REGS_OUT];
static char rp_text[64];
static struct rp_pair rp_pairs[2];  /* register set a, set b */

/* Side `side`'s holds with both register sets, each dump printed as
 * "hold<set><i>" (e.g. holda1) with a line "hold<set><i> saw=.. broke=..";
 * after its holds with one set the side releases its partner from that
 * set's last hold. */
static void rp_holds(int side)
{
    static void (*const hold[2][2])(struct rp_pair *) = {
        {rp_hold_a0, rp_hold_a1}, {rp_hold_b0, rp_hold_b1}};
    char tag[16];

    for (int set = 0; set < 2; set++) {
        struct rp_pair *pair = &rp_pairs[set];
        struct rp_side *me = &pair->side[side];

        for (int i = 1; i <= RP_HOLDS; i++) {
            for (int r = 0; r < U_REGS_IN; r++)
                me->exp[r] = rp_in[2 + 2 * set + side][r];
            me->saw = 0;
            me->broke = ~0UL;
            me->budget = U_WAIT(RP_WAIT_TURNS);
            hold[set][side](pair);
            u_snprintf(tag, sizeof(tag), "hold%c%d", "ab"[set], i);
            u_print_regs(tag, me->out);
            u_printf("%s saw=%lu broke=%ld\n", tag, me->saw, (long)me->broke);
        }
        pair->turn = RP_LIMIT;
    }
}

/* The sibling: side 1. */
static long rp_child(unsigned long arg)
{
    (void)arg;
    rp_holds(1);
    return 0;
}

USER_SCENARIO(regs_preserved)
{
    struct u_rng rng;
    long ret;

    u_rng_seed(&rng, seed);
    for (int k = 0; k < RP_SETS; k++) {
        for (int i = 0; i < 31; i++)
            rp_in[k][i] = u_rng_next(&rng);
        rp_in[k][31] = (u_rng_next(&rng) >> 60) << 28;
    }
    u_snprintf(rp_text, sizeof(rp_text), "registers kept 0x%lx\n", rp_in[0][1]);

    /* Valid syscalls. */
    rp_in[0][0] = (u64)rp_text;
    rp_in[0][8] = SYS_WRITE;
    rp_in[1][8] = SYS_MALLOC;
    u_printf("text addr=0x%lx\n", (u64)rp_text);
    u_regs_svc(rp_in[0], rp_out[0]);
    u_print_regs("write", rp_out[0]);
    u_regs_svc(rp_in[1], rp_out[1]);
    u_print_regs("malloc", rp_out[1]);

    /* Preemption: parent (side 0) and sibling (side 1) hold side by side. */
    ret = u_clone(rp_child, 0, u_malloc());
    u_printf("clone ret=%ld\n", ret);
    if (ret > 0)
        rp_holds(0);
}
