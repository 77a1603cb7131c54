/* events.c: the test-mode marker printer. One marker is one line:
 * "@KT <seq> <tag> <kind> key=value ...", see docs/protocol.md; <tag>
 * binds the line to this run's seed and its seq (uapi/linetag.h). */
#include "events.h"
#include "param.h"
#include "printk.h"
#include "sections.h"
#include "sysregs.h"
#include "uapi/linetag.h"
#include "uapi/syscall.h"

#if KT_TEST

extern u64 boot_el;
static u64 next_seq;   /* seq of the next marker */
static bool line_open; /* a marker line has begun and not ended */
static u64 tag_seed;   /* the key of line tags: 0 until start, then the run's seed */

#define HEX 16   /* base of hex fields and \xHH escapes */
#define DEC 10

/* begin: start a marker line of the given kind. If a fault cut the
 * previous marker short (a panic inside an ev_* call), end that line
 * first so the new marker still starts a line. */
static void begin(const char *kind)
{
    if (line_open)
        console_putc('\n');
    line_open = true;
    console_puts("@KT ");
    console_put_num(next_seq, DEC, 0);
    console_putc(' ');
    console_put_num(linetag(tag_seed, LINETAG_KERNEL_STREAM, next_seq), HEX, LINETAG_DIGITS);
    console_putc(' ');
    console_puts(kind);
    next_seq++;
}

/* key: start a field "key=". */
static void key(const char *k)
{
    console_putc(' ');
    console_puts(k);
    console_putc('=');
}

/* f_udec / f_hex / f_name: a field whose value is a decimal, a hex number,
 * or a bare name (a kernel string without spaces or quotes). */
static void f_udec(const char *k, u64 v) { key(k); console_put_num(v, DEC, 0); }
static void f_hex(const char *k, u64 v) { key(k); console_puts("0x"); console_put_num(v, HEX, 0); }
static void f_name(const char *k, const char *v) { key(k); console_puts(v); }

/* f_sdec: a signed decimal field. */
static void f_sdec(const char *k, s64 v) { key(k); console_put_signed(v); }

/* f_quoted: bytes as a quoted string: printable ASCII but '"' and '\'
 * as is, every other byte as \xHH, so it can never break the line. */
static void f_quoted(const char *k, const char *bytes, u64 len)
{
    key(k);
    console_putc('"');
    for (u64 i = 0; i < len; i++) {
        u8 b = (u8)bytes[i];
        if (b >= 0x20 && b <= 0x7e && b != '"' && b != '\\') {
            console_putc((char)b);
        } else {
            console_puts("\\x");
            console_put_num(b, HEX, 2);
        }
    }
    console_putc('"');
}

/* f_cstr: a C string as a quoted field. */
static void f_cstr(const char *k, const char *s)
{
    u64 n = 0;

    while (s[n])
        n++;
    f_quoted(k, s, n);
}

/* end: finish the marker line. */
static void end(void)
{
    console_putc('\n');
    line_open = false;
}

/* One function per marker kind, each printing the fields docs/protocol.md
 * lists for it, in that order. */

void ev_boot(void)
{
    begin("boot");
    f_udec("proto", PROTO_VERSION);
    f_name("console", CONSOLE_NAME);
    f_udec("el", boot_el);
    f_udec("nr_tasks", NR_TASKS);
    f_udec("hz", TIMER_HZ);
    f_udec("nr_syscalls", NR_SYSCALLS);
    f_udec("page_size", PAGE_SIZE);
    f_hex("pool_base", (u64)__pool_start);
    f_udec("pool_pages", POOL_PAGES);
    f_hex("kernel_base", (u64)__kernel_start);
    f_hex("kernel_end", (u64)__kernel_end);
    f_hex("user_base", (u64)__user_start);
    f_hex("user_end", (u64)__user_end);
    f_udec("write_max", WRITE_MAX);
    f_udec("priority", DEFAULT_PRIORITY);
    end();
}

void ev_ready(void) { begin("ready"); end(); }
void ev_scenario(const char *name) { begin("scenario"); f_name("name", name); end(); }
void ev_list_end(u64 count) { begin("list_end"); f_udec("count", count); end(); }
void ev_all_exited(void) { begin("all_exited"); end(); }

void ev_error(const char *what, const char *line)
{
    begin("error");
    f_name("what", what);
    f_cstr("line", line);
    end();
}

void ev_start(const char *scenario, u64 seed)
{
    tag_seed = seed; /* start and every marker after it are keyed by the seed */
    begin("start");
    f_name("scenario", scenario);
    f_udec("seed", seed);
    end();
}

void ev_task(u64 pid, u64 parent, const char *state, const char *reason)
{
    begin("task");
    f_udec("pid", pid);
    f_udec("parent", parent);
    f_name("state", state);
    f_name("reason", reason);
    end();
}

void ev_switch(u64 from, u64 to)
{
    begin("switch");
    f_udec("from", from);
    f_udec("to", to);
    end();
}

void ev_tick(u64 pid, u64 n)
{
    begin("tick");
    f_udec("pid", pid);
    f_udec("n", n);
    end();
}

void ev_sys(u64 pid, u64 x8, u64 a0, u64 a1, u64 a2, u64 sp, bool has_ret, s64 ret)
{
    begin("sys");
    f_udec("pid", pid);
    f_udec("nr", (u32)x8);
    f_hex("x8", x8);
    f_hex("a0", a0);
    f_hex("a1", a1);
    f_hex("a2", a2);
    f_hex("sp", sp);
    if (has_ret)
        f_sdec("ret", ret);
    end();
}

void ev_out(u64 pid, const char *bytes, u64 len)
{
    begin("out");
    f_udec("pid", pid);
    f_udec("len", len);
    f_quoted("data", bytes, len);
    end();
}

/* page_event: palloc / pfree share one shape. */
static void page_event(const char *kind, u64 pid, u64 addr)
{
    begin(kind);
    f_udec("pid", pid);
    f_hex("addr", addr);
    end();
}

void ev_palloc(u64 pid, u64 addr) { page_event("palloc", pid, addr); }
void ev_pfree(u64 pid, u64 addr) { page_event("pfree", pid, addr); }

void ev_pmove(u64 from, u64 to, u64 addr)
{
    begin("pmove");
    f_udec("from", from);
    f_udec("to", to);
    f_hex("addr", addr);
    end();
}

void ev_fault(u64 pid, u64 esr, u64 elr, u64 far, const char *what)
{
    begin("fault");
    f_udec("pid", pid);
    f_hex("ec", (esr >> ESR_EC_SHIFT) & ESR_EC_MASK);
    f_hex("esr", esr);
    f_hex("elr", elr);
    f_hex("far", far);
    f_cstr("what", what);
    end();
}

void ev_panic(const char *vector, u64 esr, u64 elr, u64 far, const char *what)
{
    begin("panic");
    f_cstr("vector", vector);
    f_hex("esr", esr);
    f_hex("elr", elr);
    f_hex("far", far);
    f_cstr("what", what);
    end();
}

void ev_end(const char *reason)
{
    u64 count = next_seq;

    begin("end");
    f_udec("count", count);
    f_name("reason", reason);
    end();
}

#endif /* KT_TEST */
