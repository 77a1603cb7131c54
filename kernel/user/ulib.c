/* ulib.c: the EL0 user library: strings, a small formatter, u_printf,
 * the seed PRNG and busy waits. EL0 code only: the kernel is reached by
 * the svc stubs of usys.S, and nothing here may make GCC emit a call to
 * memset/memcpy (the userland link rejects undefined symbols). */
#include "ulib.h"

/* Number of bytes before the first NUL of s. */
unsigned long u_strlen(const char *s)
{
    unsigned long n = 0;

    while (s[n] != '\0')
        n++;
    return n;
}

/* Fill n bytes at p with byte b. */
void u_fill(void *p, int b, unsigned long n)
{
    volatile unsigned char *c = p; /* volatile: no memset idiom */

    for (unsigned long i = 0; i < n; i++)
        c[i] = (unsigned char)b;
}

/* Fill n 8-byte words at p (8-aligned) with v. */
void u_fill64(u64 *p, u64 v, unsigned long n)
{
    volatile u64 *w = p;

    for (unsigned long i = 0; i < n; i++)
        w[i] = v;
}

/* Copy n bytes from src to dst (regions must not overlap). */
void u_copy(void *dst, const void *src, unsigned long n)
{
    volatile unsigned char *d = dst;
    const unsigned char *s = src;

    for (unsigned long i = 0; i < n; i++)
        d[i] = s[i];
}

/* 1 if the n bytes at a and b are equal, else 0. */
int u_equal(const void *a, const void *b, unsigned long n)
{
    const unsigned char *x = a, *y = b;

    for (unsigned long i = 0; i < n; i++)
        if (x[i] != y[i])
            return 0;
    return 1;
}

/* The formatter's output cursor: bytes past `cap` are counted, not stored. */
struct fmt_out {
    char *buf;
    unsigned long cap; /* bytes we may store, the NUL included */
    unsigned long len; /* bytes produced so far */
};

/* Append one byte (or just count it when the buffer is full). */
static void fmt_put(struct fmt_out *o, char c)
{
    if (o->len + 1 < o->cap)
        o->buf[o->len] = c;
    o->len++;
}

/* Append a string, padded on the left with spaces to `width`. */
static void fmt_str(struct fmt_out *o, const char *s, int width)
{
    if (s == 0)
        s = "(null)";
    for (int pad = width - (int)u_strlen(s); pad > 0; pad--)
        fmt_put(o, ' ');
    while (*s)
        fmt_put(o, *s++);
}

/* Append v in `base` (10 or 16), with a '-' when neg, padded to width
 * with '0' or ' '. */
static void fmt_num(struct fmt_out *o, unsigned long v, unsigned base,
                    int neg, int width, char pad)
{
    char digits[24];
    int n = 0;

    do {
        unsigned d = (unsigned)(v % base);
        digits[n++] = (char)(d < 10 ? '0' + d : 'a' + d - 10);
        v /= base;
    } while (v != 0);
    width -= n + (neg ? 1 : 0);
    if (neg && pad == '0')
        fmt_put(o, '-');
    for (; width > 0; width--)
        fmt_put(o, pad);
    if (neg && pad != '0')
        fmt_put(o, '-');
    while (n > 0)
        fmt_put(o, digits[--n]);
}

/* One conversion after its flags, width and length: c is the letter,
 * lng is 1 for an `l` length modifier. */
static void fmt_conv(struct fmt_out *o, char c, int lng, int width, char pad,
                     va_list *ap)
{
    long sv;
    unsigned long uv;

    switch (c) {
    case 'd':
        sv = lng ? va_arg(*ap, long) : va_arg(*ap, int);
        uv = sv < 0 ? 0UL - (unsigned long)sv : (unsigned long)sv;
        fmt_num(o, uv, 10, sv < 0, width, pad);
        break;
    case 'u':
    case 'x':
        uv = lng ? va_arg(*ap, unsigned long) : va_arg(*ap, unsigned int);
        fmt_num(o, uv, c == 'x' ? 16 : 10, 0, width, pad);
        break;
    case 'p':
        fmt_put(o, '0');
        fmt_put(o, 'x');
        fmt_num(o, (unsigned long)va_arg(*ap, void *), 16, 0, width, pad);
        break;
    case 's':
        fmt_str(o, va_arg(*ap, const char *), width);
        break;
    case 'c':
        fmt_put(o, (char)va_arg(*ap, int));
        break;
    default: /* '%' and anything unknown stand for themselves */
        fmt_put(o, c);
        break;
    }
}

/* Format into buf (at most n bytes, NUL-terminated when n > 0); returns
 * the length the result would have had. */
int u_vsnprintf(char *buf, unsigned long n, const char *fmt, va_list ap)
{
    struct fmt_out o = { buf, n, 0 };
    va_list cur;

    va_copy(cur, ap);
    while (*fmt) {
        if (*fmt != '%') {
            fmt_put(&o, *fmt++);
            continue;
        }
        fmt++;
        char pad = ' ';
        int width = 0, lng = 0;
        if (*fmt == '0') {
            pad = '0';
            fmt++;
        }
        while (*fmt >= '0' && *fmt <= '9')
            width = width * 10 + (*fmt++ - '0');
        while (*fmt == 'l') {
            lng = 1;
            fmt++;
        }
        if (*fmt == '\0')
            break;
        fmt_conv(&o, *fmt++, lng, width, pad, &cur);
    }
    va_end(cur);
    if (n > 0)
        buf[o.len < n ? o.len : n - 1] = '\0';
    return (int)o.len;
}

/* u_vsnprintf with the arguments inline. */
int u_snprintf(char *buf, unsigned long n, const char *fmt, ...)
{
    va_list ap;
    int len;

    va_start(ap, fmt);
    len = u_vsnprintf(buf, n, fmt, ap);
    va_end(ap);
    return len;
}

/* Format into a stack buffer and write it with one syscall. */
long u_printf(const char *fmt, ...)
{
    char line[U_PRINTF_MAX];
    va_list ap;

    va_start(ap, fmt);
    u_vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    return u_emit(line);
}

#ifndef KT_EL0
/* Marker mode: the kernel wraps every write in an `out` marker. */
long u_emit(const char *line)
{
    return u_write(line);
}

/* Marker mode: the kernel reports clones itself. */
void u_expect_child(void *stack)
{
    (void)stack;
}

/* Marker mode: the kernel reports clone's result itself. */
void u_cloned(long ret)
{
    (void)ret;
}

/* Marker mode: the kernel reports the fault and the task's end. */
void u_expect_death(void)
{
}

/* Marker mode: write the evidence, then never make another syscall. */
void u_after_exit(void)
{
    u_write("after-exit: exit returned to a zombie\n");
    for (;;)
        u_spin(1000000);
}
#endif

/* Start the generator at `seed`. */
void u_rng_seed(struct u_rng *r, unsigned long seed)
{
    r->state = seed;
}

/* splitmix64: the next 64-bit value. */
unsigned long u_rng_next(struct u_rng *r)
{
    unsigned long z;

    r->state += 0x9e3779b97f4a7c15UL;
    z = r->state;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9UL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebUL;
    return z ^ (z >> 31);
}

/* The seed proof line (ulib.h). */
void u_seed_proof(unsigned long seed)
{
    struct u_rng r;

    u_rng_seed(&r, seed ^ U_PROOF_SALT);
    u_printf("proof seed=%lu draw=0x%lx\n", seed, u_rng_next(&r));
}

/* Busy-wait about `iterations` loop turns. */
void u_spin(unsigned long iterations)
{
    if (iterations == 0)
        return;
    __asm__ volatile("1: subs %0, %0, #1\n\t"
                     "b.ne 1b"
                     : "+r"(iterations)
                     :
                     : "cc");
}

/* Print a register dump (see ulib.h), eight registers a line. */
void u_print_regs(const char *tag, const u64 out[U_REGS_OUT])
{
    char line[U_PRINTF_MAX];

    for (int first = 0; first < 31; first += 8) {
        int len = u_snprintf(line, sizeof(line), "%s", tag);
        for (int i = first; i < first + 8 && i < 31; i++)
            len += u_snprintf(line + len, sizeof(line) - (unsigned long)len,
                              " x%d=0x%lx", i, out[i]);
        u_snprintf(line + len, sizeof(line) - (unsigned long)len, "\n");
        u_emit(line);
    }
    u_printf("%s nzcv=0x%lx sp=0x%lx sp0=0x%lx\n", tag, out[31], out[32],
             out[33]);
}
