/* timer.c: the ARM generic timer's EL1 physical timer, routed to core 0's
 * IRQ by the BCM2836 local interrupt controller. (The BCM2835 system timer
 * did not preempt under QEMU 7.2.) */
#include "mmio.h"
#include "param.h"
#include "sched.h"
#include "timer.h"

#define CORE0_TIMER_IRQCNTL (LOCAL_BASE + 0x40)
#define TIMER_IRQ_CNTPNS    (1u << 1) /* route nCNTPNSIRQ to IRQ */
#define CNTP_CTL_ENABLE     1         /* timer on, interrupt not masked */

static u64 tick_interval; /* counter ticks per timer tick */

/* counter_frequency: CNTFRQ_EL0, or the Pi 3 crystal if nobody set it. */
static u64 counter_frequency(void)
{
    u64 frq;

    __asm__ volatile("mrs %0, cntfrq_el0" : "=r"(frq));
    return frq ? frq : FALLBACK_CNTFRQ;
}

/* timer_arm: the next interrupt one tick from now. */
static void timer_arm(void)
{
    __asm__ volatile("msr cntp_tval_el0, %0" : : "r"(tick_interval));
}

void timer_init(void)
{
    tick_interval = counter_frequency() / TIMER_HZ;
    mmio_write(CORE0_TIMER_IRQCNTL, TIMER_IRQ_CNTPNS);
    timer_arm();
    __asm__ volatile("msr cntp_ctl_el0, %0" : : "r"((u64)CNTP_CTL_ENABLE));
}

void timer_irq(void)
{
    timer_arm();
    sched_tick();
}
