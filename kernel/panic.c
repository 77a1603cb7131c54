/* panic.c: the kernel's last words. In the test image a panic marker and
 * the run's end marker; in the demo a message on the console. Then off. */
#include "events.h"
#include "panic.h"
#include "power.h"
#include "printk.h"

void panic(const char *vector, u64 esr, u64 elr, u64 far, const char *what)
{
    ev_panic(vector, esr, elr, far, what);
#if KT_TEST
    ev_end("panic");
#else
    kprintf("\nKERNEL PANIC (%s): %s\nESR %lx ELR %lx FAR %lx\n",
            vector, what, esr, elr, far);
#endif
    power_off(1);
}
