/* el0.c: how the conformance programs report when the kernel under test
 * emits no markers (a student's lesson-5 kernel). Linked only into
 * build/kt-user.o, whose one global symbol is user_process, the lesson's
 * name for the first user program, so a student's own can be replaced at
 * link time (docs/judging.md).
 *
 * Every fact goes out through the lesson's write syscall as one EL0 marker
 * line (docs/protocol.md, "EL0 markers"):
 *
 *     @KU <tid> <seq> <tag> <kind>[ <key>=<value>]...
 *
 * <tid> is the task's id as the program knows it (1 for the first task,
 * then 2, 3, ... in clone order: the kernel's pids are not visible from
 * EL0), <seq> counts that task's markers from 0, <tag> binds the line to
 * the seed and to (tid, seq) (uapi/linetag.h). Lines never contain '%',
 * since a lesson kernel's sys_write may pass them to printf as a format.
 * The scenario and seed come from kt_params, which the harness patches in
 * a copy of the image before each boot. */
#include <stddef.h>

#include "ulib.h"
#include "uapi/linetag.h"

#define KT_TASKS_MAX 64          /* task ids one run can give out */
#define KT_FIRST_TID 1           /* the task that enters user_process */
#define KT_LINE_MAX 2400         /* one marker: an escaped u_printf line fits */
#define KT_TAG "KT-EL0-PARAMS-1" /* 15 bytes + NUL: the harness looks for it */
#define KT_TAG_SIZE 16
#define KT_AFTER_EXIT_SPIN 1000000UL
#define KT_PROTO 2               /* EL0 marker grammar version (docs/protocol.md) */
#define KT_STR_(x) #x
#define KT_STR(x) KT_STR_(x)     /* a macro's value as a string literal */
/* A marker's head: tid, seq, tag (zero-padded hex), kind. */
#define KT_HEAD "@KU %lu %lu %0" KT_STR(LINETAG_DIGITS) "lx %s"

/* The parameter block: the tag (found exactly once in the image), then
 * the scenario name (NUL-padded) and the seed (little-endian), patched by
 * harness.el0.patch_image. */
struct kt_params {
    char tag[KT_TAG_SIZE];
    char scenario[SCENARIO_NAME_MAX + 1];
    u64 seed;
};
_Static_assert(sizeof(KT_TAG) == KT_TAG_SIZE, "tag is 16 bytes with its NUL");
_Static_assert(offsetof(struct kt_params, scenario) == 16, "docs/protocol.md: scenario at 16");
_Static_assert(offsetof(struct kt_params, seed) == 48, "docs/protocol.md: seed at 48");

volatile struct kt_params kt_params __attribute__((aligned(8))) = { KT_TAG, "", 0 };

/* The scenario table, gathered by kernel/user/kt/kt-user.ld. */
extern const struct user_scenario kt_scenarios_start[], kt_scenarios_end[];

static u64 kt_stack_page[KT_TASKS_MAX]; /* [tid]: the page its stack is on */
static unsigned long kt_next_tid = KT_FIRST_TID + 1;
static unsigned long kt_seq[KT_TASKS_MAX];
static volatile unsigned int kt_out_lock; /* one marker line at a time */

void user_process(void);
void kt_main(u64 entry_sp, u64 why, u64 at);
void kt_before_exit(void);
long kt_write(const char *s);

/* What user_process found wrong before it touched its stack (kt_main's why). */
#define KT_ENTRY_OK 0
#define KT_ENTRY_SP 1    /* sp is 0 or not 16-byte aligned */
#define KT_ENTRY_STACK 2 /* a non-zero word below sp on its page: not a fresh page */
#define KT_RESCUE_SIZE 4096

/* The stack the program reports from when the kernel gave it an unusable one. */
static u64 kt_rescue_stack[KT_RESCUE_SIZE / sizeof(u64)] __attribute__((aligned(16), used));

/* user_process: the first task's first instructions, before anything is
 * pushed. The task must enter with sp 16-byte aligned, non-zero, on a
 * fresh page (every word from the page's start up to sp zero: no kernel
 * data shares it). If so: kt_main(sp, KT_ENTRY_OK, 0); else kt_main(sp,
 * why, address of the first non-zero word) on kt_rescue_stack, which only
 * reports and exits. */
__asm__(".section .text.user\n"
        ".globl user_process\n"
        ".type user_process, %function\n"
        "user_process:\n"
        "    mov     x0, sp\n"
        "    mov     x1, #" KT_STR(KT_ENTRY_SP) "\n"
        "    mov     x2, #0\n"
        "    cbz     x0, 3f\n"
        "    tst     x0, #15\n"
        "    b.ne    3f\n"
        "    mov     x1, #" KT_STR(KT_ENTRY_STACK) "\n"
        "    sub     x2, x0, #1\n"
        "    and     x2, x2, #~4095\n"         /* the page sp is the top of, or on */
        "1:  cmp     x2, x0\n"
        "    b.hs    2f\n"
        "    ldr     x3, [x2]\n"
        "    cbnz    x3, 3f\n"
        "    add     x2, x2, #8\n"
        "    b       1b\n"
        "2:  mov     x1, #" KT_STR(KT_ENTRY_OK) "\n"
        "    mov     x2, #0\n"
        "    b       kt_main\n"
        "3:  adrp    x3, kt_rescue_stack\n"
        "    add     x3, x3, :lo12:kt_rescue_stack\n"
        "    add     x3, x3, #" KT_STR(KT_RESCUE_SIZE) "\n"
        "    mov     sp, x3\n"
        "    b       kt_main\n"
        ".size user_process, . - user_process\n"
        ".text\n");

/* long kt_write(const char *s): the write syscall, keeping x19..x30 on the
 * stack across the svc itself, so that a kernel that garbles a register
 * on return still gets every marker out (the scenarios judge the garbling:
 * invalid_syscall's calls go through u_regs_svc, which compares them). */
__asm__(".section .text.user\n"
        ".type kt_write, %function\n"
        "kt_write:\n"
        "    stp     x29, x30, [sp, #-96]!\n"
        "    mov     x29, sp\n"
        "    stp     x19, x20, [sp, #16]\n"
        "    stp     x21, x22, [sp, #32]\n"
        "    stp     x23, x24, [sp, #48]\n"
        "    stp     x25, x26, [sp, #64]\n"
        "    stp     x27, x28, [sp, #80]\n"
        "    mov     w8, #" KT_STR(SYS_WRITE) "\n"
        "    svc     #0\n"
        "    ldp     x19, x20, [sp, #16]\n"
        "    ldp     x21, x22, [sp, #32]\n"
        "    ldp     x23, x24, [sp, #48]\n"
        "    ldp     x25, x26, [sp, #64]\n"
        "    ldp     x27, x28, [sp, #80]\n"
        "    ldp     x29, x30, [sp], #96\n"
        "    ret\n"
        ".size kt_write, . - kt_write\n"
        ".text\n");

/* The page the caller's stack pointer is on. */
static u64 kt_sp_page(void)
{
    u64 sp;

    __asm__ volatile("mov %0, sp" : "=r"(sp));
    return sp & ~(U_PAGE_SIZE - 1);
}

/* The calling task's id: the task whose stack page holds sp; the first
 * task otherwise (a child whose sp the kernel did not set shows up so). */
static unsigned long kt_tid(void)
{
    u64 page = kt_sp_page();

    for (unsigned long t = kt_next_tid - 1; t > KT_FIRST_TID; t--)
        if (kt_stack_page[t] == page)
            return t;
    return KT_FIRST_TID;
}

/* Take the output lock (ldaxr/stxr: tasks are preempted, not parallel). */
static void kt_lock(void)
{
    unsigned int busy;

    __asm__ volatile("1: ldaxr %w0, [%1]\n\t"
                     "cbnz %w0, 1b\n\t"
                     "stxr %w0, %w2, [%1]\n\t"
                     "cbnz %w0, 1b"
                     : "=&r"(busy)
                     : "r"(&kt_out_lock), "r"(1)
                     : "memory");
}

/* Release the output lock. */
static void kt_unlock(void)
{
    __asm__ volatile("stlr wzr, [%0]" : : "r"(&kt_out_lock) : "memory");
}

/* Append text at buf[*len], keeping room for the line end. */
static void kt_put(char *buf, unsigned long *len, const char *text)
{
    while (*text && *len + 2 < KT_LINE_MAX)
        buf[(*len)++] = *text++;
}

/* Append `data` quoted: printable ASCII but '"', '\\' and '%' as itself,
 * every other byte as \xHH. */
static void kt_put_quoted(char *buf, unsigned long *len, const char *data)
{
    static const char hex[] = "0123456789abcdef";

    kt_put(buf, len, "\"");
    for (; *data && *len + 6 < KT_LINE_MAX; data++) {
        unsigned char c = (unsigned char)*data;
        if (c >= 0x20 && c <= 0x7e && c != '"' && c != '\\' && c != '%') {
            buf[(*len)++] = (char)c;
        } else {
            buf[(*len)++] = '\\';
            buf[(*len)++] = 'x';
            buf[(*len)++] = hex[c >> 4];
            buf[(*len)++] = hex[c & 0xf];
        }
    }
    kt_put(buf, len, "\"");
}

/* The line being written; only the holder of kt_out_lock touches it (a
 * static buffer: child stacks are one 4 KiB page). */
static char kt_line[KT_LINE_MAX];

/* Write one marker of the calling task: kind, then `fields` (already
 * " key=value" text), then `data` quoted as data= if not NULL. Returns
 * write's result. */
static long kt_marker(const char *kind, const char *fields, const char *data)
{
    unsigned long tid = kt_tid(), len, seq;
    long ret;

    kt_lock();
    seq = kt_seq[tid]++;
    len = (unsigned long)u_snprintf(kt_line, sizeof(kt_line), KT_HEAD, tid, seq,
                                    linetag(kt_params.seed, tid, seq), kind);
    kt_put(kt_line, &len, fields);
    if (data) {
        kt_put(kt_line, &len, " data=");
        kt_put_quoted(kt_line, &len, data);
    }
    kt_line[len++] = '\n';
    kt_line[len] = '\0';
    ret = kt_write(kt_line);
    kt_unlock();
    return ret;
}

/* EL0-marker mode: a fact line travels as an `out` marker. */
long u_emit(const char *line)
{
    return kt_marker("out", "", line);
}

/* Give the child that will run on `stack` the next task id; say so. */
void u_expect_child(void *stack)
{
    char fields[64];
    unsigned long child = kt_next_tid;

    if (child < KT_TASKS_MAX) {
        kt_stack_page[child] = (u64)stack & ~(U_PAGE_SIZE - 1);
        kt_next_tid++;
    }
    u_snprintf(fields, sizeof(fields), " child=%lu stack=0x%lx", child, (u64)stack);
    kt_marker("clone", fields, 0);
}

/* The parent's clone returned `ret`: for the last child announced. */
void u_cloned(long ret)
{
    char fields[64];

    u_snprintf(fields, sizeof(fields), " child=%lu ret=%ld", kt_next_tid - 1, ret);
    kt_marker("cloned", fields, 0);
}

/* The next instruction should get this task killed. */
void u_expect_death(void)
{
    kt_marker("dying", "", 0);
}

/* Called by u_exit_args just before the exit svc. */
void kt_before_exit(void)
{
    kt_marker("exit", "", 0);
}

/* exit's svc came back: report it once, then never make another syscall. */
void u_after_exit(void)
{
    kt_marker("after_exit", "", 0);
    for (;;)
        u_spin(KT_AFTER_EXIT_SPIN);
}

/* The scenario named in kt_params, or NULL. */
static const struct user_scenario *kt_find(const char *name)
{
    for (const struct user_scenario *s = kt_scenarios_start; s < kt_scenarios_end; s++)
        if (u_equal(s->name, name, u_strlen(name) + 1))
            return s;
    return 0;
}

/* Say what was wrong with the stack the first task entered on (user_process),
 * from the rescue stack, and exit: the scenario does not run. */
static void kt_bad_entry(u64 entry_sp, u64 why, u64 at)
{
    char line[128];

    u_snprintf(line, sizeof(line), "entry sp=0x%lx at=0x%lx word=0x%lx\n", entry_sp, at,
               why == KT_ENTRY_STACK ? *(volatile u64 *)at : 0UL);
    u_emit(line);
    kt_marker("error", why == KT_ENTRY_SP ? " what=entry_sp" : " what=entry_stack", 0);
}

/* The first user task (entered through user_process): read the parameters,
 * report the start, run the scenario (if its stack was fine), exit. The
 * lesson's kernel_process drops to EL0 at user_process. */
void kt_main(u64 entry_sp, u64 why, u64 at)
{
    char name[SCENARIO_NAME_MAX + 1];
    char fields[96];
    u64 seed = kt_params.seed;
    const struct user_scenario *s;

    for (int i = 0; i <= SCENARIO_NAME_MAX; i++)
        name[i] = kt_params.scenario[i];
    name[SCENARIO_NAME_MAX] = '\0';
    kt_stack_page[KT_FIRST_TID] = kt_sp_page();
    u_snprintf(fields, sizeof(fields), " proto=%d scenario=%s seed=%lu", KT_PROTO, name, seed);
    kt_marker("start", fields, 0);
    s = kt_find(name);
    if (why != KT_ENTRY_OK)
        kt_bad_entry(entry_sp, why, at);
    else if (s == 0)
        kt_marker("error", " what=unknown_scenario", 0);
    else
        s->main(seed);
    u_exit();
}
