"""Numbers the kernel and the harness share, mirrored from
kernel/include/uapi/syscall.h (a self-test checks that they still match).

Judges may use these instead of bare numbers: ``t.of(Sys, nr=SYS_CLONE)``.
"""

SYS_WRITE = 0  #: long write(const char *s)
SYS_MALLOC = 1  #: void *malloc(void): page address or -1
SYS_CLONE = 2  #: long clone(void *stack): child pid / 0 / -errno
SYS_EXIT = 3  #: void exit(void): never returns; its ``sys`` marker has no ret
NR_SYSCALLS = 4  #: numbers >= this get -ENOSYS

EAGAIN = 11  #: task table full
ENOMEM = 12  #: out of memory
EFAULT = 14  #: pointer outside user memory
EINVAL = 22  #: invalid argument
ENOSYS = 38  #: no such system call

MALLOC_FAILED = -1  #: what malloc returns when no page is free

SYSCALL_NAMES: dict[int, str] = {
    SYS_WRITE: "write",
    SYS_MALLOC: "malloc",
    SYS_CLONE: "clone",
    SYS_EXIT: "exit",
}
