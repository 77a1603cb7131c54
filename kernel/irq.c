/* irq.c: IRQ dispatch through the BCM2836 local interrupt controller.
 * Each pending source is served on its own, so two at once are both seen. */
#include "irq.h"
#include "mmio.h"
#include "panic.h"
#include "timer.h"

#define CORE0_IRQ_SOURCE   (LOCAL_BASE + 0x60)
#define IRQ_SRC_CNTPNS     (1u << 1) /* EL1 physical timer */

void handle_irq(void)
{
    u32 pending = mmio_read(CORE0_IRQ_SOURCE);

    if (pending & IRQ_SRC_CNTPNS) {
        pending &= ~IRQ_SRC_CNTPNS;
        timer_irq();
    }
    if (pending)
        panic("EL1 IRQ", pending, 0, 0, "unexpected interrupt source");
}
