/* timer.h: the ARM generic timer (EL1 physical), ticking TIMER_HZ times
 * a second through the BCM2836 local interrupt controller. */
#ifndef TIMER_H
#define TIMER_H

/* timer_init: route the timer IRQ to core 0 and start ticking. */
void timer_init(void);

/* timer_irq: re-arm for the next tick and account this one. */
void timer_irq(void);

#endif
