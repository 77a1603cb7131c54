/* power.c: ending the run. QEMU learns the exit code via semihosting
 * (-semihosting-config enable=on); without it, or on a real Pi, the hlt
 * traps and the BCM2835 watchdog resets the board (QEMU exits with
 * -no-reboot). */
#include "mmio.h"
#include "power.h"

#define SEMIHOST_SYS_EXIT       0x18
#define ADP_STOPPED_APP_EXIT    0x20026
#define PM_RSTC                 (PERIPHERAL_BASE + 0x10001C)
#define PM_WDOG                 (PERIPHERAL_BASE + 0x100024)
#define PM_PASSWORD             0x5A000000u
#define PM_RSTC_WRCFG_CLR       0xFFFFFFCFu
#define PM_RSTC_WRCFG_FULL      0x00000020u
#define WDOG_TICKS              10  /* reset after this many watchdog ticks */

static bool shutting_down;

bool power_is_shutting_down(void)
{
    return shutting_down;
}

/* semihost_exit: ask the debugger/emulator to end with code; returns only
 * if nobody is listening (and then usually traps instead). */
static void semihost_exit(u32 code)
{
    volatile u64 block[2] = { ADP_STOPPED_APP_EXIT, code };
    register u64 op __asm__("x0") = SEMIHOST_SYS_EXIT;
    register u64 arg __asm__("x1") = (u64)block;

    __asm__ volatile("hlt #0xf000" : "+r"(op) : "r"(arg) : "memory");
}

void watchdog_reset(void)
{
    u32 rstc = mmio_read(PM_RSTC) & PM_RSTC_WRCFG_CLR;

    mmio_write(PM_WDOG, PM_PASSWORD | WDOG_TICKS);
    mmio_write(PM_RSTC, PM_PASSWORD | rstc | PM_RSTC_WRCFG_FULL);
    for (;;)
        __asm__ volatile("wfe");
}

void power_off(u32 code)
{
    shutting_down = true;
    semihost_exit(code);
    watchdog_reset();
}
