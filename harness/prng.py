"""The seed PRNG shared with the scenarios (docs/protocol.md, "The seed PRNG").

Scenarios draw every input from ``splitmix64(seed)``; a judge that knows the
seed recomputes the same values and so can tell a genuine run from a
transcript recorded with another seed.
"""

MASK64 = (1 << 64) - 1  #: the largest 64-bit value: seeds are 0..MASK64
GOLDEN_GAMMA = 0x9E3779B97F4A7C15


def check_seed(seed: int) -> int:
    """``seed`` if it is a seed (0..2**64-1); ValueError otherwise."""
    if not 0 <= seed <= MASK64:
        raise ValueError(f"seed {seed} is outside 0..2**64-1")
    return seed


def parse_seed(text: str) -> int:
    """A seed written in decimal (or 0x hex); ValueError if it is not one
    (the message leaves naming the setting to the caller)."""
    value = int(text, 0)
    if not 0 <= value <= MASK64:
        raise ValueError("must be in 0..2**64-1")
    return value


class SplitMix64:
    """splitmix64, all arithmetic modulo 2**64; same sequence as ``u_rng_next``.

    >>> hex(SplitMix64(0).next())
    '0xe220a8397b1dcdaf'
    """

    def __init__(self, seed: int) -> None:
        self.state = check_seed(seed)

    def next(self) -> int:
        """Advance the state and return the next 64-bit value."""
        self.state = (self.state + GOLDEN_GAMMA) & MASK64
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
        return z ^ (z >> 31)

