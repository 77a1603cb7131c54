/* gpio.c: route GPIO 14/15 to a UART, without pull-up/down. */
#include "gpio.h"
#include "mmio.h"

#define GPFSEL1         (PERIPHERAL_BASE + 0x200004)
#define GPPUD           (PERIPHERAL_BASE + 0x200094)
#define GPPUDCLK0       (PERIPHERAL_BASE + 0x200098)
#define FSEL_BITS       3      /* bits per pin in a GPFSEL register */
#define FSEL_MASK       7
#define PINS_PER_FSEL   10
#define UART_TX_PIN     14
#define UART_RX_PIN     15
#define PUD_SETTLE      150    /* cycles the pull-up/down change needs */

/* fsel_shift: bit position of a pin's function field in its GPFSEL. */
static unsigned fsel_shift(unsigned pin)
{
    return (pin % PINS_PER_FSEL) * FSEL_BITS;
}

void gpio_use_for_uart(enum gpio_func func)
{
    u32 sel = mmio_read(GPFSEL1);

    sel &= ~((u32)FSEL_MASK << fsel_shift(UART_TX_PIN));
    sel &= ~((u32)FSEL_MASK << fsel_shift(UART_RX_PIN));
    sel |= (u32)func << fsel_shift(UART_TX_PIN);
    sel |= (u32)func << fsel_shift(UART_RX_PIN);
    mmio_write(GPFSEL1, sel);

    mmio_write(GPPUD, 0);
    delay_cycles(PUD_SETTLE);
    mmio_write(GPPUDCLK0, (1u << UART_TX_PIN) | (1u << UART_RX_PIN));
    delay_cycles(PUD_SETTLE);
    mmio_write(GPPUDCLK0, 0);
}
