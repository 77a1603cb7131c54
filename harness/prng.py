"""The seed PRNG shared with the scenarios (docs/protocol.md, "The seed PRNG").

Scenarios draw every input from ``splitmix64(seed)``; a judge that knows the
seed recomputes the same values and so can tell a genuine run from a
transcript recorded with another seed.
"""

MASK64 = (1 << 64) - 1  #: the largest 64-bit value: seeds are 0..MASK64
GOLDEN_GAMMA = 0x9E3779B97F4A7C15
_MUL1, _MUL2 = 0xBF58476D1CE4E5B9, 0x94D049BB133111EB  #: splitmix64's multipliers
#: kernel/include/uapi/linetag.h: the line tag of docs/protocol.md, "Line tags".
LINETAG_SALT = 0x6B742D6C696E6574  # "kt-linet"
LINETAG_SHIFT = 48  #: the tag is the top 16 bits of the hash
LINETAG_DIGITS = 4  #: printed as 4 lower-case hex digits
KERNEL_STREAM = 0  #: the stream of @KT markers; EL0 markers use their tid (>= 1)


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


def _mix(z: int) -> int:
    """One splitmix64 step from state ``z`` (``linetag_mix``)."""
    z = (z + GOLDEN_GAMMA) & MASK64
    z = ((z ^ (z >> 30)) * _MUL1) & MASK64
    z = ((z ^ (z >> 27)) * _MUL2) & MASK64
    return z ^ (z >> 31)


def line_tag(seed: int, stream: int, index: int) -> str:
    """The tag of line ``index`` of ``stream`` in the run keyed by ``seed``,
    as the line carries it (4 hex digits): the twin of ``linetag`` in
    kernel/include/uapi/linetag.h. A kernel marker is (KERNEL_STREAM, seq),
    an EL0 marker (tid, the task's seq).

    >>> line_tag(0, KERNEL_STREAM, 0)
    'ec51'
    """
    z = _mix(seed ^ LINETAG_SALT)
    z = _mix(z ^ stream)
    z = _mix(z ^ index)
    return f"{z >> LINETAG_SHIFT:0{LINETAG_DIGITS}x}"


class SplitMix64:
    """splitmix64, all arithmetic modulo 2**64; same sequence as ``u_rng_next``.

    >>> hex(SplitMix64(0).next())
    '0xe220a8397b1dcdaf'
    """

    def __init__(self, seed: int) -> None:
        self.state = check_seed(seed)

    def next(self) -> int:
        """Advance the state and return the next 64-bit value."""
        value = _mix(self.state)
        self.state = (self.state + GOLDEN_GAMMA) & MASK64
        return value

