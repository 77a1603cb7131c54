/* printk.c: console output for the kernel: bytes, strings and kprintf. */
#include <stdarg.h>
#include "printk.h"
#include "uart.h"

/* console_putc: one byte, with '\n' sent as "\r\n" for terminals. */
void console_putc(char c)
{
    if (c == '\n')
        uart_putc('\r');
    uart_putc(c);
}

void console_puts(const char *s)
{
    while (*s)
        console_putc(*s++);
}

void console_put_num(u64 v, unsigned base, int width)
{
    char buf[24];
    int n = 0;

    do {
        buf[n++] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v);
    while (n < width)
        buf[n++] = '0';
    while (n)
        console_putc(buf[--n]);
}

void console_put_signed(s64 v)
{
    if (v < 0) {
        console_putc('-');
        console_put_num(-(u64)v, 10, 0);
    } else {
        console_put_num((u64)v, 10, 0);
    }
}

void kprintf(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    for (; *fmt; fmt++) {
        if (*fmt != '%') {
            console_putc(*fmt);
            continue;
        }
        bool is_long = false;
        if (*++fmt == 'l') {
            is_long = true;
            fmt++;
        }
        switch (*fmt) {
        case 's': console_puts(va_arg(ap, const char *)); break;
        case 'c': console_putc((char)va_arg(ap, int)); break;
        case 'd': console_put_signed(is_long ? va_arg(ap, long) : va_arg(ap, int)); break;
        case 'u': console_put_num(is_long ? va_arg(ap, unsigned long) : va_arg(ap, unsigned), 10, 0); break;
        case 'x': console_put_num(is_long ? va_arg(ap, unsigned long) : va_arg(ap, unsigned), 16, 0); break;
        case 'p': console_puts("0x"); console_put_num((u64)va_arg(ap, void *), 16, 16); break;
        case '%': console_putc('%'); break;
        default:  console_putc('?'); break;
        }
        if (!*fmt)
            break;
    }
    va_end(ap);
}
