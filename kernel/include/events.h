/* events.h: test-mode markers (docs/protocol.md). In the test image each
 * ev_* call prints one marker line; in the demo image they compile away.
 * Callers hold IRQs masked (all kernel code but the idle wait does), so a
 * marker line is never split by another. */
#ifndef EVENTS_H
#define EVENTS_H

#include "types.h"

#ifndef KT_TEST
#define KT_TEST 0
#endif

#if KT_TEST
/* ev_<kind>(fields...): print one `<kind>` marker with those fields, in the
 * order docs/protocol.md gives; the sequence number is added here. */
void ev_boot(void);
void ev_ready(void);
void ev_scenario(const char *name);
void ev_list_end(u64 count);
void ev_error(const char *what, const char *line);
void ev_start(const char *scenario, u64 seed);
void ev_task(u64 pid, u64 parent, const char *state, const char *reason);
void ev_switch(u64 from, u64 to);
void ev_tick(u64 pid, u64 n);
void ev_sys(u64 pid, u64 x8, u64 a0, u64 a1, u64 a2, u64 sp, bool has_ret, s64 ret);
void ev_out(u64 pid, const char *bytes, u64 len);
void ev_palloc(u64 pid, u64 addr);
void ev_pfree(u64 pid, u64 addr);
void ev_pmove(u64 from, u64 to, u64 addr);
void ev_fault(u64 pid, u64 esr, u64 elr, u64 far, const char *what);
void ev_panic(const char *vector, u64 esr, u64 elr, u64 far, const char *what);
void ev_all_exited(void);
void ev_end(const char *reason);
#else
static inline void ev_boot(void) {}
static inline void ev_ready(void) {}
static inline void ev_scenario(const char *n) { (void)n; }
static inline void ev_list_end(u64 c) { (void)c; }
static inline void ev_error(const char *w, const char *l) { (void)w; (void)l; }
static inline void ev_start(const char *s, u64 seed) { (void)s; (void)seed; }
static inline void ev_task(u64 p, u64 pp, const char *s, const char *r)
{ (void)p; (void)pp; (void)s; (void)r; }
static inline void ev_switch(u64 f, u64 t) { (void)f; (void)t; }
static inline void ev_tick(u64 p, u64 n) { (void)p; (void)n; }
static inline void ev_sys(u64 p, u64 x8, u64 a0, u64 a1, u64 a2, u64 sp, bool h, s64 r)
{ (void)p; (void)x8; (void)a0; (void)a1; (void)a2; (void)sp; (void)h; (void)r; }
static inline void ev_out(u64 p, const char *b, u64 l) { (void)p; (void)b; (void)l; }
static inline void ev_palloc(u64 p, u64 a) { (void)p; (void)a; }
static inline void ev_pfree(u64 p, u64 a) { (void)p; (void)a; }
static inline void ev_pmove(u64 f, u64 t, u64 a) { (void)f; (void)t; (void)a; }
static inline void ev_fault(u64 p, u64 e, u64 l, u64 f, const char *w)
{ (void)p; (void)e; (void)l; (void)f; (void)w; }
static inline void ev_panic(const char *v, u64 e, u64 l, u64 f, const char *w)
{ (void)v; (void)e; (void)l; (void)f; (void)w; }
static inline void ev_all_exited(void) {}
static inline void ev_end(const char *r) { (void)r; }
#endif

#endif
