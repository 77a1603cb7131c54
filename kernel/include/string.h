/* string.h: the few memory and string routines the kernel needs.
 * memset and memcpy keep their standard names: GCC may emit calls to them. */
#ifndef KSTRING_H
#define KSTRING_H

#include "types.h"

void *memset(void *dst, int c, size_t n);
void *memcpy(void *dst, const void *src, size_t n);

/* str_eq: do two C strings hold the same bytes? */
bool str_eq(const char *a, const char *b);

#endif
