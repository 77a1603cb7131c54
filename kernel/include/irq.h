/* irq.h: the IRQ handler (irq_wait, the idle loop's wait: sched.h). */
#ifndef IRQ_H
#define IRQ_H

/* handle_irq: serve every pending source (called from entry.S). */
void handle_irq(void);

#endif
