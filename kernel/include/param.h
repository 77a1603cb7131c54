/* param.h: the kernel's tunables, one place. */
#ifndef PARAM_H
#define PARAM_H

#define NR_TASKS         16    /* task table slots; slot 0 is the idle task */
#define TIMER_HZ         1000  /* timer ticks per second */
#define DEFAULT_PRIORITY 2     /* ticks per time slice for a user task */
#define PAGE_SHIFT       12
#define PAGE_SIZE        (1 << PAGE_SHIFT) /* pool page and kernel stack size */
#define POOL_PAGES       256   /* pages in the user page pool (1 MiB; each is console markers in malloc_exhaustion) */
#define WRITE_MAX        1024  /* longest string write() accepts, in bytes */
#define CMDLINE_MAX      80    /* longest test-mode command line, in bytes */
#define PROTO_VERSION    2     /* test-mode marker protocol (docs/protocol.md) */

#define FALLBACK_CNTFRQ  19200000    /* Pi 3 crystal, if CNTFRQ_EL0 reads 0 */

#endif
