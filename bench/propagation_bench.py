"""How long a list imported on one replica takes to be served by the others (issue 16).

    python -m bench.propagation_bench --numbers 10000000
    python -m bench.propagation_bench --numbers 10000000 --area-codes 300
    python -m bench.propagation_bench --numbers 1000000 --replicas 3 \\
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test

Creates a database of its own beside the one named (dropped at the end), starts ``--replicas``
``dncguard serve`` processes with separate homes on it, writes a file of ``--numbers`` random
+1 numbers, imports it with ``dncguard lists import`` on replica A's home, and times: the
import (parse, snapshot, publish to PostgreSQL in the import's transaction), then from the
import's return until every other replica blocks a listed number (fetch, verify, rename).
Prints one JSON object. Not part of CI.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import sqlalchemy as sa


def _area_codes(n: int) -> np.ndarray:
    """The first ``n`` area codes whose numbers are valid (10: a dense list, stored as a NANP
    bitmap; a few hundred: a sparse one, stored sorted at 8 bytes a number)."""
    import phonenumbers

    valid = [a for a in range(201, 1000)
             if phonenumbers.is_valid_number(phonenumbers.parse(f"+1{a}2345678"))]
    return np.array(valid[:n])


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(home: Path, url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DNCGUARD_")}
    env.update({"DNCGUARD_HOME": str(home), "DNCGUARD_DATABASE_URL": url,
                "DNCGUARD_RULES_ENABLED": "false"})
    return env


def _numbers(path: Path, n: int, areas: int) -> int:
    rng = np.random.default_rng(16)
    npas = _area_codes(areas)
    nums = (10_000_000_000 + npas[rng.integers(0, npas.size, n)] * 10_000_000
            + rng.integers(200, 1000, n) * 10_000 + rng.integers(0, 10_000, n))
    with path.open("w") as fh:
        for start in range(0, n, 1_000_000):
            part = nums[start: start + 1_000_000]
            fh.write("\n".join("+" + s for s in part.astype(str).tolist()) + "\n")
    return int(nums[0])


def _key(home: Path, url: str) -> str:
    from dncguard.config import load_settings
    from dncguard.server.keys import KeyStore
    from dncguard.store import get_engine

    engine = get_engine(load_settings(home=home, database_url=url))
    return KeyStore(engine).create("bench", ["check"])[1]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--numbers", type=int, default=10_000_000)
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--area-codes", type=int, default=10,
                        help="spread the numbers over this many area codes")
    parser.add_argument("--database-url",
                        default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    args = parser.parse_args(argv)
    admin_url = sa.make_url(args.database_url)
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    db = f"dncguard_bench_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'create database "{db}"'))
    url = admin_url.set(database=db).render_as_string(hide_password=False)
    root = Path(tempfile.mkdtemp(prefix="dncguard-propagation-"))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        key = _key(root / "home-0", url)
        ports = []
        for i in range(args.replicas):
            port = _port()
            log = (root / f"replica-{i}.log").open("ab")
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "dncguard", "serve", "--port", str(port)],
                env=_env(root / f"home-{i}", url), stdout=log, stderr=log,
                start_new_session=True))
            ports.append(port)
        for port in ports:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit(f"replica on port {port} did not start")
                time.sleep(0.1)
        src = root / "numbers.txt"
        t = time.perf_counter()
        listed = _numbers(src, args.numbers, args.area_codes)
        generated = time.perf_counter() - t
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "dncguard", "lists", "import", str(src),
                        "--kind", "internal", "--name", "bench"],
                       env=_env(root / "home-0", url), check=True, capture_output=True)
        imported = time.perf_counter() - t
        served: dict[str, float] = {}
        t = time.perf_counter()
        pending = {f"replica-{i}": p for i, p in enumerate(ports) if i}
        headers = {"Authorization": f"Bearer {key}"}
        while pending:
            for name, port in list(pending.items()):
                got = httpx.post(f"http://127.0.0.1:{port}/v1/check", headers=headers,
                                 json={"phone": f"+{listed}"}, timeout=30).json()
                assert got["decision"] in ("block", "error"), got
                if got["decision"] == "block":
                    served[name] = round(time.perf_counter() - t, 3)
                    del pending[name]
            time.sleep(0.02)
        with sa.create_engine(url).connect() as conn:
            stored = conn.execute(sa.text("select coalesce(sum(size), 0) from shared_chunks")
                                  ).scalar_one()
        result = {"numbers": args.numbers, "area_codes": args.area_codes,
                  "replicas": args.replicas,
                  "generate_s": round(generated, 2), "import_and_publish_s": round(imported, 2),
                  "served_after_import_s": served,
                  "propagation_s": max(served.values()) if served else 0.0,
                  "stored_bytes": int(stored)}
        print(json.dumps(result))
        return result
    finally:
        for proc in procs:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(proc.pid, signal.SIGKILL)
        with admin.connect() as conn:
            conn.execute(sa.text(f'drop database if exists "{db}" with (force)'))
        admin.dispose()


if __name__ == "__main__":
    main()
