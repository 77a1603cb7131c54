/* write_checks: write's byte count, its -EFAULT and -EINVAL cases at the
 * edges of user memory and of WRITE_MAX, bytes that must travel unchanged
 * (marker look-alikes, every byte value, format directives), and output
 * attribution to the writing pid. After each test call the task prints
 * "w_<case> addr=0x.. ret=<result>"; the judge (test_write_checks.py)
 * matches the call's sys marker and out markers.
 *
 * The user section's own edges: wc_tail sits in input section .user_tail,
 * which kernel/linker.ld places so that its NUL is the last byte of the
 * user section: wc_tail + WC_TAIL_SIZE is user_end (boot marker), the
 * first byte past it.
 *
 * Page plan (malloc takes the lowest free page; the first task's stack is
 * the pool's first page): P = the next page, P + 4096 stays free until Q is
 * taken, then Q = P + 4096, then the child's stack.
 *
 * Seed draws, in order: four strings s0..s3 of lengths 0, 1 + d % 50,
 * 50 + d % 200, 200 + d % 600 (each length draw followed by one draw per
 * byte: 0x20 + d % 95); off_len (1 + d % 1000), fit_len (1 + d % 1000),
 * fill (a letter 'a' + d % 26), parent_word, child_word, high (the high
 * 32 bits of the "high_bits" pointer: d >> 32 | 1, never 0).
 *
 * The child also writes a string that lies on Q, a page its parent owns
 * and, waiting for the child, still owns: another live task's page is
 * user memory too. */
#include "ulib.h"

#define WC_WRITE_MAX 1024UL /* docs: write_max announced at boot */
#define WC_MAX_STR 800

static char wc_str[WC_MAX_STR + 1];
static char wc_text[64];
static const char wc_marker[] = "\n@KT 99 end count=99 reason=all_exited\n";
static const char wc_format[] = "%s%n%x%d%p%%\n";
static char wc_all[256];      /* every byte value 1..255, then NUL */
static u64 wc_child_word;
static const char wc_high[] = "high bits\n";
static const char *wc_other;      /* a string on a page the parent owns */
static volatile int wc_child_done; /* the child has made its writes */

#define WC_OTHER_TEXT "on another task's page\n"
#define WC_OTHER_AT 512UL          /* its offset in the parent's page */
#define WC_CHILD_WAIT 50000000UL   /* bound on the parent's wait (a kernel that never switches) */

#define WC_TAIL_SIZE 16 /* kernel/linker.ld USER_TAIL_SIZE */
#define WC_TAIL_TEXT "last user byte\n"
/* The user section's last WC_TAIL_SIZE bytes (kernel/linker.ld). */
static const char wc_tail[WC_TAIL_SIZE] __attribute__((section(".user_tail"), used)) =
    WC_TAIL_TEXT;
_Static_assert(sizeof(WC_TAIL_TEXT) == WC_TAIL_SIZE, "the tail's NUL must be its last byte");

/* Call write(s) and report it as "w_<name> addr=.. ret=..". */
static long wc_try(const char *name, const char *s)
{
    long ret = u_write(s);

    u_printf("w_%s addr=0x%lx ret=%ld\n", name, (u64)s, ret);
    return ret;
}

/* write(user_end) with a NUL stored at user_end for the call, whatever
 * byte the kernel keeps there (put back right after). */
static void wc_try_user_end(const char *end)
{
    u64 at = (u64)end;
    volatile char *byte;
    char kept;

    __asm__("" : "+r"(at)); /* past wc_tail on purpose: hide it from the bounds check */
    byte = (volatile char *)at;
    kept = *byte;

    *byte = '\0';
    wc_try("user_end", end);
    *byte = kept;
}

/* The child writes its own text and a marker look-alike. */
static long wc_child(unsigned long arg)
{
    char text[64];

    (void)arg;
    u_snprintf(text, sizeof(text), "child says 0x%lx\n", wc_child_word);
    wc_try("child_text", text);
    wc_try("child_marker", wc_marker);
    if (wc_other)
        wc_try("child_other", wc_other);
    wc_child_done = 1;
    return 0;
}

USER_SCENARIO(write_checks)
{
    static const unsigned long base[4] = { 0, 1, 50, 200 }, span[4] = { 1, 50, 200, 600 };
    struct u_rng rng;
    unsigned long off_len, fit_len;
    u64 high;
    char fill, name[4] = { 's', '0', 0, 0 };
    char *p, *q;

    u_rng_seed(&rng, seed);
    for (int i = 0; i < 4; i++) {
        unsigned long len = base[i] + u_rng_next(&rng) % span[i];
        if (i == 0)
            len = 0;
        for (unsigned long j = 0; j < len; j++)
            wc_str[j] = (char)(0x20 + u_rng_next(&rng) % 95);
        wc_str[len] = '\0';
        name[1] = (char)('0' + i);
        wc_try(name, wc_str);
    }
    off_len = 1 + u_rng_next(&rng) % 1000;
    fit_len = 1 + u_rng_next(&rng) % 1000;
    fill = (char)('a' + u_rng_next(&rng) % 26);
    u_snprintf(wc_text, sizeof(wc_text), "parent says 0x%lx\n", u_rng_next(&rng));
    wc_child_word = u_rng_next(&rng);
    high = u_rng_next(&rng) >> 32 | 1;

    /* Not user memory. */
    wc_try("null", (const char *)0);
    wc_try("kernel", (const char *)0x80000UL);
    wc_try("past_ram", (const char *)0x7f000000UL);
    wc_try("wrap", (const char *)0xfffffffffffffff0UL);
    /* Low 32 bits a user string, high 32 bits not 0: not user memory. */
    wc_try("high_bits", (const char *)((u64)wc_high | high << 32));

    /* The user section's edges: its last byte is the tail's NUL; user_end
     * (the first byte past it) is not user memory. */
    wc_try("user_last", wc_tail);
    wc_try_user_end(wc_tail + WC_TAIL_SIZE);

    p = u_malloc();
    u_printf("page p=0x%lx\n", (u64)p);
    wc_try("free_page", p + U_PAGE_SIZE);
    /* A string that runs off the end of P into the free page. */
    u_fill(p, fill, U_PAGE_SIZE);
    wc_try("off_page", p + U_PAGE_SIZE - off_len);
    /* Its terminator on P's last byte: fits exactly. */
    p[U_PAGE_SIZE - 1] = '\0';
    wc_try("fit", p + U_PAGE_SIZE - 1 - fit_len);
    /* No terminator in the page: the cap comes before the page's end. */
    p[U_PAGE_SIZE - 1] = fill;
    wc_try("cap_first", p);
    /* Longer than WRITE_MAX, all inside user memory. */
    p[2000] = '\0';
    wc_try("long", p);
    p[2000] = fill;
    p[WC_WRITE_MAX] = '\0';
    wc_try("max", p);
    p[WC_WRITE_MAX] = fill;
    p[WC_WRITE_MAX + 1] = '\0';
    wc_try("max_plus1", p);

    /* Two owned pages in a row: a string may cross from one to the next. */
    q = u_malloc();
    u_printf("page q=0x%lx\n", (u64)q);
    if (q == p + U_PAGE_SIZE) {
        q[200] = '\0';
        for (int i = 0; i < 200; i++)
            q[i] = fill;
        wc_try("cross", p + U_PAGE_SIZE - 300);
    }

    /* Bytes travel as they are. */
    for (int i = 1; i < 256; i++)
        wc_all[i - 1] = (char)i;
    wc_all[255] = '\0';
    wc_try("marker", wc_marker);
    wc_try("all_bytes", wc_all);
    wc_try("format", wc_format);

    /* Another live task's page: the child writes a string on Q (or P). */
    {
        char *other = (q == p + U_PAGE_SIZE ? q : p) + WC_OTHER_AT;
        u_copy(other, WC_OTHER_TEXT, sizeof(WC_OTHER_TEXT));
        wc_other = other;
    }

    /* Attribution: the child's text is the child's, the parent's the parent's. */
    u_printf("clone ret=%ld\n", u_clone(wc_child, 0, u_malloc()));
    for (unsigned long turns = 0; !wc_child_done && turns < U_WAIT(WC_CHILD_WAIT); turns++)
        continue; /* the parent, Q's owner, stays alive until the child wrote */
    wc_try("parent_text", wc_text);
}
