/* boot.S: first instructions. Core 0 goes on, the others park. From EL3,
 * EL2 or EL1 we arrive at EL1 with the MMU off, clear BSS, take task 0's
 * kernel stack and call kernel_main. */
#include "sysregs.h"
#include "param.h"
#include "asm-offsets.h"

.section .text.boot
.globl _start
_start:
    mrs     x0, mpidr_el1
    and     x0, x0, #0xff               /* Aff0: core number */
    cbz     x0, primary
park:
    wfe
    b       park

primary:
    mrs     x0, CurrentEL
    lsr     x0, x0, #CURRENTEL_SHIFT
    adrp    x1, boot_el                 /* in .data: survives the BSS clear */
    str     x0, [x1, :lo12:boot_el]
    ldr     x1, =SCTLR_VALUE
    msr     sctlr_el1, x1
    cmp     x0, #3
    b.eq    from_el3
    cmp     x0, #2
    b.eq    from_el2
    b       el1_entry

from_el3:
    mrs     x1, cntfrq_el0              /* firmware-less boot: set the counter rate */
    cbnz    x1, 1f
    ldr     x1, =FALLBACK_CNTFRQ
    msr     cntfrq_el0, x1
1:  ldr     x1, =SCR_VALUE
    msr     scr_el3, x1
    bl      el2_setup
    ldr     x1, =SPSR_EL1_BOOT
    msr     spsr_el3, x1
    adr     x1, el1_entry
    msr     elr_el3, x1
    eret

from_el2:
    bl      el2_setup
    ldr     x1, =SPSR_EL1_BOOT
    msr     spsr_el2, x1
    adr     x1, el1_entry
    msr     elr_el2, x1
    eret

/* el2_setup: EL1 runs AArch64 and owns the physical timer. */
el2_setup:
    ldr     x1, =HCR_VALUE
    msr     hcr_el2, x1
    mov     x1, #CNTHCTL_VALUE
    msr     cnthctl_el2, x1
    msr     cntvoff_el2, xzr
    ret

el1_entry:
    adrp    x0, __bss_start
    add     x0, x0, :lo12:__bss_start
    adrp    x1, __bss_end
    add     x1, x1, :lo12:__bss_end
1:  cmp     x0, x1
    b.hs    2f
    str     xzr, [x0], #8
    b       1b
2:  adrp    x0, kstacks                 /* task 0 (idle) owns kstacks[0] */
    add     x0, x0, :lo12:kstacks
    add     sp, x0, #KSTACK_SIZE
    adrp    x0, vectors
    add     x0, x0, :lo12:vectors
    msr     vbar_el1, x0
    bl      kernel_main
    b       park

.section .data
.balign 8
.globl boot_el
boot_el:
    .quad   0
