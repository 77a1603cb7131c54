/* main.c: kernel_main, a straight sequence of initialisations, then the
 * demo (normal image) or the command loop (test image). */
#include "events.h"
#include "mm.h"
#include "param.h"
#include "printk.h"
#include "run.h"
#include "sched.h"
#include "uart.h"

extern u64 boot_el;

#if KT_TEST
#define IMAGE_MODE "test"
#else
#define IMAGE_MODE "demo"
#endif

#define STRINGIFY_(x) #x
#define STRINGIFY(x) STRINGIFY_(x) /* a macro's value as a string literal */

/* The image note: tools learn the protocol, console and mode from the file alone. */
__attribute__((used)) static const char image_note[] =
    "KTIMAGE proto=" STRINGIFY(PROTO_VERSION) " console=" CONSOLE_NAME " mode=" IMAGE_MODE;

void kernel_main(void);

#if !KT_TEST
/* The demo's first user program (kernel/user/demo.c): the lesson's name,
 * so a conformance program can take its place at link time. */
extern void user_process(unsigned long seed);
static const struct user_scenario demo = { "demo", user_process };
#endif

/* kernel_main: called once by boot.S on core 0 at EL1, IRQs masked. */
void kernel_main(void)
{
    uart_init();       /* console first, so everything after can speak */
    mm_init();         /* all pool pages free */
    sched_init();      /* this thread becomes task 0, the idle task */
#if KT_TEST
    ev_boot();
    testmode_main();
#else
    kprintf("Raspberry Pi 3 teaching kernel: entered at EL%lu, running at EL1\n", boot_el);
    run_start(&demo, 0);
#endif
}
