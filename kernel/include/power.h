/* power.h: ending the machine's run. */
#ifndef POWER_H
#define POWER_H

#include "types.h"

/* power_off: stop the machine (QEMU exits with code); never returns.
 * Semihosting SYS_EXIT first, then a watchdog reset. */
void power_off(u32 code) __attribute__((noreturn));

/* power_is_shutting_down: has power_off begun? (an exception then is
 * semihosting missing, not a bug) */
bool power_is_shutting_down(void);

/* watchdog_reset: reset through the BCM2835 watchdog; never returns. */
void watchdog_reset(void) __attribute__((noreturn));

#endif
