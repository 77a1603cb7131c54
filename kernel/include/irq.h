/* irq.h: interrupt masking and the IRQ handler. */
#ifndef IRQ_H
#define IRQ_H

/* handle_irq: serve every pending source (called from entry.S). */
void handle_irq(void);

/* irq_wait: sleep until an IRQ is pending and take it (entry.S). */
void irq_wait(void);

#endif
