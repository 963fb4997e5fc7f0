"""Run a module as ``__main__`` and record the process's own peak memory.

    BENCH_PEAK_FILE=/tmp/x python -m bench.peak dncguard scrub ...

``getrusage``'s ``ru_maxrss`` also counts the parent's memory at fork time (Linux carries it
across ``exec``), so the figure comes from ``VmHWM`` in ``/proc/self/status`` instead: the
peak resident size of this process's own address space.
"""

from __future__ import annotations

import atexit
import os
import runpy
import sys


def _dump() -> None:
    target = os.environ.get("BENCH_PEAK_FILE")
    if not target:
        return
    try:
        with open("/proc/self/status") as fh:
            kb = next(int(line.split()[1]) for line in fh if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return
    with open(target, "w") as out:
        out.write(str(kb))


if __name__ == "__main__":
    atexit.register(_dump)
    module = sys.argv[1]
    sys.argv = sys.argv[1:]
    runpy.run_module(module, run_name="__main__", alter_sys=True)
