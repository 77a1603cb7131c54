/* uart.h: the console UART (mini UART or PL011: a build option). */
#ifndef UART_H
#define UART_H

/* uart_init: set up the console pins and the UART, 115200 8N1. */
void uart_init(void);

/* uart_putc: send one byte (no translation). */
void uart_putc(char c);

/* uart_getc: wait for and return one received byte. */
char uart_getc(void);

#endif
