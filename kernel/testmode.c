/* testmode.c: the test image's command loop (docs/protocol.md): print
 * `ready`, read one line, answer `list` or start `run <scenario> <seed>`. */
#include "events.h"
#include "param.h"
#include "printk.h"
#include "run.h"
#include "string.h"
#include "uart.h"

#if KT_TEST

#define ASCII_BS  0x08
#define ASCII_DEL 0x7f

/* read_line: read bytes up to '\r' or '\n' into buf (NUL-terminated),
 * echoing them. Returns false if the line was longer than CMDLINE_MAX
 * (buf then holds its start). */
static bool read_line(char *buf)
{
    u64 n = 0;
    bool fits = true;

    for (;;) {
        char c = uart_getc();
        if (c == '\r' || c == '\n') {
            if (n == 0 && fits)
                continue; /* empty line: nothing asked */
            console_putc('\n');
            buf[n] = '\0';
            return fits;
        }
        if (c == ASCII_BS || c == ASCII_DEL) {
            if (n > 0) {
                n--;
                console_puts("\b \b");
            }
            continue;
        }
        console_putc(c);
        if (n < CMDLINE_MAX)
            buf[n++] = c;
        else
            fits = false;
    }
}

/* next_word: split off the word at *p (spaces between words); NULL if none. */
static char *next_word(char **p)
{
    char *s = *p, *word;

    while (*s == ' ')
        s++;
    if (!*s)
        return NULL;
    word = s;
    while (*s && *s != ' ')
        s++;
    if (*s)
        *s++ = '\0';
    *p = s;
    return word;
}

/* parse_seed: a decimal u64 into *seed; false if not digits or too big. */
static bool parse_seed(const char *s, u64 *seed)
{
    const u64 max_before_digit = ~(u64)0 / 10;
    u64 v = 0;

    if (!*s)
        return false;
    for (; *s; s++) {
        u64 d = (u64)(*s - '0');
        if (*s < '0' || *s > '9' || v > max_before_digit)
            return false;
        v *= 10;
        if (v + d < v)
            return false;
        v += d;
    }
    *seed = v;
    return true;
}

/* list_scenarios: one `scenario` marker each, then `list_end`. */
static void list_scenarios(void)
{
    u64 n = 0;

    for (const struct user_scenario *s = __scenarios_start; s < __scenarios_end; s++, n++)
        ev_scenario(s->name);
    ev_list_end(n);
}

/* run_command: act on one command line; returns only if the run did not start. */
static void run_command(char *line)
{
    char copy[CMDLINE_MAX + 1];
    char *rest = line, *verb, *name, *seed_text;
    const struct user_scenario *s;
    u64 seed;

    memcpy(copy, line, sizeof(copy));
    verb = next_word(&rest);
    if (verb && str_eq(verb, "list") && !next_word(&rest)) {
        list_scenarios();
        return;
    }
    if (!verb || !str_eq(verb, "run")) {
        ev_error("unknown_command", copy);
        return;
    }
    name = next_word(&rest);
    seed_text = next_word(&rest);
    s = name ? scenario_find(name) : NULL;
    if (!s) {
        ev_error("unknown_scenario", copy);
        return;
    }
    if (!seed_text || next_word(&rest) || !parse_seed(seed_text, &seed)) {
        ev_error("bad_seed", copy);
        return;
    }
    run_start(s, seed);
}

void testmode_main(void)
{
    char line[CMDLINE_MAX + 1];

    for (;;) {
        ev_ready();
        if (!read_line(line))
            ev_error("line_too_long", line);
        else
            run_command(line);
    }
}

#endif /* KT_TEST */
