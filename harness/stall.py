"""What a stalled run stopped doing, read from its last markers, rule first
(KernelStalled's message): the kernel never came back from the tick that
ended a slice or from an exit (the scheduler), ticks stopped while a task
went on (the timer), or only the idle task runs (live tasks left waiting, or
no all_exited after the last exit)."""

from __future__ import annotations

from .events import Boot, Event, Switch, Task, Tick, live_pids
from .text import printable


def _ticks_in_slice(events: list[Event], tick: Tick) -> int:
    """How many ticks ``tick``'s task had taken, ``tick`` included, since it
    was last switched in (or since the run started)."""
    n = 0
    for e in reversed(events[:events.index(tick) + 1]):
        if isinstance(e, Switch) and e.to == tick.pid:
            break
        n += isinstance(e, Tick) and e.pid == tick.pid
    return n


def _idle_verdict(events: list[Event]) -> str:
    """What a run that only idles says: every task exited but no all_exited
    came, or live tasks are left waiting while the idle task runs."""
    live = live_pids(events)
    busy = [e for e in events if not (isinstance(e, Tick) and e.pid == 0)]
    since = f"line {busy[-1].line}: {printable(busy[-1].raw, 120)!r}" if busy else "the start"
    if not live:
        return (f"run: when the last user task has exited the kernel must say all_exited (then "
                f"end): every task is a zombie, yet only idle ticks since {since}")
    return (f"scheduling: the idle task may run only when no user task is runnable: pids "
            f"{sorted(live)} are live, yet only idle ticks since {since}")


def what_stopped(events: list[Event]) -> str:
    """What a stalled run's last markers say stopped, rule first: the kernel
    never came back from the tick that ended a time slice (a scheduler that
    finds nothing to run), or ticks stopped while the task went on."""
    if not events:
        return "no marker since QEMU started"
    last = events[-1]
    at = f"line {last.line}: {printable(last.raw, 120)!r}"
    if isinstance(last, Tick) and last.pid == 0:
        return _idle_verdict(events)
    boot = next((e for e in events if isinstance(e, Boot)), None)
    hz = f" ({boot.hz} a second)" if boot is not None else ""
    ticks = [e for e in events if isinstance(e, Tick)]
    if not ticks:
        return (f"timer: the timer must tick{hz} while a task runs: no tick at all, and the "
                f"last marker is {at} (a timer never started, or the kernel stuck with IRQs masked?)")
    if isinstance(last, Task) and last.state == "zombie":
        return (f"scheduling: when a task ends the scheduler must run another one (recharging "
                f"the counters, counter / 2 + priority, if every slice is used): the kernel never "
                f"came back from scheduling after {at} (no switch, no all_exited)")
    used = _ticks_in_slice(events, ticks[-1])
    if last is ticks[-1] and boot is not None and boot.priority is not None and used >= boot.priority:
        return (f"scheduling: when every runnable task has used its time slice the counters must "
                f"be recharged (counter / 2 + priority) and a task run: the kernel never came "
                f"back from the tick at {at}, which ended pid {last.pid}'s slice ({used} ticks, "
                f"priority {boot.priority}): no switch, no return to EL0 after it")
    after = len(events) - 1 - events.index(ticks[-1])
    return (f"timer: the timer must keep ticking{hz} while a task runs: no tick since "
            f"n={ticks[-1].n} at line {ticks[-1].line} (pid {ticks[-1].pid}'s tick {used} of its "
            f"slice), then {after} more markers (a timer not re-armed, or the kernel stuck with "
            f"IRQs masked?)")
