"""How much CPU *other* processes take while a benchmark phase runs (stdlib only: imported by both
benchmarks/speed.py and benchmarks/_d3rlpy_speed.py, which run in different virtualenvs).

Busy time of this process's CPUs (its affinity mask) from /proc/stat minus this process's (and its waited-for children's) CPU time, as a
share of wall time x usable cores. A dev machine is shared; a number timed with company is reported as
such rather than silently published.
"""

from __future__ import annotations

import os
import resource
import time
from pathlib import Path


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (``platform.processor()`` where that is unreadable)."""
    import platform

    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def _busy_s() -> float | None:
    """Busy seconds of the CPUs this process may run on (all of them unless pinned)."""
    try:
        lines = Path("/proc/stat").read_text().splitlines()
    except OSError:
        return None
    try:
        mine = {f"cpu{c}" for c in os.sched_getaffinity(0)}
    except AttributeError:
        mine = None
    total = 0
    for line in lines:
        fields = line.split()
        if not fields or not fields[0].startswith("cpu") or fields[0] == "cpu":
            continue
        if mine is not None and fields[0] not in mine:
            continue
        user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[1:9])
        total += user + nice + system + irq + softirq + steal
    return total / os.sysconf("SC_CLK_TCK")


def _own_s() -> float:
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


class CpuMeter:
    def __init__(self):
        self.t0, self.busy0, self.own0 = time.perf_counter(), _busy_s(), _own_s()

    def foreign_share(self) -> float | None:
        busy = _busy_s()
        if busy is None or self.busy0 is None:
            return None
        wall = time.perf_counter() - self.t0
        foreign = (busy - self.busy0) - (_own_s() - self.own0)
        return max(0.0, foreign / max(wall * cores(), 1e-9))


def wait_for_quiet(
    max_wait_s: float, threshold: float = 0.10, window_s: float = 5.0, log=None
) -> float | None:
    """Wait (up to max_wait_s) until other processes use < threshold of the CPU over window_s; return
    the last share measured."""
    deadline = time.perf_counter() + max_wait_s
    while True:
        m = CpuMeter()
        time.sleep(window_s)
        share = m.foreign_share()
        if share is None or share < threshold or time.perf_counter() >= deadline:
            return share
        if log is not None:
            log(f"other processes use {share:.0%} of the CPU; waiting")


def clean_repeats(run_once, repeats: int, max_busy: float, retries: int, quiet_wait_s: float, log=None):
    """Run `run_once() -> (rate, steps)` `repeats` times, redoing any repeat during which other processes
    took more than `max_busy` of the CPU (after waiting up to `quiet_wait_s` for quiet), at most
    `retries` redos in all. Returns a dict: median rate, accepted rates/steps/shares, discarded count,
    and whether every accepted repeat was clean."""
    import statistics

    rates, steps, shares, discarded, left = [], [], [], [], retries
    while len(rates) < repeats:
        meter = CpuMeter()
        rate, n = run_once()
        share = meter.foreign_share()
        if share is not None and share > max_busy and left > 0:
            left -= 1
            discarded.append({"rate": rate, "foreign_cpu_share": share})
            if log is not None:
                log(f"repeat discarded: other processes took {share:.0%} of the CPU")
            wait_for_quiet(quiet_wait_s, threshold=max_busy, log=log)
            continue
        rates.append(rate)
        steps.append(n)
        shares.append(share)
    known = [s for s in shares if s is not None]
    return {
        "median": statistics.median(rates),
        "repeats": rates,
        "steps": steps,
        "foreign_cpu_shares": shares,
        "foreign_cpu_share": max(known) if known else None,
        "clean": all(s <= max_busy for s in known),
        "discarded": discarded,
    }
