/* mmio.h: the peripheral address map and register access. */
#ifndef MMIO_H
#define MMIO_H

#include "types.h"

/*
 * Physical address map of the Pi 3 as this kernel uses it (no MMU):
 *
 *   0x00000000  firmware spin tables, then free RAM
 *   0x00080000  kernel image: .text.boot .text .rodata .data | user section | .bss, kernel stacks
 *   _end (page) page pool: POOL_PAGES pages for user tasks
 *   0x3F000000  BCM2835 peripherals (end of the 1 GiB of RAM the ARM sees)
 *   0x40000000  BCM2836 local peripherals (per-core timers and interrupts)
 */
#define PERIPHERAL_BASE  0x3F000000UL
#define LOCAL_BASE       0x40000000UL
#define RAM_END          PERIPHERAL_BASE

/* mmio_write: store a 32-bit value to a device register. */
static inline void mmio_write(u64 reg, u32 val)
{
    *(volatile u32 *)reg = val;
}

/* mmio_read: load a 32-bit value from a device register. */
static inline u32 mmio_read(u64 reg)
{
    return *(volatile u32 *)reg;
}

/* delay_cycles: spin for about n loop iterations (for GPIO set-up). */
static inline void delay_cycles(u64 n)
{
    while (n--)
        __asm__ volatile("nop");
}

#endif
