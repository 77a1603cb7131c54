/* invalid_syscall: svc with unknown numbers (the bound NR_SYSCALLS, seed-chosen
 * larger ones, 32-bit extremes, and x8 values whose high bits are set),
 * each with every register and NZCV filled from the seed (u_regs_svc), and
 * two valid calls whose x8 has high bits set (only w8 counts). The task
 * prints every register it got back; the judge (test_invalid_syscall.py)
 * recomputes the inputs and checks -ENOSYS, that no handler ran, and that
 * nothing else changed.
 *
 * Seed draws, in order: r[0..6] (the numbers, see is_numbers()), then for
 * each call i in order 32 draws: in[i][0..30] = x0..x30 and one NZCV draw
 * (its top 4 bits). x8 is then replaced by the number; for the write, x0 by
 * the text's address. The calls are made in the order is_order(): the two
 * valid ones first, so a kernel that hangs on an unknown number (the
 * lesson's) still shows whether only w8 names the call. */
#include "ulib.h"

#define IS_CALLS 14      /* calls made through u_regs_svc */
#define IS_WRITE_HI 11   /* index of the write with high bits in x8 */
#define IS_MALLOC_HI 12  /* index of the malloc with high bits in x8 */
#define IS_HI (1UL << 32)

static u64 is_in[IS_CALLS][U_REGS_IN];
static u64 is_out[U_REGS_OUT];
static char is_text[64];

/* The x8 values, from the seven draws r[]. Calls 0..10 and 13 are
 * unknown numbers; 11 and 12 are write and malloc with high bits set. */
static void is_numbers(const u64 r[7], u64 nr[IS_CALLS])
{
    nr[0] = NR_SYSCALLS;                          /* the bound itself */
    nr[1] = NR_SYSCALLS + 1;
    nr[2] = NR_SYSCALLS + 1 + r[0] % 996;         /* 5..1000 for 4 syscalls */
    nr[3] = NR_SYSCALLS + 1 + r[1] % 996;
    nr[4] = NR_SYSCALLS + 1 + r[2] % 996;
    nr[5] = (r[3] & 0xffffffffUL) | NR_SYSCALLS;  /* a random 32-bit >= the bound */
    nr[6] = 0xffffffffUL;
    nr[7] = 0x80000000UL;                         /* negative as an int */
    nr[8] = (r[4] << 32) | IS_HI | (NR_SYSCALLS + 3); /* high bits, w8 unknown */
    nr[9] = (r[5] << 32) | IS_HI | (NR_SYSCALLS + r[6] % (IS_HI - NR_SYSCALLS));
    nr[10] = ~0UL;
    nr[IS_WRITE_HI] = (r[6] << 32) | IS_HI | SYS_WRITE;
    nr[IS_MALLOC_HI] = (r[3] << 32) | IS_HI | SYS_MALLOC;
    nr[13] = IS_HI | NR_SYSCALLS;                 /* w8 = the bound again */
}

/* The order the calls are made in: write and malloc with high bits first;
 * then w8 = the bound + 1 before the bound itself, so that a kernel whose
 * bound check lets the bound through (and indexes past its table) is told
 * from one that hangs on every unknown number. */
static const int is_order[IS_CALLS] = {IS_WRITE_HI, IS_MALLOC_HI, 1, 0, 2, 3, 4, 5, 6, 7, 8, 9, 10, 13};

USER_SCENARIO(invalid_syscall)
{
    struct u_rng rng;
    u64 r[7], nr[IS_CALLS];
    char tag[8];

    u_rng_seed(&rng, seed);
    for (int i = 0; i < 7; i++)
        r[i] = u_rng_next(&rng);
    is_numbers(r, nr);
    u_snprintf(is_text, sizeof(is_text), "w8 is write 0x%lx\n", r[6]);
    for (int i = 0; i < IS_CALLS; i++) {
        for (int j = 0; j < 31; j++)
            is_in[i][j] = u_rng_next(&rng);
        is_in[i][31] = (u_rng_next(&rng) >> 60) << 28;
        is_in[i][8] = nr[i];
        if (i == IS_WRITE_HI)
            is_in[i][0] = (u64)is_text;
    }
    for (int k = 0; k < IS_CALLS; k++) {
        int i = is_order[k];

        u_printf("call%d x8=0x%lx x0=0x%lx text=0x%lx\n", i, nr[i], is_in[i][0],
                 (u64)is_text);
        u_regs_svc(is_in[i], is_out);
        u_snprintf(tag, sizeof(tag), "r%d", i);
        u_print_regs(tag, is_out);
    }
    /* The task goes on, and a plain valid call still works. */
    u_printf("after wrote=%ld\n", u_write("plain write after the invalid calls\n"));
}
