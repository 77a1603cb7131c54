/* uapi/syscall.h: system-call numbers and error codes, shared by kernel C,
 * kernel assembly and the EL0 user library. See docs/syscalls.md. */
#ifndef UAPI_SYSCALL_H
#define UAPI_SYSCALL_H

#define SYS_WRITE   0   /* long write(const char *s) */
#define SYS_MALLOC  1   /* void *malloc(void): page address or -1 */
#define SYS_CLONE   2   /* long clone(void *stack): child pid / 0 / -errno */
#define SYS_EXIT    3   /* void exit(void): never returns */
#define NR_SYSCALLS 4   /* numbers >= this get -ENOSYS */

/* Error numbers, Linux values; syscalls return -errno. */
#define EAGAIN  11  /* task table full */
#define ENOMEM  12  /* out of memory */
#define EFAULT  14  /* pointer outside user memory */
#define EINVAL  22  /* invalid argument */
#define ENOSYS  38  /* no such system call */

#define MALLOC_FAILED (-1L) /* what malloc returns when no page is free */

#endif
