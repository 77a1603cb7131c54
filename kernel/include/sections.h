/* sections.h: where the linker put the kernel's parts (kernel/linker.ld). */
#ifndef SECTIONS_H
#define SECTIONS_H

extern char __kernel_start[], __kernel_end[]; /* the whole image, BSS included */
extern char __user_start[], __user_end[];     /* EL0 code and data */
extern char __bss_start[], __bss_end[];
extern char __pool_start[];                   /* the user page pool (mm.c) */

#endif
