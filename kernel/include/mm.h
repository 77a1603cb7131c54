/* mm.h: the user page pool and the user-memory check. */
#ifndef MM_H
#define MM_H

#include "types.h"

/* mm_init: every pool page free; panics if the pool would pass RAM_END. */
void mm_init(void);

/* pool_base / pool_end: the pool is [pool_base(), pool_end()). */
u64 pool_base(void);
u64 pool_end(void);

/* page_alloc: take the lowest free page for pid, zero it; 0 if none free. */
u64 page_alloc(u64 pid);

/* page_owner: pid owning the pool page at addr, 0 if free or not a pool page. */
u64 page_owner(u64 addr);

/* page_give: pass a pool page from one owner to another. */
void page_give(u64 addr, u64 from, u64 to);

/* page_free_all: return every page pid owns to the pool (ascending). */
void page_free_all(u64 pid);

/* user_range_ok: is every byte of [addr, addr+len) user memory? */
bool user_range_ok(u64 addr, u64 len);

#endif
