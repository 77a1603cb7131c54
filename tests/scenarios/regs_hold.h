/* regs_hold.h: the layout shared by regs_preserved.c and regs_hold.S.
 *
 * Two tasks (sides 0 and 1) hold every register they can while they pass
 * a turn word back and forth: side p steps (turn += 1) when turn % 2 == p.
 * A hold ends once the partner has stepped after this side's own step: the
 * partner ran, so this side was preempted while holding (one core, no
 * syscall inside the hold). Every loop turn inside the hold compares every
 * held register, sp and NZCV with what was loaded; the first difference
 * ends the hold at once, with the registers as found, and releases the
 * partner (turn = RP_LIMIT). */
#ifndef REGS_HOLD_H
#define REGS_HOLD_H

#define RP_HOLDS 2                      /* holds per side and register set */
#define RP_LIMIT (2 * RP_HOLDS + 1)     /* turn: both sides are done */

/* struct rp_pair, in bytes */
#define RP_TURN 0
#define RP_SIDE(p) (16+(p)*560)         /* struct rp_side side[2] */
#define RP_EXP 0        /* u64 exp[32]: x0..x30, NZCV to hold */
#define RP_SPB 256      /* u64: sp inside the hold (set by the hold) */
#define RP_BUDGET 264   /* u64: loop turns left (0: leave) */
#define RP_SAW 272      /* u64: 0 not stepped, 1 stepped, 2 the partner stepped after */
#define RP_BROKE 280    /* u64: ~0, or the turn at which a register differed */
#define RP_OUT 288      /* u64 out[34]: x0..x30, NZCV, sp after, sp before */

#endif
