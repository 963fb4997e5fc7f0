"""The docs are tested (issue 14, item 9): every shell and curl example of README.md and
docs/*.md (extracted by :mod:`tests.docs_examples`) is checked.

* **Tier 1, every invocation parses.** Each documented ``dncguard ...`` command line is parsed
  by the real CLI (typer's click command, ``make_context(..., resilient_parsing=False)`` down
  the subcommand chain) without running it: a renamed command, a removed flag or a wrong arity
  fails, naming the file and line. Placeholders (``FILE``, ``PHONE``, ``JOB_ID``, ``$KEY``,
  ``...``) are plain values. An optional group ``[--flag VALUE]`` is parsed with the command;
  one that lists flags without their values (``[--state --zip ...]``) has each flag looked up
  on the command. :data:`PARSE_SKIPS` lists what is not parsed, with why.
* **Tier 2, the examples run.** Each page is walked in order, as a reader would type it, in a
  temporary world: ``~`` and ``/srv`` map into the test's directory, the files the examples name
  are created (fictional 555-01xx numbers), ``dncguard`` runs in-process through
  :func:`dncguard.cli.run`, ``dncguard serve`` and ``dncguard cxone sandbox`` run as real
  processes on free loopback ports (always stopped), and ``curl`` is played with httpx against
  them. Exit codes are checked, and where the text around an example states an outcome (a
  decision, a reason code, a count, "prints the key once", a JSON answer) the test asserts it.
  :data:`NOT_RUN` lists the sections that stay tier 1 only, with why; a test fails when a page
  has a ``dncguard`` or ``curl`` example that is neither walked nor listed there.

When this test fails after a change, either the change broke what the docs promise, or the
docs must follow the change: fix the example (or its sentence) the failure names.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer.main

from dncguard.cli import app, run
from dncguard.store import dispose_engines

from .docs_examples import ROOT, Block, Command, all_blocks, invocations, mentions
from .server.conftest import Server, free_port, server_env

try:  # typer vendors click (typer >= 0.2x); its commands are not the installed click's
    from typer._click import exceptions as click
except ImportError:  # pragma: no cover - an older typer uses click itself
    from click import exceptions as click  # type: ignore[no-redef]

BLOCKS: list[Block] = all_blocks()
INVOCATIONS: list[Command] = invocations()
CLI = typer.main.get_command(app)

# -- tier 1: every documented invocation parses --------------------------------------------------

#: Invocations tier 1 does not parse, as ``"file: command"`` -> why. Empty: parsing needs no
#: file, network or database (make_context converts the values and runs nothing), so every
#: documented command line, placeholders included, is parsed offline.
PARSE_SKIPS: dict[str, str] = {}


def parse(args: list[str]) -> tuple[Any, Any]:
    """The command ``dncguard ARGS`` names and its parsed context; raises click's UsageError
    (or BadParameter) as the CLI would, without running anything."""
    ctx = CLI.make_context("dncguard", list(args), resilient_parsing=False)
    cmd = CLI
    while hasattr(cmd, "resolve_command"):  # a group: go down to the subcommand
        rest = [*getattr(ctx, "_protected_args", []), *ctx.args]
        if not rest:
            raise click.UsageError("missing command", ctx=ctx)
        name, sub, rest = cmd.resolve_command(ctx, rest)
        assert sub is not None and name is not None
        ctx = sub.make_context(name, rest, parent=ctx, resilient_parsing=False)
        cmd = sub
    return cmd, ctx


def _option(cmd: Any, flag: str) -> Any:
    for p in cmd.params:
        if flag in (*p.opts, *p.secondary_opts):
            return p
    return None


def optional_problems(inv: Command) -> list[str]:
    """Each ``[...]`` group of ``inv``: parsed with the command when it holds whole options;
    a flag written without its value (``[--state --zip]``) is looked up on the command."""
    problems: list[str] = []
    cmd, _ = parse(inv.argv[1:])
    for group in inv.optional:
        try:
            parse([*inv.argv[1:], *group])
            continue
        except click.ClickException:
            pass
        i = 0
        while i < len(group):
            word = group[i]
            if word == "...":  # `[--scope ...]`: more of the same
                i += 1
                continue
            if not word.startswith("-"):
                problems.append(f"[{' '.join(group)}]: {word!r} is not an option")
                i += 1
                continue
            opt = _option(cmd, word)
            if opt is None:
                problems.append(f"[{' '.join(group)}]: no option {word}")
                i += 1
                continue
            takes_value = not getattr(opt, "is_flag", False) and not getattr(opt, "count", False)
            value = group[i + 1] if i + 1 < len(group) and not group[i + 1].startswith("-") \
                else None
            if takes_value and value is not None:
                try:
                    parse([*inv.argv[1:], word, value])
                except click.ClickException as exc:
                    problems.append(f"[{word} {value}]: {exc.format_message()}")
                i += 2
            elif not takes_value and value is not None:
                problems.append(f"[{word} {value}]: {word} takes no value")
                i += 2
            else:  # a flag, or an option shown without its value: the name exists
                i += 1
    return problems


def test_the_examples_are_found() -> None:
    """The extraction sees the pages' examples (a broken fence or a renamed page fails here
    rather than silently testing nothing)."""
    files = {c.file for c in INVOCATIONS}
    assert {"README.md", "docs/audit.md", "docs/cxone.md", "docs/migrations.md",
            "docs/rules.md", "docs/service.md"} <= files
    assert len(INVOCATIONS) >= 50
    curls = [c for b in BLOCKS for c in b.commands if c.program == "curl"]
    assert len(curls) >= 20
    # continuation lines, comments, env prefixes and optional groups are understood
    by_text = {c.text: c for b in BLOCKS for c in b.commands}
    ftc = next(c for c in INVOCATIONS if "ftc-202.zip" in c.argv)
    assert ftc.argv[-2:] == ["--name", "us-ftc"] and ftc.comment.startswith("FTC download")
    assert any(c.env.get("DNCGUARD_SERVER_PORT") and c.background for c in by_text.values())
    assert any(c.optional for c in INVOCATIONS)


@pytest.mark.parametrize("inv", INVOCATIONS, ids=lambda c: f"{c.where} {' '.join(c.argv[1:3])}")
def test_every_documented_invocation_parses(inv: Command) -> None:
    key = f"{inv.file}: {inv.text}"
    if key in PARSE_SKIPS:
        pytest.skip(PARSE_SKIPS[key])
    try:
        cmd, _ = parse(inv.argv[1:])
    except click.ClickException as exc:
        pytest.fail(f"{inv.where}: `{inv.text}` does not parse: {exc.format_message()}",
                    pytrace=False)
    assert not hasattr(cmd, "resolve_command"), f"{inv.where}: `{inv.text}` names no command"
    problems = optional_problems(inv)
    assert not problems, f"{inv.where}: `{inv.text}`: " + "; ".join(problems)


def mention_problems(text: str) -> list[str]:
    """What is wrong with a ``dncguard ...`` span of the prose: a command that does not exist,
    or a flag its command does not have. The span may be partial (``dncguard check``) and hold
    syntax (``[--at T]``, ``<revision>``, ``verify|export|prove``): arity is not checked."""
    words = [w.strip("[]") for w in text.split()[1:]]
    problems: list[str] = []
    variants: list[list[str]] = [[]]
    for w in words:  # `audit verify|export|outbox`: each alternative a command of its own
        alts = w.split("|") if "|" in w and not w.startswith("-") else [w]
        variants = [v + [a] for v in variants for a in alts]
    for v in variants:
        cmd: Any = CLI
        path = ["dncguard"]
        i = 0
        while hasattr(cmd, "get_command") and i < len(v) and not v[i].startswith("-"):
            sub = cmd.get_command(None, v[i])
            if sub is None:
                problems.append(f"`{' '.join(path)}` has no command {v[i]!r}")
                break
            cmd, path, i = sub, [*path, v[i]], i + 1
        else:
            for w in v[i:]:
                flag = w.split("=", 1)[0]
                if re.fullmatch(r"--?[a-z][\w-]*", flag) and _option(cmd, flag) is None:
                    problems.append(f"`{' '.join(path)}` has no option {flag}")
    return sorted(set(problems))


def test_every_command_the_prose_names_exists() -> None:
    """The commands table, the prose and the examples' comments name real commands and flags
    (``dncguard check``, ``dncguard audit verify|export|...``, ``[--phone-column C ...]``)."""
    found = mentions()
    assert len(found) >= 40
    problems = [f"{m.where}: `{m.text}`: {p}" for m in found for p in mention_problems(m.text)]
    assert not problems, "\n".join(problems)


# -- tier 2: the examples run ---------------------------------------------------------------------

#: Sections whose ``dncguard`` / ``curl`` examples stay tier 1 only, ``(file, heading)`` -> why.
NOT_RUN: dict[tuple[str, str], str] = {
    ("docs/service.md", "Two replicas on PostgreSQL"):
        "needs a PostgreSQL server (createdb, a postgresql+psycopg URL) and binds every "
        "interface; tests/server/test_server_postgres.py runs two replicas",
}

#: Programs of the examples that tier 2 never runs, -> why (they are not dncguard's).
NOT_RUN_PROGRAMS: dict[str, str] = {
    "pip": "installs packages; the test runs in the project's environment",
    "python": "the test suite, the benchmarks and the migration generator (writes into src/)",
    "ruff": "the linter", "mypy": "the type checker", "bash": "CI's script",
    "createdb": "PostgreSQL",
}

#: Pages walked by tier 2, each by the test named.
WALKED = {
    "README.md": "test_readme", "docs/audit.md": "test_audit_md", "docs/cli.md": "test_cli_md",
    "docs/console.md": "test_console_md",
    "docs/cxone.md": "test_cxone_md", "docs/migrations.md": "test_migrations_md",
    "docs/rules.md": "test_rules_md", "docs/service.md": "test_service_md",
}


def test_every_example_is_run_or_listed() -> None:
    """A new page with examples, or a section listed as not run that no longer exists, fails
    here: each example is walked by tier 2 or is listed in NOT_RUN / NOT_RUN_PROGRAMS."""
    missing = [str(c) for b in BLOCKS for c in b.commands
               if c.argv and c.program not in NOT_RUN_PROGRAMS and c.file not in WALKED
               and (c.file, c.section) not in NOT_RUN]
    assert not missing, "examples no test runs (walk the page, or list them in NOT_RUN):\n" \
        + "\n".join(missing)
    sections = {(b.file, b.section) for b in BLOCKS}
    assert set(NOT_RUN) <= sections, set(NOT_RUN) - sections
    unknown = {c.program for b in BLOCKS for c in b.commands if c.argv} \
        - {"dncguard", "curl", *NOT_RUN_PROGRAMS}
    assert not unknown, f"programs the docs run that tier 2 does not know: {unknown}"


@dataclass
class Result:
    cmd: Command
    argv: list[str]
    code: int
    out: str
    err: str
    status: int | None = None  # curl: the HTTP status

    def json(self) -> Any:
        return json.loads(self.out)

    def __str__(self) -> str:
        return (f"{self.cmd.where}: `{' '.join(self.argv)}` exited {self.code}"
                + (f" (HTTP {self.status})" if self.status is not None else "")
                + f"\nstdout: {self.out[-3000:]}\nstderr: {self.err[-3000:]}")


@dataclass
class Sandbox:
    """``dncguard cxone sandbox`` as a process, with the ``export`` lines it printed."""

    proc: subprocess.Popen[str]
    env: dict[str, str]
    output: str
    reader: threading.Thread | None = None

    def stop(self) -> None:
        if self.proc.poll() is None:
            with suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGINT)  # its documented stop: Ctrl-C
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)
        if self.reader is not None:
            self.reader.join(5)
            if not self.reader.is_alive() and self.proc.stdout is not None:
                self.proc.stdout.close()


Check = Callable[[Result], None]
Key = tuple[str, int, str]  # a command of the docs: file, line, text


def key(file: str, what: str | Command) -> Key:
    """The key of a documented command, given as itself or as its text (``head``), which must
    then be the text of exactly one command of ``file``."""
    if isinstance(what, Command):
        return (what.file, what.line, what.head)
    found = [c for b in BLOCKS if b.file == file for c in b.commands if c.head == what]
    assert len(found) == 1, f"{file}: {len(found)} commands are written {what!r}"
    return (file, found[0].line, what)


@dataclass
class Shell:
    """Runs documented commands in a temporary world. ``~`` is ``<root>/user``, absolute
    paths such as ``/srv/dncguard`` live under ``<root>/fs``, the working directory is
    ``<root>/work`` (where the examples' files are)."""

    root: Path
    mp: pytest.MonkeyPatch
    vars: dict[str, str] = field(default_factory=dict)  # $K, $S, $KEY, ...
    placeholders: dict[str, str] = field(default_factory=dict)  # JOB_ID, PHONE, 3f0c..., URLs
    overrides: dict[str, str] = field(default_factory=dict)  # env values replacing the docs'
    checks: dict[Key, Check] = field(default_factory=dict)
    handlers: dict[Key, Callable[[Command], Result | None]] = field(default_factory=dict)
    walked: set[Key] = field(default_factory=set)
    servers: list[Server] = field(default_factory=list)
    sandboxes: list[Sandbox] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.work = self.root / "work"
        for d in (self.work, self.root / "user", self.root / "fs"):
            d.mkdir(parents=True, exist_ok=True)
        self.mp.chdir(self.work)
        self.mp.setenv("HOME", str(self.root / "user"))
        self.mp.setattr(tempfile, "tempdir", str(self.root / "tmp"))
        (self.root / "tmp").mkdir(exist_ok=True)

    # -- words --------------------------------------------------------------------------------

    def path(self, value: str) -> str:
        if value == "~" or value.startswith("~/"):
            return str(self.root / "user" / value[2:])
        if value.startswith("/") and not value.startswith(str(self.root)):
            return str(self.root / "fs" / value.lstrip("/"))
        return value

    def word(self, word: str) -> str:
        if word in self.placeholders:
            return self.placeholders[word]
        for name, value in sorted(self.vars.items(), key=lambda kv: -len(kv[0])):
            word = word.replace("${" + name + "}", value).replace("$" + name, value)
        for text, value in self.placeholders.items():
            if not text.isidentifier():  # "3f0c...", URLs: replaced inside words
                word = word.replace(text, value)
        return word

    # -- running ------------------------------------------------------------------------------

    def expect(self, file: str, what: str | Command, check: Check) -> None:
        """Assert ``check`` on the result of a command of ``file``: the one written ``what``
        (its optional ``[...]`` groups left out; it must be the only one), or that command."""
        self.checks[key(file, what)] = check

    def handle(self, file: str, what: str | Command,
               fn: Callable[[Command], Result | None]) -> None:
        """Run a command of ``file`` (as :meth:`expect` finds it) with ``fn`` (None: the
        command has nothing to check)."""
        self.handlers[key(file, what)] = fn

    def walk(self, commands: list[Command]) -> None:
        for cmd in commands:
            if not cmd.argv and not cmd.env:
                continue
            if cmd.argv and cmd.program in NOT_RUN_PROGRAMS:
                continue
            k = key(cmd.file, cmd)
            handler = self.handlers.pop(k, None)
            result = handler(cmd) if handler else self.sh(cmd)
            self.walked.add(k)
            check = self.checks.pop(k, None)
            if result is not None and check is not None:
                check(result)

    def done(self, file: str) -> None:
        """Every stated outcome was checked and every handler used (the docs still hold the
        commands the test expects), and every example of ``file`` was run (but the sections
        of :data:`NOT_RUN`)."""
        assert not self.checks, f"commands no longer in the docs: {list(self.checks)}"
        assert not self.handlers, f"commands no longer in the docs: {list(self.handlers)}"
        left = [str(c) for b in BLOCKS if b.file == file for c in b.commands
                if c.argv and c.program not in NOT_RUN_PROGRAMS
                and (c.file, c.section) not in NOT_RUN and key(file, c) not in self.walked]
        assert not left, f"{file}: examples the test did not run:\n" + "\n".join(left)

    def sh(self, cmd: Command, ok: tuple[int, ...] = (0,)) -> Result:
        if cmd.is_export or not cmd.argv:
            for name, value in cmd.env.items():
                value = self.overrides.get(name, value)
                assert value != "...", f"{cmd.where}: no value for {name} in the test"
                self.mp.setenv(name, self.path(self.word(value)))
            return Result(cmd, [], 0, "", "")
        argv = [self.word(w) for w in cmd.argv]
        env = {k: self.path(self.word(self.overrides.get(k, v))) for k, v in cmd.env.items()}
        if argv[:2] == ["dncguard", "serve"]:
            return self.serve(cmd)  # a server: started as a process, stopped by the test
        if argv[:3] == ["dncguard", "cxone", "sandbox"]:
            box = self.sandbox(cmd)
            return Result(cmd, argv, 0, box.output, "")
        if cmd.program == "dncguard":
            result = self.dncguard(cmd, argv, env)
        elif cmd.program == "curl":
            result = self.curl(cmd, argv)
        else:
            raise AssertionError(f"{cmd.where}: tier 2 does not run {cmd.program}")
        assert result.code in ok, str(result)
        return result

    def dncguard(self, cmd: Command, argv: list[str], env: dict[str, str] | None = None
                 ) -> Result:
        """``dncguard ARGV`` in this process (as a reader's shell would: the environment, the
        working directory); stdout and stderr captured."""
        out, err = io.StringIO(), io.StringIO()
        with pytest.MonkeyPatch.context() as m:
            for k, v in (env or {}).items():
                m.setenv(k, v)
            with redirect_stdout(out), redirect_stderr(err):
                code = run(argv[1:])
        return Result(cmd, argv, code, out.getvalue(), err.getvalue())

    def again(self, cmd: Command, *extra: str, ok: tuple[int, ...] = (0,)) -> Result:
        """The documented command with ``extra`` words (e.g. ``--json``) to read its result."""
        result = self.dncguard(cmd, [self.word(w) for w in cmd.argv] + list(extra))
        assert result.code in ok, str(result)
        return result

    def curl(self, cmd: Command, argv: list[str]) -> Result:
        """The curl command line played with httpx (the options the docs use; any other
        fails, so a new one is noticed)."""
        method: str | None = None
        headers: dict[str, str] = {}
        data: bytes | None = None
        output: str | None = None
        fail = False
        urls: list[str] = []
        words = iter(argv[1:])
        for w in words:
            if re.fullmatch(r"-[sSfL]+", w):
                fail = fail or "f" in w
            elif w in ("--silent", "--show-error"):
                pass
            elif w == "--fail":
                fail = True
            elif w in ("-H", "--header"):
                name, _, value = next(words).partition(":")
                headers[name.strip()] = value.strip()
            elif w in ("-d", "--data", "--data-binary", "--data-raw"):
                value = next(words)
                if value.startswith("@") and w != "--data-raw":
                    raw = Path(value[1:]).read_bytes()
                    data = raw if w == "--data-binary" else raw.replace(b"\n", b"")
                else:
                    data = value.encode()
            elif w in ("-X", "--request"):
                method = next(words)
            elif w in ("-o", "--output"):
                output = next(words)
            elif w.startswith("-"):
                raise AssertionError(f"{cmd.where}: curl option {w} is not played by the test")
            else:
                urls.append(w)
        assert len(urls) == 1, f"{cmd.where}: curl is given {len(urls)} URLs {urls}: it " \
            "would send the request to each"
        if data is not None:
            headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
        response = httpx.request(method or ("POST" if data is not None else "GET"), urls[0],
                                 headers=headers, content=data, timeout=30)
        if output:
            Path(output).write_bytes(response.content)
        code = 22 if fail and response.status_code >= 400 else 0
        return Result(cmd, argv, code, "" if output else response.text, "",
                      response.status_code)

    # -- servers ------------------------------------------------------------------------------

    def serve(self, cmd: Command, **extra_env: str) -> Result:
        """``dncguard serve ...`` as a real server on a free loopback port: ``--host`` is
        127.0.0.1 whatever the example says (no network but loopback), the documented port is
        mapped to the server's URL (``$S`` and ``http://127.0.0.1:PORT`` in later examples)."""
        args = [self.word(w) for w in cmd.argv[2:]]
        port = self.word(cmd.env.get("DNCGUARD_SERVER_PORT", "8000"))
        if "--port" in args:
            i = args.index("--port")
            port = args[i + 1]
            del args[i:i + 2]
        if "--host" in args:
            args[args.index("--host") + 1] = "127.0.0.1"
        env = server_env(Path(os.environ["DNCGUARD_HOME"]), DNCGUARD_RULES_ENABLED="true",
                         DNCGUARD_USER=os.environ.get("DNCGUARD_USER", "docs"),
                         **extra_env)
        env.pop("DNCGUARD_SERVER_KEY_CACHE_SECONDS", None)  # the documented default
        server = Server(env, self.root / f"serve-{len(self.servers)}.log", args)
        self.servers.append(server)
        server.start()
        self.vars["S"] = server.url
        self.placeholders[f"http://127.0.0.1:{port}"] = server.url
        return Result(cmd, ["dncguard", "serve", *args], 0, server.url, "")

    def sandbox(self, cmd: Command, *extra: str) -> Sandbox:
        """``dncguard cxone sandbox ...`` as a process on a free port; returns once it printed
        its ``export`` lines."""
        args = [self.word(w) for w in cmd.argv[1:]] + list(extra)
        if "--port" in args:
            args[args.index("--port") + 1] = str(free_port())
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src") + os.pathsep
               + os.environ.get("PYTHONPATH", ""), "COLUMNS": "200"}
        proc = subprocess.Popen([sys.executable, "-m", "dncguard", *args], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                start_new_session=True)
        box = Sandbox(proc, {}, "")
        self.sandboxes.append(box)
        lines: list[str] = []
        started = threading.Event()

        def read() -> None:  # all it prints, so that a full pipe never stalls it
            assert proc.stdout is not None
            for line in proc.stdout:
                lines.append(line)
                if "Ctrl-C stops it" in line:
                    started.set()
            started.set()  # it exited

        box.reader = threading.Thread(target=read, daemon=True)
        box.reader.start()
        started.wait(30)
        box.output = "".join(lines)
        assert "Ctrl-C stops it" in box.output, f"{cmd.where}: the sandbox did not start:\n" \
            + box.output
        for m in re.finditer(r"export (\w+)='([^']*)'", box.output):
            box.env[m.group(1)] = m.group(2)
        return box

    def stop(self) -> None:
        for server in self.servers:
            server.stop()
        for box in self.sandboxes:
            box.stop()
        dispose_engines()


@pytest.fixture
def shell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Shell]:
    """A reader's shell: the settings the docs assume (the defaults: rules on), nothing of the
    developer's; every server and sandbox it starts is stopped at the end."""
    for key in list(os.environ):
        if key.startswith(("DNCGUARD_", "COLUMNS")) and key not in ("DNCGUARD_USER",):
            monkeypatch.delenv(key)
    monkeypatch.setenv("DNCGUARD_USER", "cli:docs")
    sh = Shell(tmp_path, monkeypatch)
    try:
        yield sh
    finally:
        sh.stop()


def blocks(file: str, section: str | None = None) -> list[Command]:
    """The commands of ``file`` (of one section), in order; fails when there are none, so a
    renamed heading is noticed."""
    found = [c for b in BLOCKS if b.file == file and (section is None or b.section == section)
             for c in b.commands]
    assert found, f"no shell examples in {file}" + (f" under {section!r}" if section else "")
    return found


def command(file: str, text_start: str) -> Command:
    """The one documented command of ``file`` starting with ``text_start``."""
    found = [c for b in BLOCKS if b.file == file for c in b.commands
             if c.text.startswith(text_start)]
    assert len(found) == 1, f"{file}: {len(found)} commands start with {text_start!r}"
    return found[0]


# -- the files the examples name -----------------------------------------------------------------

#: Area codes of the filler rows: states with no list of their own (DC, NY, IL, WA, GA).
FILLER_NPAS = ("202", "212", "312", "206", "404")
#: The contacts' area codes besides 202, which the FTC download also holds (see write_examples)
OTHER_NPAS = ("212", "312", "206", "404", "305", "415")


def write_examples(work: Path, rows: int = 1300) -> None:
    """The README's files: an FTC download, a Florida list, contacts (``rows`` rows, enough
    for ``audit prove JOB_ID 1234``) and consents. Fictional numbers only (555-01xx)."""
    with zipfile.ZipFile(work / "ftc-202.zip", "w") as z:  # NPA,NXXXXXX or one per line
        z.writestr("202.txt", "202,5550100\n202,5550101\n")
        z.writestr("more.txt", "2025550102\n")  # plain or zipped (every member is read)
        # a US national list covers the area codes it holds (the FTC registry is downloaded
        # per area code): one number (not a contact's) of each area code the contacts use
        z.writestr("others.txt", "".join(f"{npa},5550099\n" for npa in OTHER_NPAS))
    (work / "fl.txt").write_text("3055550101\n3055550102\n", encoding="utf-8")
    contacts = [["name", "phone", "state"],
                ["Ann", "2025550100", ""],  # on the national list (us-ftc)
                ["Ben", "(202) 555-0123", ""],  # the internal opt-out of `dnc add`
                ["Cam", "3055550101", "FL"],  # on the Florida list
                ["Dee", "4155550100", "CA"],  # 07:00 in California at the dial time: defer
                ["Eve", "2125550199", ""],  # allow
                ["Fay", "not a number", ""]]  # invalid
    n = 0
    while len(contacts) <= rows:
        npa = FILLER_NPAS[n // 100 % len(FILLER_NPAS)]
        contacts.append([f"c{n}", f"{npa}555{100 + n % 100:04d}", ""])
        n += 1
    with (work / "contacts.csv").open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows(contacts)
    (work / "consents.csv").write_text(  # phone,type,date[,expires,revoked]
        "phone,type,date,expires,revoked\n"
        "4155550100,express_written,2026-06-01,2027-06-01,\n", encoding="utf-8")


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def codes(verdict: dict[str, Any]) -> list[str]:
    return [r["code"] for r in verdict["reasons"]]


def toml_block() -> str:
    """The README's campaign profile (```toml)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    m = re.search(r"```toml\n(.*?)```", text, re.S)
    assert m, "README.md: the ```toml campaign profile example is gone"
    return m.group(1)


def using_it(sh: Shell) -> None:
    """The README's "Using it" block (and its campaign profile) in the shell's world: the state
    every other page's examples start from (lists us-ftc and us-fl, the opt-out of
    (202) 555-0123, a scrub job, the winter-promo profile)."""
    write_examples(sh.work)
    sh.walk(blocks("README.md", "Using it"))
    home = Path(os.environ["DNCGUARD_HOME"])
    assert home == sh.root / "user" / "dncguard"  # export DNCGUARD_HOME=~/dncguard
    assert (home / "dncguard.db").is_file()  # all state lives here
    (home / "dncguard.toml").write_text(toml_block(), encoding="utf-8")


def using_it_checks(sh: Shell) -> None:
    """What the README says of its "Using it" commands."""
    F = "README.md"
    sh.expect(F, "dncguard lists import ftc-202.zip --kind national --jurisdiction US "
              "--snapshot-date 2026-11-20 --name us-ftc",
              lambda r: _assert(f"imported {3 + len(OTHER_NPAS)} entries" in r.out, r))
    sh.expect(F, 'dncguard dnc add "(202) 555-0123" --reason "asked on call"',
              lambda r: _assert("added +1202555**** to internal" in r.out, r))
    sh.expect(F, "dncguard scrub contacts.csv -o verdicts.csv --at 2026-11-26T15:00:00Z",
              _scrub_outcome)
    sh.expect(F, "dncguard check +12025550123 --json", _check_outcome)


def _assert(ok: bool, result: Result) -> None:
    assert ok, str(result)


def _scrub_outcome(r: Result) -> None:
    """`scrub` writes verdicts.csv (every input column in order, then e164, decision,
    reason_codes, detail, next_allowed_at) and verdicts.summary.json beside it."""
    rows = read_csv(Path("verdicts.csv"))
    assert list(rows[0]) == ["name", "phone", "state", "e164", "decision", "reason_codes",
                             "detail", "next_allowed_at"], str(r)
    assert [(x["decision"], x["reason_codes"]) for x in rows[:6]] == [
        ("block", "DNC_NATIONAL"), ("block", "DNC_INTERNAL"), ("block", "DNC_STATE"),
        ("defer", "OUTSIDE_CALLING_WINDOW"), ("allow", ""), ("invalid", "INVALID_NUMBER")]
    assert rows[3]["next_allowed_at"] == "2026-11-26T16:00:00Z"  # 08:00 in Los Angeles
    summary = json.loads(Path("verdicts.summary.json").read_text(encoding="utf-8"))
    # counts by decision, reason, list and state, duplicates, suppressionRate, rows per second,
    # bad rows, the snapshot date of every list used
    for name in ("byDecision", "byReason", "byList", "byState", "duplicates", "suppressionRate",
                 "rowsPerSecond", "rowErrors", "lists"):
        assert name in summary, f"verdicts.summary.json has no {name}: {sorted(summary)}"
    assert summary["lists"]["us-ftc"] == "2026-11-20" and summary["lists"]["us-fl"] == \
        "2026-10-01"
    assert summary["totalRows"] == len(rows) and summary["byDecision"]["error"] == 0
    # "bad rows with their row number and field"
    assert any(e.get("row") == 6 for e in summary["rowErrors"]), summary["rowErrors"]


def _check_outcome(r: Result) -> None:
    """The opt-out added with `dnc add` blocks the number."""
    verdict = r.json()
    assert verdict["e164"] == "+12025550123" and verdict["decision"] == "block", str(r)
    assert "DNC_INTERNAL" in codes(verdict), str(r)


# -- README.md ------------------------------------------------------------------------------------

def test_readme(shell: Shell) -> None:
    """README.md, top to bottom, in one reader's home: the demo, Using it, Calling rules,
    CXone (against the sandbox of the block), the HTTP service and the web console (real
    servers)."""
    sh, F = shell, "README.md"
    write_examples(sh.work)

    def demo(r: Result) -> None:
        # "creates a temporary home ..., scrubs it and prints every verdict and the summary";
        # "so every decision shows"
        for decision in ("allow", "defer", "block", "error", "invalid"):
            assert re.search(rf"\b{decision}\b", r.out), f"demo shows no {decision}:\n{r}"
        assert f"demo home: {sh.root / 'tmp'}" in r.out.replace("\n", ""), str(r)

    sh.expect(F, "dncguard demo", demo)
    using_it_checks(sh)

    # Calling rules
    sh.expect(F, "dncguard rules show US-FL", lambda r: _assert(
        "citation" in r.out and "Fla. Stat." in r.out, r))  # the rules, with citations

    def when(r: Result) -> None:  # next legal windows, 7 days
        data = sh.again(r.cmd, "--json").json()
        assert len(data["windows"]) in (7, 8), data  # one a day (the first may have begun)
        assert data["callType"] == "autodialed" and data["states"] == ["CA"], data

    sh.expect(F, "dncguard rules when 4155550100 --call-type autodialed", when)
    sh.expect(F, "dncguard consent import consents.csv",
              lambda r: _assert("1 added" in r.out and "0 rows rejected" in r.out, r))
    sh.expect(F, "dncguard attempts record 3055550100 --at 2026-11-26T15:00:00Z --purpose "
              "telemarketing --outcome no_answer", lambda r: _assert("recorded" in r.out, r))

    # NICE CXone: the block's own sandbox (its last line) plays the tenant; it is started
    # first and its credentials replace the block's `...`
    cx = blocks(F, "NICE CXone and other remote sources")
    sandbox_cmd = command(F, "dncguard cxone sandbox")
    assert cx[0].is_export and cx[-1] is sandbox_cmd
    boxes: list[Sandbox] = []

    def credentials(c: Command) -> Result:
        boxes.append(sh.sandbox(sandbox_cmd))
        sh.overrides.update(boxes[0].env)
        sh.mp.setenv("DNCGUARD_CXONE_ISSUER", boxes[0].env["DNCGUARD_CXONE_ISSUER"])
        return sh.sh(c)

    def sandboxed(c: Command) -> Result:  # started above; its `export` lines, as it says
        for name, value in boxes[0].env.items():
            sh.mp.setenv(name, value)
        return Result(c, c.argv, 0, boxes[0].output, "")

    def cxone_checked(r: Result) -> None:
        assert "export DNCGUARD_CXONE_ISSUER=" in r.out, str(r)
        # "Synced groups are checked locally (DNC_CXONE)"
        synced = sh.dncguard(r.cmd, ["dncguard", "check", "+12125550102", "--json"])
        assert synced.code == 0 and "DNC_CXONE" in codes(synced.json()), str(synced)
        # "`dnc add` queues the opt-out for write-back"
        added = sh.dncguard(r.cmd, ["dncguard", "dnc", "add", "2125550188"])
        assert added.code == 0, str(added)
        pushed = sh.dncguard(r.cmd, ["dncguard", "cxone", "push", "--group", "364"])
        assert pushed.code == 0 and "1 delivered of 1 sent" in pushed.out, str(pushed)

    sh.handle(F, cx[0], credentials)
    sh.handle(F, sandbox_cmd, sandboxed)
    sh.expect(F, sandbox_cmd, cxone_checked)
    sh.expect(F, "dncguard cxone groups", lambda r: _assert(
        "364" in r.out and "Internal DNC" in r.out, r))
    sh.expect(F, "dncguard cxone sync", lambda r: _assert("2 group(s) synced" in r.out, r))
    sh.expect(F, "dncguard cxone push --group 42", lambda r: _assert("group 42:" in r.out, r))

    # HTTP service
    def key_created(r: Result) -> None:  # prints the key once
        key = r.out.strip()
        assert re.fullmatch(r"dgk_[0-9a-f]+_[\w-]+", key), str(r)
        sh.vars["KEY"] = key
        listed = sh.dncguard(r.cmd, ["dncguard", "keys", "list", "--json"])
        assert key not in listed.out and "dialer-1" in listed.out, str(listed)

    def checked(r: Result) -> None:
        assert r.status == 200, str(r)
        assert r.json()["decision"] == "block" and "DNC_INTERNAL" in codes(r.json()), str(r)

    sh.expect(F, "dncguard keys create --scope check --scope dnc:write --name dialer-1",
              key_created)
    sh.expect(F, command(F, "curl"), checked)
    for c in blocks(F, "Web console"):  # `keys create` prints the key once; then /console
        if c.argv[:3] == ["dncguard", "keys", "create"]:
            sh.expect(F, c, key_once)
        elif c.argv[:2] == ["dncguard", "serve"]:
            sh.expect(F, c, console_opens)
    sh.walk(blocks(F))
    sh.done(F)

    # Settings: "`dncguard config show` prints what each campaign really checks
    # (`campaign_checks`)": the profile of the ```toml example checks the lists it names
    (Path(os.environ["DNCGUARD_HOME"]) / "dncguard.toml").write_text(toml_block(), "utf-8")
    shown = sh.dncguard(blocks(F)[0], ["dncguard", "config", "show", "--json"])
    assert shown.code == 0, str(shown)
    promo = shown.json()["campaign_checks"]["winter-promo"]
    assert (promo["purpose"], promo["call_type"], sorted(promo["dnc_lists"])) == (
        "telemarketing", "autodialed", ["internal", "us-ftc"]), promo


def key_once(r: Result) -> None:
    """`keys create` prints the key once, alone on stdout."""
    assert re.fullmatch(r"dgk_[0-9a-f]+_[\w-]+", r.out.strip()), str(r)


def console_opens(r: Result) -> None:
    """`serve` ... "open http://127.0.0.1:PORT/console": the console answers, and loads
    nothing from another origin."""
    url = r.cmd.comment[r.cmd.comment.index("http://"):].split()[0]
    assert url.endswith("/console"), r.cmd.comment
    page = httpx.get(url.replace(url[:url.index("/console")], r.out), follow_redirects=True,
                     timeout=30)
    assert page.status_code == 200 and "text/html" in page.headers["content-type"], \
        page.text[:2000]
    assert not re.search(r"(src|href|action)=\"(https?:)?//", page.text), page.text[:2000]


def test_rules_show_prints_whole_ids_and_citations(shell: Shell) -> None:
    """README: `dncguard rules show US-FL  # the rules, with citations`; docs/cli.md: "Tables on
    screen never cut an identifier ... fold onto a second line rather than end in `…`"."""
    cmd = command("README.md", "dncguard rules show US-FL")
    r = shell.sh(cmd)
    assert "…" not in r.out, r.out


# -- docs/rules.md --------------------------------------------------------------------------------

def test_rules_md(shell: Shell) -> None:
    sh, F = shell, "docs/rules.md"
    using_it(sh)
    phone = "+12025550161"
    sh.placeholders["PHONE"] = phone
    (sh.work / "consent.csv").write_text(  # a bad type on row 3
        "phone,type,date\n2025550161,express,2026-01-05\n2025550162,ebr_purchase,2026-02-01\n"
        "2025550163,texted_us,2026-03-01\n", encoding="utf-8")
    (sh.work / "attempts.csv").write_text(
        "phone,at,campaign,purpose,subject,outcome\n"
        "3055550100,2026-11-25T15:00:00Z,default,telemarketing,,no_answer\n", encoding="utf-8")

    sh.expect(F, "dncguard rules show US-FL", lambda r: _assert("US-FL" in r.out, r))

    def when(r: Result) -> None:
        # a split-zone area code (850): every candidate zone, from the area-code table
        data = sh.again(r.cmd, "--json").json()
        assert "npa-table" in data["how"], data
        assert set(data["timezone"].split(";")) == {"America/New_York", "America/Chicago"}
        assert data["states"] == ["FL"] and len(data["windows"]) == 7, data

    sh.expect(F, "dncguard rules when +18505550100 --at 2026-11-21T12:00:00Z", when)
    sh.handle(F, "dncguard consent import consent.csv", lambda c: sh.sh(c, ok=(1,)))
    sh.expect(F, "dncguard consent import consent.csv",  # bad rows: "line 4, type: ..."
              lambda r: _assert(r.code == 1 and "line 4, type:" in r.out + r.err, r))
    sh.walk(blocks(F))
    sh.done(F)


# -- docs/cli.md ----------------------------------------------------------------------------------

def test_cli_md(shell: Shell) -> None:
    sh, F = shell, "docs/cli.md"
    using_it(sh)
    run_ok = sh.dncguard(blocks(F)[0], ["dncguard", "consent", "import", "consents.csv"])
    assert run_ok.code == 0, str(run_ok)

    def masked(r: Result) -> None:  # numbers masked on screen
        assert "+1202555****" in r.out and "+12025550123" not in r.out, str(r)

    sh.expect(F, "dncguard dnc ls", masked)

    def exported(r: Result) -> None:  # the same, numbers in full, to a new file of mode 0600
        path = sh.work / "optouts.csv"
        rows = read_csv(path)
        assert list(rows[0]) == ["number", "added_at", "added_by", "reason", "expires", "list",
                                 "status"], rows
        assert {"+12025550123"} <= {x["number"] for x in rows}, rows
        assert path.stat().st_mode & 0o777 == 0o600
        assert "+12025550123" not in r.out

    sh.expect(F, "dncguard dnc export --list internal -o optouts.csv", exported)
    sh.walk(blocks(F))
    sh.done(F)


# -- docs/console.md -----------------------------------------------------------------------------

def test_console_md(shell: Shell) -> None:
    sh, F = shell, "docs/console.md"
    sh.mp.setenv("DNCGUARD_HOME", str(sh.root / "home"))
    for c in blocks(F):
        if c.is_dncguard:
            sh.expect(F, c, console_opens if c.argv[:2] == ["dncguard", "serve"] else key_once)
    sh.walk(blocks(F))
    sh.done(F)


# -- docs/audit.md --------------------------------------------------------------------------------

@contextmanager
def receiver() -> Iterator[tuple[str, list[tuple[dict[str, str], bytes]]]]:
    """An export endpoint on loopback: its URL and the requests it received (200 to each)."""
    got: list[tuple[dict[str, str], bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            got.append((dict(self.headers.items()), body))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/audit", got
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_audit_md(shell: Shell) -> None:
    """The page's examples after the README's scrub, with an export endpoint set (the Export
    section's examples are about it): the export, the outbox, a proof, the report."""
    sh, F = shell, "docs/audit.md"
    with receiver() as (url, received):
        sh.mp.setenv("DNCGUARD_AUDIT_EXPORT_URL", url)
        _audit_md(sh, F, received)


def _audit_md(sh: Shell, F: str, received: list[tuple[dict[str, str], bytes]]) -> None:
    using_it(sh)
    jobs = sh.dncguard(blocks(F)[0], ["dncguard", "audit", "jobs", "--json"])
    assert jobs.code == 0, str(jobs)
    job_id = jobs.json()[0]["jobId"]
    sh.placeholders["JOB_ID"] = job_id

    def proved(r: Result) -> None:
        from dncguard.audit import verify_proof

        proof = json.loads((sh.work / "row-1234.proof.json").read_text(encoding="utf-8"))
        for key in ("leaf", "number_masked", "block", "leaf_hash", "path", "root", "record"):
            assert key in proof, f"the proof has no {key}: {sorted(proof)}"
        assert proof["row"] == 1234 and proof["block"]["index"] == 1, proof["block"]["index"]
        assert proof["block"]["size"] == 1024 and len(proof["block"]["rows"]) == 1300 - 1024
        assert verify_proof(proof)  # "Anyone can check it with dncguard.audit.verify_proof"
        assert not re.search(r"\+1\d{10}", json.dumps(proof)), "a number in the proof"

    sh.expect(F, "dncguard audit prove JOB_ID 1234 -o row-1234.proof.json", proved)

    def exported(name: str) -> Check:
        return lambda r: _assert((sh.work / name).is_file(), r)

    sh.expect(F, "dncguard audit export --since 2026-01-01 --until 2026-02-01 -o "
              "january.ndjson", exported("january.ndjson"))
    sh.expect(F, "dncguard audit export --since 2026-01-01T00:00:00-05:00 --format csv -o "
              "january.csv", exported("january.csv"))

    def reported(r: Result) -> None:  # one HTML file, no scripts, nothing fetched
        html = (sh.work / "report.html").read_text(encoding="utf-8")
        assert html.lstrip().lower().startswith("<!doctype html") and "<script" not in html
        assert not re.search(r"(src|href)=\"https?://", html)

    sh.expect(F, "dncguard report JOB_ID -o report.html", reported)
    def searched(r: Result) -> None:  # a number's checks, list changes and job rows, masked
        data = r.json()
        assert data["number"] == "+1202555****" and "+12025550123" not in r.out, str(r)
        assert {"check", "list", "job"} <= {x["kind"] for x in data["records"]}, data
        job = next(x for x in data["records"] if x["kind"] == "job")
        holding = [n for n, x in enumerate(read_csv(sh.work / "verdicts.csv"), 1)
                   if x["e164"] == "+12025550123"]
        assert [row["row"] for row in job["rows"]] == holding and holding[0] == 2, job

    sh.expect(F, "dncguard audit search --phone +12025550123 --json", searched)
    sh.expect(F, "dncguard audit outbox", lambda r: _assert(  # backlog: the job's summary
        re.search(r"pending\D*1\b", r.out) is not None, r))

    def delivered(r: Result) -> None:  # the job's summary, POSTed as the page shows it
        assert "delivered 1, failed 0" in r.out and len(received) == 1, str(r)
        headers, body = received[0]
        summary = json.loads(body)
        shown = example_json(json_block(F, "each job's summary is POSTed as JSON"))
        assert not shape_problems(shown, summary), shape_problems(shown, summary)
        problems = fields_problems(shown, summary, "the summary") + fields_problems(
            shown["audit"], summary["audit"], "audit") + fields_problems(
            shown["dataVersions"], summary["dataVersions"], "dataVersions")
        assert not problems, f"{F}: the example of the export: {problems}"
        assert summary["type"] == "dncguard.scrub.summary" and summary["jobId"] == job_id
        assert summary["idempotencyKey"] == f"job:{job_id}" == headers["Idempotency-Key"]
        assert summary["totalContacts"] == 1300 and summary["audit"]["who"] == "cli:docs"

    sh.expect(F, "dncguard audit outbox --deliver", delivered)
    sh.walk(blocks(F))
    sh.done(F)


# -- docs/migrations.md ---------------------------------------------------------------------------

def test_migrations_md(shell: Shell) -> None:
    """`db current` and `db upgrade` print what the page shows, on an up-to-date database: line
    for line, the page's PostgreSQL URL aside and with any revision standing for the newest (the
    example need not change with every new revision; the revisions it names must exist)."""
    sh, F = shell, "docs/migrations.md"
    sh.mp.setenv("DNCGUARD_HOME", str(sh.root / "home"))
    first = sh.dncguard(blocks(F)[0], ["dncguard", "db", "upgrade"])  # a database at head
    assert first.code == 0, str(first)
    revisions = {p.stem for p in (ROOT / "src/dncguard/migrations/versions").glob("0*.py")}
    rev = re.compile(r"\b\d{4}_\w+")

    def shows(r: Result) -> None:
        got = [line.rstrip() for line in r.out.splitlines() if line.strip()]
        want = r.cmd.output
        assert len(got) == len(want), f"{r.cmd.where}: shows {want}, prints {got}"
        for g, w in zip(got, want, strict=True):
            assert set(rev.findall(w)) <= revisions, f"{r.cmd.where}: {w!r}: no such revision"
            if w.startswith("database: "):
                assert g.startswith("database: "), (g, w)
            else:
                assert rev.sub("REV", g) == rev.sub("REV", w), \
                    f"{r.cmd.where}: the page shows {w!r}, `{r.cmd.text}` prints {g!r}"

    sh.expect(F, "dncguard db current", shows)
    sh.expect(F, "dncguard db upgrade", shows)
    sh.walk(blocks(F))
    sh.done(F)


# -- docs/cxone.md --------------------------------------------------------------------------------

def json_block(file: str, after: str) -> str:
    """The first ```json block of ``file`` after the line containing ``after``."""
    text = (ROOT / file).read_text(encoding="utf-8")
    i = text.index(after)
    m = re.compile(r"```json\n(.*?)```", re.S).search(text, i)
    assert m, f"{file}: no JSON example after {after!r}"
    return m.group(1)


def test_cxone_md(shell: Shell) -> None:
    """The commands against the sandbox the page offers for trying it without a tenant
    (started first: it is the block's last line), then the sandbox with the page's seed file
    and every fault option of its example."""
    sh, F = shell, "docs/cxone.md"
    sh.mp.setenv("DNCGUARD_HOME", str(sh.root / "home"))
    commands = blocks(F, "Commands")
    sandbox_cmd = commands[-1]
    assert sandbox_cmd.argv[:3] == ["dncguard", "cxone", "sandbox"], sandbox_cmd
    box = sh.sandbox(sandbox_cmd)
    for name, value in box.env.items():  # "It prints the export lines that point dncguard at it"
        sh.mp.setenv(name, value)
    assert {"DNCGUARD_CXONE_ISSUER", "DNCGUARD_CXONE_CLIENT_ID",
            "DNCGUARD_CXONE_ACCESS_KEY_SECRET", "DNCGUARD_HTTP_BATCH_BASE_URL"} <= set(box.env)
    sh.handle(F, sandbox_cmd, lambda c: None)

    def synced(*groups: str) -> Check:
        def check(r: Result) -> None:
            assert f"{len(groups)} group(s) synced" in r.out, str(r)
            for g in groups:
                assert re.search(rf"^\S\s*{g}\b", r.out, re.M), f"group {g} not synced:\n{r}"
        return check

    sh.expect(F, "dncguard cxone groups", lambda r: _assert(
        all(g in r.out for g in ("364", "365", "366")), r))
    sh.expect(F, "dncguard cxone sync", synced("364", "365"))  # every active group
    sh.expect(F, "dncguard cxone sync --group 364 --group 365", synced("364", "365"))
    sh.expect(F, "dncguard cxone sync --skill 218853", synced("364"))  # the groups of the skill
    sh.expect(F, "dncguard cxone sync --full", lambda r: _assert(
        "full" in r.out and "2 group(s) synced" in r.out, r))
    sh.expect(F, "dncguard cxone search 801-555-1234",
              lambda r: _assert("+1801555****" in r.out, r))
    sh.expect(F, "dncguard cxone push --group 364", lambda r: _assert("group 364:" in r.out, r))

    # the sandbox with the page's seed file and every fault option of the example
    (sh.work / "seed.json").write_text(json_block(F, "A seed file looks like"), "utf-8")
    full = blocks(F, "Trying it without a tenant: the sandbox")
    assert len(full) == 1 and full[0].optional

    def faults(c: Command) -> Result:
        seeded = sh.sandbox(c, *[w for group in c.optional for w in group])
        seeded.stop()
        box.stop()
        # the seed itself serves its group (without faults)
        plain = sh.sandbox(c, "--data", "seed.json")
        for name, value in plain.env.items():
            sh.mp.setenv(name, value)
        return Result(c, c.argv, 0, seeded.output, "")

    def seeded(r: Result) -> None:
        assert "export DNCGUARD_CXONE_ISSUER='http://127.0.0.1:" in r.out, str(r)
        groups = sh.dncguard(r.cmd, ["dncguard", "cxone", "groups", "--json"])
        assert groups.code == 0, str(groups)
        assert [(g["id"], g["name"], g["skills"]) for g in groups.json()] == [
            ("364", "Internal DNC", ["218853"]), ("365", "Litigators", [])]
        # the page's `sync --group 364 --group 365` works against its own seed too
        two = sh.dncguard(r.cmd, ["dncguard", "cxone", "sync", "--group", "364", "--group",
                                  "365"])
        assert two.code == 0 and "2 group(s) synced" in two.out, str(two)

    sh.handle(F, full[0], faults)
    sh.expect(F, full[0], seeded)
    sh.walk(blocks(F))
    sh.done(F)


# -- docs/service.md ------------------------------------------------------------------------------

#: Shown fields whose values differ from run to run (ids, times, hashes, versions).
VOLATILE = {"checked_at", "ruleset", "id", "createdAt", "updatedAt"}


def example_json(text: str) -> Any:
    """A JSON example of the docs, with its ``...`` elisions made readable: ``{...}`` and a
    trailing ``, ...`` in an object mean "more keys", in an array "more items"."""
    t = re.sub(r"\{\s*\.\.\.\s*\}", '{"...": true}', text)
    t = re.sub(r",\s*\.\.\.\s*\}", ', "...": true}', t)
    t = re.sub(r",\s*\.\.\.\s*\]", ', "..."]', t)
    return json.loads(t)


def shape_problems(shown: Any, real: Any, path: str = "$", values: bool = False) -> list[str]:
    """What ``shown`` (an example) says that ``real`` (an answer) does not: a key missing,
    a list shorter, and with ``values`` a different value (``"..."`` matches anything,
    :data:`VOLATILE` keys are not compared)."""
    if shown == "...":
        return []
    if isinstance(shown, dict):
        if not isinstance(real, dict):
            return [f"{path}: an object in the example, {type(real).__name__} in the answer"]
        out: list[str] = []
        for name, value in shown.items():
            if name == "...":
                continue
            if name not in real:
                out.append(f"{path}.{name}: shown, not in the answer")
            elif name not in VOLATILE:
                out += shape_problems(value, real[name], f"{path}.{name}", values)
        return out
    if isinstance(shown, list):
        if not isinstance(real, list):
            return [f"{path}: a list in the example, {type(real).__name__} in the answer"]
        items = [x for x in shown if x != "..."]
        if len(real) < len(items) or (values and "..." not in shown and len(real) != len(items)):
            return [f"{path}: {len(items)} items shown, {len(real)} in the answer"]
        return [p for i, x in enumerate(items)
                for p in shape_problems(x, real[i], f"{path}[{i}]", values)]
    if values and shown != real:
        return [f"{path}: {shown!r} shown, {real!r} in the answer"]
    return []


def fields_problems(shown: dict[str, Any], real: dict[str, Any], what: str) -> list[str]:
    """An object shown whole (no ``...``) must have the answer's fields, no more, no fewer."""
    if "..." in shown:
        return []
    return [f"{what}: {name} in the answer, not shown" for name in sorted(set(real) - set(shown))]


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def sentence(file: str, containing: str) -> str:
    """The sentence of ``file`` containing ``containing`` (lines joined)."""
    text = " ".join((ROOT / file).read_text(encoding="utf-8").split())
    i = text.index(containing)
    start = max(text.rfind(". ", 0, i), text.rfind("; ", 0, i)) + 2
    end = text.find(". ", i)
    return text[start:end if end >= 0 else None]


def test_service_md(shell: Shell) -> None:
    """The page's examples in order against a real server. The examples use the README's
    lists, opt-out and winter-promo profile (its answers show them), so the home is set up
    with the README's "Using it" block first."""
    sh, F = shell, "docs/service.md"
    using_it(sh)
    home = Path(os.environ["DNCGUARD_HOME"])
    top = blocks(F, "The HTTP service")
    sh.walk(top[:2])  # pip install (not run), export DNCGUARD_HOME=/srv/dncguard
    assert os.environ["DNCGUARD_HOME"] == str(sh.root / "fs" / "srv" / "dncguard")
    shutil.copytree(home, os.environ["DNCGUARD_HOME"], dirs_exist_ok=True)
    dispose_engines()
    keys: dict[str, str] = {}

    def made(name: str) -> Check:
        def check(r: Result) -> None:  # prints the key once
            assert re.fullmatch(r"dgk_[0-9a-f]+_[\w-]+", r.out.strip()), str(r)
            keys[name] = r.out.strip()
        return check

    sh.expect(F, "dncguard keys create --name dialer-east --scope check", made("check"))
    sh.expect(F, "dncguard keys create --name ops --scope admin", made("admin"))
    sh.handle(F, "dncguard serve --host 0.0.0.0 --port 8000 --workers 2",
              lambda c: sh.serve(c, DNCGUARD_SERVER_JOB_POLL_SECONDS="0.2"))
    sh.walk(top[2:])
    # "The examples use K=dgk_... and S=http://127.0.0.1:8000": K needs the scopes of every
    # example (dnc:write, jobs), the admin key has them; $ADMIN is the admin key.
    sh.vars.update(K=keys["admin"], ADMIN=keys["admin"])

    def status(*allowed: int) -> Check:
        return lambda r: _assert(r.status in allowed, r)

    def checked(r: Result) -> None:
        assert r.status == 200, str(r)
        shown = example_json(json_block(F, "The answer is the verdict"))
        real = r.json()
        assert not shape_problems(shown, real), shape_problems(shown, real)
        problems = fields_problems(shown, real, "the verdict") + fields_problems(
            shown["reasons"][0], real["reasons"][0], "a reason")
        assert not problems, f"{F}: the example of POST /v1/check: {problems}"
        assert (real["input"], real["e164"], real["decision"], real["state"],
                real["dial_time"]) == ("(202) 555-0123", "+12025550123", "block", "DC",
                                       "2026-11-26T15:00:00Z"), real
        assert "DNC_INTERNAL" in codes(real)
        # "(here with the rules off; with them on, `reasons` also holds the rules' reasons, and
        # `timezone`, `timezone_source` and `ruleset` are set)": the server has them on
        assert any(x["source"] == "rules" for x in real["reasons"]), real["reasons"]
        assert real["timezone"] and real["timezone_source"] and real["versions"]["ruleset"]
        # "the same JSON as `dncguard check --json`"
        cli = sh.dncguard(r.cmd, ["dncguard", "check", "(202) 555-0123", "--campaign",
                                  "winter-promo", "--state", "DC", "--at",
                                  "2026-11-26T15:00:00Z", "--json"])
        assert cli.code == 0, str(cli)
        same = {k: v for k, v in cli.json().items() if k != "checked_at"}
        assert same == {k: v for k, v in real.items() if k != "checked_at"}, (same, real)
        # the winter-promo profile checks the lists it names (us-ftc, internal) only
        assert set(real["versions"]["lists"]) == set(shown["versions"]["lists"]), real

    sh.expect(F, command(F, "curl -s $S/v1/check -H"), checked)

    def batch(r: Result) -> None:
        assert r.status == 200, str(r)
        data = r.json()
        assert (data["count"], data["duplicates"]) == (3, 1), data
        assert [v["row"] for v in data["verdicts"]] == [1, 2, 3]
        third = data["verdicts"][2]
        dup = [x for x in third["reasons"] if x["code"] == "DUPLICATE"]
        assert dup and "duplicate of row 1" in dup[0]["detail"], third
        assert third["decision"] == data["verdicts"][0]["decision"]

    sh.expect(F, command(F, "curl -s $S/v1/check/batch"), batch)
    def opted_out(r: Result) -> None:
        # an opt-out whose expiry has passed is refused (422 naming body.expires): the
        # example's date then needs moving forward
        body = json.loads(r.argv[r.argv.index("-d") + 1])
        if body.get("expires") and instant(body["expires"]) <= datetime.now(UTC):
            assert r.status == 422 and "body.expires" in r.out, str(r)
            pytest.fail(f"{r.cmd.where}: the example's expiry {body['expires']} has passed")
        assert r.status in (200, 201), str(r)

    sh.expect(F, command(F, "curl -s $S/v1/dnc -H"), opted_out)
    sh.expect(F, command(F, "curl -s -X DELETE \"$S/v1/dnc/"), status(200))

    def stated(r: Result) -> None:  # "# -> 201 {...}": the status and the answer shown
        m = re.match(r"(\d{3})\s+(.*)", r.cmd.stated, re.S)
        assert m, f"{r.cmd.where}: no stated answer"
        assert r.status == int(m.group(1)), str(r)
        shown = example_json(m.group(2))
        assert not shape_problems(shown, r.json(), values=True), \
            shape_problems(shown, r.json(), values=True)
        if "..." not in shown:  # shown whole: no field more, none less
            assert set(r.json()) == set(shown), (sorted(r.json()), sorted(shown))

    sh.expect(F, command(F, "curl -s $S/v1/attempts"), stated)
    sh.expect(F, command(F, "curl -s $S/v1/consents"), stated)

    def when(r: Result) -> None:
        assert r.status == 200, str(r)
        api = r.json()
        shown = example_json(json_block(F, "curl -s \"$S/v1/rules/when"))
        assert not shape_problems(shown, api, values=True), \
            shape_problems(shown, api, values=True)
        problems = fields_problems(shown, api, "the answer") + fields_problems(
            shown["windows"][0], api["windows"][0], "a window") + fields_problems(
            shown["windows"][0]["local"][0], api["windows"][0]["local"][0], "a local window")
        assert not problems, f"{F}: the example of GET /v1/rules/when: {problems}"
        # "the same content as `dncguard rules when --json`, plus ..."
        cli = sh.dncguard(r.cmd, ["dncguard", "rules", "when", "+14155550123", "--at",
                                  "2026-11-18T06:00:00-08:00", "--days", "2", "--json"])
        assert cli.code == 0, str(cli)
        assert cli.json() == api  # one document, printed by the CLI and answered by the API
        assert sentence(F, "the same content as `dncguard rules when --json`")

    sh.expect(F, command(F, "curl -s \"$S/v1/rules/when"), when)

    def lists(r: Result) -> None:
        assert r.status == 200, str(r)
        data = r.json()
        assert {"stale", "asOf", "lists"} <= set(data), sorted(data)
        by_name = {x["name"]: x for x in data["lists"]}
        for x in by_name.values():
            for key in ("kind", "jurisdiction", "count", "manual", "snapshotDate", "updatedAt",
                        "syncedAt", "ageDays", "maxAgeDays", "fresh", "maxAgeBasis",
                        "maxAgeRule", "maxAgeCitation", "snapshotError"):
                assert key in x, f"list {x['name']} has no {key}"
        # "US national 31 days, Florida 122"
        assert by_name["us-ftc"]["maxAgeDays"] == 31 and by_name["us-fl"]["maxAgeDays"] == 122
        assert by_name["us-fl"]["maxAgeBasis"] == "rule"
        assert by_name["internal"]["maxAgeDays"] is None and by_name["internal"]["fresh"]

    sh.expect(F, "curl -s $S/v1/lists -H \"Authorization: Bearer $K\"", lists)

    # Jobs: `3f0c...` is the job the previous example created
    def created(r: Result) -> None:  # -> 202 {"id": "3f0c...", "state": "queued", ...}
        if r.cmd.stated:
            stated(r)
        assert r.status == 202 and r.json()["state"] == "queued", str(r)
        sh.placeholders["3f0c..."] = r.json()["id"]

    jobs = blocks(F, "Jobs: whole files in the background")
    sh.expect(F, jobs[0], created)
    sh.expect(F, jobs[1], created)

    def job_state(r: Result) -> None:  # state, rowsDone, counts
        assert r.status == 200 and {"state", "rowsDone", "counts"} <= set(r.json()), str(r)
        wait_done(sh, r.json()["id"])

    sh.expect(F, jobs[2], job_state)
    sh.expect(F, jobs[3], status(200))

    def results(r: Result) -> None:  # the same CSV as `dncguard scrub` writes
        assert r.status == 200, str(r)
        rows = read_csv(sh.work / "verdicts.csv")  # every input column, then the verdict's
        assert list(rows[0])[0] == "phone" and list(rows[0])[-5:] == [
            "e164", "decision", "reason_codes", "detail", "next_allowed_at"], list(rows[0])
        assert [x["e164"] for x in rows] == ["+12025550123", "+12025550124"]

    sh.expect(F, jobs[4], results)
    sh.expect(F, jobs[5], status(200))  # cancel (a done job stays done)
    sh.expect(F, jobs[6], lambda r: _assert(  # resume: 409 unless the job failed
        r.status == 409 and r.json()["error"]["code"] == "conflict", r))

    sh.expect(F, "curl -s $S/healthz", status(200))
    sh.expect(F, "curl -s $S/readyz", lambda r: _assert(  # 200, or 503 {"status": ..., ...}
        r.status == 200 or (r.status == 503 and r.json()["status"] == "unavailable"
                            and r.json()["reasons"]), r))
    sh.expect(F, "curl -s $S/metrics", lambda r: _assert(  # Prometheus text
        r.status == 200 and "dncguard_http_requests_total" in r.out, r))

    def summary(r: Result) -> None:
        assert r.status == 200, str(r)
        assert {"verdicts", "byDecision", "suppressionRate", "byReason", "bySource",
                "byState"} <= set(r.json()), sorted(r.json())

    sh.expect(F, command(F, "curl -s \"$S/v1/metrics/summary"), summary)
    for c in blocks(F):  # the other examples answer (the ones above are checked in detail)
        if c.program == "curl" and key(F, c) not in sh.checks \
                and (c.file, c.section) not in NOT_RUN:
            sh.expect(F, c, status(200))
    sh.walk([c for c in blocks(F)[len(top):] if (c.file, c.section) not in NOT_RUN])
    sh.done(F)

    # "Every error is JSON:" the page's example is the answer to a dial time without an offset
    bad = httpx.post(f"{sh.vars['S']}/v1/check", timeout=30,
                     headers={"Authorization": f"Bearer {keys['check']}"},
                     json={"phone": "+12025550123", "at": "2026-11-26T15:00:00"})
    shown = example_json(json_block(F, "Every error is JSON"))
    assert bad.status_code == 422 and bad.json() == shown, bad.text
    # "The access log ... has one line per request with the route template, never the path:
    # `127.0.0.1 "DELETE /v1/dnc/{phone}" 200 3.1ms key=...` ... Phone numbers and keys never
    # appear."
    server = sh.servers[0]
    server.stop()
    log = server.log()
    shown = re.search(r"never\s+the path: `([^`]+)`", " ".join(
        (ROOT / F).read_text(encoding="utf-8").split()))
    assert shown, f"{F}: the access log's example line is gone"
    line = re.escape(shown.group(1))
    line = line.replace(re.escape("3.1ms"), r"[\d.]+ms").replace("8f3a01c2d4e5", r"[0-9a-f]+")
    assert re.search(line, log), (shown.group(1), log[-3000:])
    assert not re.search(r"(\+|%2B)1202555\d{4}|2025550\d{3}", log), "a number in the log"
    assert not any(k in log for k in keys.values()), "a key in the log"


def wait_done(sh: Shell, job_id: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = httpx.get(f"{sh.vars['S']}/v1/jobs/{job_id}",
                      headers={"Authorization": f"Bearer {sh.vars['K']}"}, timeout=10)
        if r.json()["state"] in ("done", "failed", "cancelled"):
            assert r.json()["state"] == "done", r.json()
            return
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} not done within {timeout} s")
