/* uapi/linetag.h: the line tag that binds a marker to its run
 * (docs/protocol.md, "Line tags"). One definition for the kernel's @KT
 * markers and the EL0 programs' @KU markers; harness/prng.py's line_tag is
 * its Python twin. A tag is 16 bits of a hash of the run's seed and the
 * line's position: (stream, index) = (0, seq) for a kernel marker and
 * (tid, the task's seq) for an EL0 marker. */
#ifndef UAPI_LINETAG_H
#define UAPI_LINETAG_H

#define LINETAG_SALT 0x6b742d6c696e6574UL  /* "kt-linet": tags differ from other draws */
#define LINETAG_GAMMA 0x9e3779b97f4a7c15UL /* splitmix64's increment */
#define LINETAG_MUL1 0xbf58476d1ce4e5b9UL  /* splitmix64's first multiplier */
#define LINETAG_MUL2 0x94d049bb133111ebUL  /* splitmix64's second multiplier */
#define LINETAG_SHIFT 48                   /* the tag is the top 16 bits of the hash */
#define LINETAG_DIGITS 4                   /* printed as 4 lower-case hex digits */
#define LINETAG_KERNEL_STREAM 0UL          /* the stream of @KT markers; EL0 tids are >= 1 */

#ifndef __ASSEMBLER__
/* linetag_mix: one splitmix64 step from state z (never a fixed point at 0). */
static inline unsigned long linetag_mix(unsigned long z)
{
    z += LINETAG_GAMMA;
    z = (z ^ (z >> 30)) * LINETAG_MUL1;
    z = (z ^ (z >> 27)) * LINETAG_MUL2;
    return z ^ (z >> 31);
}

/* linetag: the tag of line `index` of `stream` in the run keyed by `seed`. */
static inline unsigned long linetag(unsigned long seed, unsigned long stream, unsigned long index)
{
    unsigned long z = linetag_mix(seed ^ LINETAG_SALT);

    z = linetag_mix(z ^ stream);
    z = linetag_mix(z ^ index);
    return z >> LINETAG_SHIFT;
}
#endif

#endif
