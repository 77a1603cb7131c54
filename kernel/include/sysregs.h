/* sysregs.h: values for the system registers boot and exceptions use.
 * Included by C and assembly. */
#ifndef SYSREGS_H
#define SYSREGS_H

/* SCTLR_EL1: MMU and caches off; alignment checks on at EL1 and EL0. */
#define SCTLR_RES1        ((3 << 28) | (3 << 22) | (1 << 20) | (1 << 11))
#define SCTLR_A           (1 << 1)   /* alignment fault on misaligned access */
#define SCTLR_SA          (1 << 3)   /* EL1 stack alignment check */
#define SCTLR_SA0         (1 << 4)   /* EL0 stack alignment check */
#define SCTLR_VALUE       (SCTLR_RES1 | SCTLR_A | SCTLR_SA | SCTLR_SA0)

/* HCR_EL2: EL1 runs AArch64, nothing trapped to EL2. */
#define HCR_RW            (1 << 31)
#define HCR_VALUE         HCR_RW

/* CNTHCTL_EL2: EL1 may use the physical counter and timer. */
#define CNTHCTL_EL1PCTEN  (1 << 0)
#define CNTHCTL_EL1PCEN   (1 << 1)
#define CNTHCTL_VALUE     (CNTHCTL_EL1PCTEN | CNTHCTL_EL1PCEN)

/* SCR_EL3: lower levels non-secure and AArch64; HVC enabled. */
#define SCR_RES1          (3 << 4)
#define SCR_NS            (1 << 0)
#define SCR_HCE           (1 << 8)
#define SCR_RW            (1 << 10)
#define SCR_VALUE         (SCR_RES1 | SCR_RW | SCR_HCE | SCR_NS)

/* SPSR values for eret. */
#define SPSR_MASK_ALL     (0xf << 6)  /* D, A, I, F masked */
#define SPSR_EL1h         5
#define SPSR_EL0t         0
#define SPSR_EL1_BOOT     (SPSR_MASK_ALL | SPSR_EL1h)
#define SPSR_EL0_USER     SPSR_EL0t   /* EL0, interrupts unmasked */

/* CurrentEL holds the level in bits [3:2]. */
#define CURRENTEL_SHIFT   2

/* ESR_EL1 exception classes (ESR[31:26]). */
#define ESR_EC_SHIFT      26
#define ESR_EC_MASK       0x3f
#define ESR_EC_UNKNOWN    0x00
#define ESR_EC_SVC64      0x15
#define ESR_EC_SYS64      0x18
#define ESR_EC_IABT_LOW   0x20
#define ESR_EC_IABT_CUR   0x21
#define ESR_EC_PC_ALIGN   0x22
#define ESR_EC_DABT_LOW   0x24
#define ESR_EC_DABT_CUR   0x25
#define ESR_EC_SP_ALIGN   0x26
#define ESR_EC_BRK64      0x3c

#endif
