/* uart_mini.c: the mini UART (UART1, AUX) as the console: GPIO 14/15 ALT5,
 * the Pi 3's default console pins. Under QEMU it is -serial number 2. */
#include "gpio.h"
#include "mmio.h"
#include "uart.h"

#define AUX_ENABLES     (PERIPHERAL_BASE + 0x215004)
#define AUX_MU_IO       (PERIPHERAL_BASE + 0x215040)
#define AUX_MU_IER      (PERIPHERAL_BASE + 0x215044)
#define AUX_MU_IIR      (PERIPHERAL_BASE + 0x215048)
#define AUX_MU_LCR      (PERIPHERAL_BASE + 0x21504C)
#define AUX_MU_MCR      (PERIPHERAL_BASE + 0x215050)
#define AUX_MU_LSR      (PERIPHERAL_BASE + 0x215054)
#define AUX_MU_CNTL     (PERIPHERAL_BASE + 0x215060)
#define AUX_MU_BAUD     (PERIPHERAL_BASE + 0x215068)

#define AUX_ENABLE_MU   1      /* AUX_ENABLES: mini UART on */
#define LCR_8BIT        3      /* 8 data bits */
#define IIR_CLEAR_FIFOS 0xC6   /* clear both FIFOs, FIFOs enabled */
#define CNTL_TX_RX      3      /* transmitter and receiver on */
#define BAUD_115200     270    /* 250 MHz core clock / (8 * (270 + 1)) */
#define LSR_DATA_READY  (1 << 0)
#define LSR_TX_EMPTY    (1 << 5)

void uart_init(void)
{
    gpio_use_for_uart(GPIO_ALT5);
    mmio_write(AUX_ENABLES, mmio_read(AUX_ENABLES) | AUX_ENABLE_MU);
    mmio_write(AUX_MU_CNTL, 0);
    mmio_write(AUX_MU_IER, 0);
    mmio_write(AUX_MU_LCR, LCR_8BIT);
    mmio_write(AUX_MU_MCR, 0);
    mmio_write(AUX_MU_IIR, IIR_CLEAR_FIFOS);
    mmio_write(AUX_MU_BAUD, BAUD_115200);
    mmio_write(AUX_MU_CNTL, CNTL_TX_RX);
}

void uart_putc(char c)
{
    while (!(mmio_read(AUX_MU_LSR) & LSR_TX_EMPTY))
        ;
    mmio_write(AUX_MU_IO, (u8)c);
}

char uart_getc(void)
{
    while (!(mmio_read(AUX_MU_LSR) & LSR_DATA_READY))
        ;
    return (char)(mmio_read(AUX_MU_IO) & 0xff);
}
