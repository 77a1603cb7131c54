/* syscall.c: the system-call table and the one dispatcher. Handlers are
 * thin adapters: they fetch arguments from the frame, check user pointers,
 * and call the subsystem (docs/syscalls.md). */
#include "events.h"
#include "mm.h"
#include "printk.h"
#include "sched.h"
#include "syscall.h"
#include "task.h"
#include "uapi/syscall.h"

/* user_strlen: length of the NUL-terminated user string at s, checking
 * every byte is user memory before reading it: -EFAULT if one is not,
 * -EINVAL if there is no NUL within the first WRITE_MAX + 1 bytes. */
static long user_strlen(u64 s)
{
    for (u64 n = 0; n <= WRITE_MAX; n++) {
        if (!user_range_ok(s + n, 1))
            return -EFAULT;
        if (*(const char *)(s + n) == '\0')
            return (long)n;
    }
    return -EINVAL;
}

/* sys_write: write(s): the string to the console; its length or -errno. */
static long sys_write(struct pt_regs *regs)
{
    u64 s = regs->regs[0];
    long len = user_strlen(s);

    if (len < 0)
        return len;
#if KT_TEST
    ev_out(current->pid, (const char *)s, (u64)len);
#else
    for (long i = 0; i < len; i++)
        console_putc(((const char *)s)[i]);
#endif
    return len;
}

/* sys_malloc: malloc(): a zeroed page owned by the caller, or -1. */
static long sys_malloc(struct pt_regs *regs)
{
    u64 page = page_alloc(current->pid);

    (void)regs;
    return page ? (long)page : MALLOC_FAILED;
}

/* sys_clone: clone(stack): the child's pid, or -errno. */
static long sys_clone(struct pt_regs *regs)
{
    return task_clone(regs->regs[0]);
}

/* sys_exit: exit(): never returns. */
static long sys_exit(struct pt_regs *regs)
{
    (void)regs;
    task_exit("exit");
}

/* sys_ni: every number without a call. */
static long sys_ni(struct pt_regs *regs)
{
    (void)regs;
    return -ENOSYS;
}

/* The table: every slot defaults to sys_ni, then the real calls. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Woverride-init"
static const syscall_fn syscall_table[NR_SYSCALLS] = {
    [0 ... NR_SYSCALLS - 1] = sys_ni,
    [SYS_WRITE]  = sys_write,
    [SYS_MALLOC] = sys_malloc,
    [SYS_CLONE]  = sys_clone,
    [SYS_EXIT]   = sys_exit,
};
#pragma GCC diagnostic pop

/* syscall_returns: false for the calls that never return to the caller,
 * which are reported on entry instead. */
static bool syscall_returns(u32 nr)
{
    return nr != SYS_EXIT;
}

void syscall_dispatch(struct pt_regs *regs)
{
    u64 x8 = regs->regs[8], a0 = regs->regs[0], a1 = regs->regs[1], a2 = regs->regs[2];
    u64 sp = regs->sp; /* sp_el0 at the svc: where the task's stack is */
    u32 nr = (u32)x8; /* only w8 names the call */
    syscall_fn fn = nr < NR_SYSCALLS ? syscall_table[nr] : sys_ni;
    long ret;

    if (!syscall_returns(nr))
        ev_sys(current->pid, x8, a0, a1, a2, sp, false, 0);
    ret = fn(regs);
    regs->regs[0] = (u64)ret; /* the one place a syscall's result is stored */
    ev_sys(current->pid, x8, a0, a1, a2, sp, true, ret);
}
