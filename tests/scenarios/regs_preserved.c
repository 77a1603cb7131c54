/* regs_preserved: every register but x0, sp and NZCV must survive valid
 * syscalls (write, malloc: u_regs_svc) and preemption (u_regs_spin busy-
 * waits with x0 alone, no flags, while the timer interrupts it and a
 * sibling doing the same spin is switched in and out). Each dump is
 * printed; the judge (test_regs_preserved.py) recomputes the inputs.
 *
 * Seed draws, in order, 32 per register set (x0..x30, then one NZCV draw:
 * its top 4 bits): the write's, the malloc's, the parent's spin, the
 * child's spin; then the two spin counts (SPIN_BASE + d % SPIN_SPAN). For
 * the write x0 is the text's address; for the spins x0 is the count. */
#include "ulib.h"

#define SPIN_BASE 8000000UL  /* loop turns: ~16 M instructions: ~16 ticks, and
                                * several even in real time on a fast host */
#define SPIN_SPAN 1000000UL

static u64 rp_in[4][U_REGS_IN];
static u64 rp_out[4][U_REGS_OUT];
static char rp_text[64];
static volatile int rp_child_ready;

/* Spin with register set k and print the dump as "spin<k>". */
static void rp_spin(int k)
{
    char tag[8];

    u_printf("begin%d n=%lu\n", k, rp_in[k][0]);
    u_regs_spin(rp_in[k], rp_out[k]);
    u_snprintf(tag, sizeof(tag), "spin%d", k);
    u_print_regs(tag, rp_out[k]);
}

/* The sibling: the same spin with its own values. */
static long rp_child(unsigned long arg)
{
    (void)arg;
    rp_child_ready = 1;
    rp_spin(3);
    return 0;
}

USER_SCENARIO(regs_preserved)
{
    struct u_rng rng;

    u_rng_seed(&rng, seed);
    for (int k = 0; k < 4; k++) {
        for (int i = 0; i < 31; i++)
            rp_in[k][i] = u_rng_next(&rng);
        rp_in[k][31] = (u_rng_next(&rng) >> 60) << 28;
    }
    rp_in[2][0] = SPIN_BASE + u_rng_next(&rng) % SPIN_SPAN;
    rp_in[3][0] = SPIN_BASE + u_rng_next(&rng) % SPIN_SPAN;
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

    /* Preemption: parent and child spin side by side. */
    u_printf("clone ret=%ld\n", u_clone(rp_child, 0, u_malloc()));
    rp_spin(2);
}
