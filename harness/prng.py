"""The seed PRNG shared with the scenarios (docs/protocol.md, "The seed PRNG").

Scenarios draw every input from ``splitmix64(seed)``; a judge that knows the
seed recomputes the same values and so can tell a genuine run from a
transcript recorded with another seed.
"""

MASK64 = (1 << 64) - 1
GOLDEN_GAMMA = 0x9E3779B97F4A7C15


class SplitMix64:
    """splitmix64, all arithmetic modulo 2**64; same sequence as ``u_rng_next``.

    >>> hex(SplitMix64(0).next())
    '0xe220a8397b1dcdaf'
    """

    def __init__(self, seed: int) -> None:
        if not 0 <= seed <= MASK64:
            raise ValueError(f"seed {seed} is outside 0..2**64-1")
        self.state = seed

    def next(self) -> int:
        """Advance the state and return the next 64-bit value."""
        self.state = (self.state + GOLDEN_GAMMA) & MASK64
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
        return z ^ (z >> 31)

