/* printk.h: kernel console output. */
#ifndef PRINTK_H
#define PRINTK_H

#include "types.h"

/* console_putc: one byte to the console, '\n' sent as "\r\n". */
void console_putc(char c);

/* console_puts: a C string to the console. */
void console_puts(const char *s);

/* console_put_num: v in base 2..16, lower-case, at least `width` digits
 * (zero padded; 0: no padding). */
void console_put_num(u64 v, unsigned base, int width);

/* console_put_signed: v in decimal, with '-' when negative. */
void console_put_signed(s64 v);

/* kprintf: format to the console: %s %c %d %u %x %lx %ld %lu %p, %%.
 * The format is always kernel text, never user text. */
void kprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
