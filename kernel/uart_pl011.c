/* uart_pl011.c: the PL011 (UART0) as the console: GPIO 14/15 ALT0.
 * Under QEMU it is -serial number 1. */
#include "gpio.h"
#include "mmio.h"
#include "uart.h"

#define UART0_BASE      (PERIPHERAL_BASE + 0x201000)
#define UART0_DR        (UART0_BASE + 0x00)
#define UART0_FR        (UART0_BASE + 0x18)
#define UART0_IBRD      (UART0_BASE + 0x24)
#define UART0_FBRD      (UART0_BASE + 0x28)
#define UART0_LCRH      (UART0_BASE + 0x2C)
#define UART0_CR        (UART0_BASE + 0x30)
#define UART0_IMSC      (UART0_BASE + 0x38)
#define UART0_ICR       (UART0_BASE + 0x44)

#define FR_RXFE         (1 << 4)   /* receive FIFO empty */
#define FR_TXFF         (1 << 5)   /* transmit FIFO full */
#define LCRH_FEN        (1 << 4)   /* FIFOs on */
#define LCRH_WLEN8      (3 << 5)   /* 8 data bits */
#define CR_UARTEN       (1 << 0)
#define CR_TXE          (1 << 8)
#define CR_RXE          (1 << 9)
#define ICR_ALL         0x7FF
#define IBRD_115200     26         /* 48 MHz / (16 * 115200) = 26.04 */
#define FBRD_115200     3          /* 0.04 * 64 rounded */

void uart_init(void)
{
    mmio_write(UART0_CR, 0);
    gpio_use_for_uart(GPIO_ALT0);
    mmio_write(UART0_ICR, ICR_ALL);
    mmio_write(UART0_IBRD, IBRD_115200);
    mmio_write(UART0_FBRD, FBRD_115200);
    mmio_write(UART0_LCRH, LCRH_FEN | LCRH_WLEN8);
    mmio_write(UART0_IMSC, 0);
    mmio_write(UART0_CR, CR_UARTEN | CR_TXE | CR_RXE);
}

void uart_putc(char c)
{
    while (mmio_read(UART0_FR) & FR_TXFF)
        ;
    mmio_write(UART0_DR, (u8)c);
}

char uart_getc(void)
{
    while (mmio_read(UART0_FR) & FR_RXFE)
        ;
    return (char)(mmio_read(UART0_DR) & 0xff);
}
