/* types.h: fixed-width integer types for the freestanding kernel. */
#ifndef TYPES_H
#define TYPES_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

typedef uint8_t  u8;
typedef uint32_t u32;
typedef uint64_t u64;
typedef int64_t  s64;

#define ALIGNED(x, a) (((x) & ((a) - 1)) == 0)

#endif
