"""Audit appends to one SQLite file are serialised across processes by an OS lock beside the
database (store.sqlite_write_lock): the next writer waits in the kernel, not in SQLite's
sleeping busy handler, and the chain stays whole."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from pathlib import Path

from dncguard import audit
from dncguard.config import load_settings
from dncguard.store import dispose_engines, get_engine, sqlite_write_lock


def test_the_lock_excludes_another_process(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path / "home")
    engine = get_engine(settings)
    released = tmp_path / "released"
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys
        from pathlib import Path
        from dncguard.config import load_settings
        from dncguard.store import get_engine, sqlite_write_lock
        engine = get_engine(load_settings(home=Path({str(tmp_path / "home")!r})))
        with sqlite_write_lock(engine):
            print("locked", flush=True)
            sys.stdin.readline()
            Path({str(released)!r}).write_text("yes")
        """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdin is not None
        assert holder.stdout.readline().strip() == "locked"
        seen: list[bool] = []

        def take() -> None:
            with sqlite_write_lock(engine):
                seen.append(released.exists())

        taker = threading.Thread(target=take)
        taker.start()
        holder.stdin.write("go\n")
        holder.stdin.flush()
        taker.join(60)
        assert seen == [True]  # it got the lock only after the other process let it go
    finally:
        holder.kill()
        holder.wait()
        dispose_engines()


def test_appends_from_several_threads_and_logs_chain_whole(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path / "home")
    logs = [audit.audit_log(settings) for _ in range(2)]

    def append(log: audit.AuditLog, n: int) -> None:
        for i in range(n):
            log.append_quiet([log.fields("check", "test", who="t", subject=f"s{i}")
                              for _ in range(5)])

    threads = [threading.Thread(target=append, args=(logs[i % 2], 40)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    try:
        assert logs[0].count() == 4 * 40 * 5
        assert logs[0].verify().ok
    finally:
        dispose_engines()
