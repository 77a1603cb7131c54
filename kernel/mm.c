/* mm.c: the user page pool. POOL_PAGES pages right after the kernel's BSS,
 * each owned by one task (by pid) or free. No MMU: a page's address is
 * what the user task uses. */
#include "events.h"
#include "mm.h"
#include "mmio.h"
#include "panic.h"
#include "param.h"
#include "sections.h"

#define PAGE_FREE 0 /* owner of a free page (pid 0, idle, never owns one) */

static u64 owner[POOL_PAGES]; /* owner[i]: pid owning page i, or PAGE_FREE */

_Static_assert(POOL_PAGES > 0, "the pool needs pages");

void mm_init(void)
{
    if (pool_end() > RAM_END)
        panic("mm", 0, 0, pool_end(), "mm_init: the page pool runs past RAM");
    for (u64 i = 0; i < POOL_PAGES; i++)
        owner[i] = PAGE_FREE;
}

u64 pool_base(void)
{
    return (u64)__pool_start;
}

u64 pool_end(void)
{
    return pool_base() + (u64)POOL_PAGES * PAGE_SIZE;
}

/* page_addr: address of pool page i. */
static u64 page_addr(u64 i)
{
    return pool_base() + (i << PAGE_SHIFT);
}

/* in_pool: does addr lie in the pool? */
static bool in_pool(u64 addr)
{
    return addr >= pool_base() && addr < pool_end();
}

/* page_index: index of the pool page holding addr; addr must be in_pool. */
static u64 page_index(u64 addr)
{
    return (addr - pool_base()) >> PAGE_SHIFT;
}

/* zero_page: fill one page with zeros, 8 bytes at a time. */
static void zero_page(u64 addr)
{
    u64 *p = (u64 *)addr;

    for (u64 i = 0; i < PAGE_SIZE / sizeof(u64); i++)
        p[i] = 0;
}

u64 page_alloc(u64 pid)
{
    for (u64 i = 0; i < POOL_PAGES; i++) {
        if (owner[i] != PAGE_FREE)
            continue;
        owner[i] = pid;
        zero_page(page_addr(i));
        ev_palloc(pid, page_addr(i));
        return page_addr(i);
    }
    return 0;
}

u64 page_owner(u64 addr)
{
    return in_pool(addr) ? owner[page_index(addr)] : PAGE_FREE;
}

void page_give(u64 addr, u64 from, u64 to)
{
    owner[page_index(addr)] = to;
    ev_pmove(from, to, addr);
}

void page_free_all(u64 pid)
{
    for (u64 i = 0; i < POOL_PAGES; i++) {
        if (owner[i] != pid)
            continue;
        owner[i] = PAGE_FREE;
        ev_pfree(pid, page_addr(i));
    }
}

/* user_bytes_at: how many bytes from addr on are user memory without a
 * break: up to the end of the user section or of an owned page; 0 if addr
 * is not user memory at all. */
static u64 user_bytes_at(u64 addr)
{
    if (addr >= (u64)__user_start && addr < (u64)__user_end)
        return (u64)__user_end - addr;
    if (page_owner(addr) != PAGE_FREE)
        return PAGE_SIZE - (addr & (PAGE_SIZE - 1));
    return 0;
}

bool user_range_ok(u64 addr, u64 len)
{
    if (addr + len < addr) /* wraps around: both ends must be checked */
        return false;
    while (len) {
        u64 run = user_bytes_at(addr);
        if (!run)
            return false;
        if (run >= len)
            return true;
        addr += run;
        len -= run;
    }
    return true;
}
