"""The shell and curl examples of README.md and docs/*.md, as data (tests/test_docs_examples.py).

Every fenced ```bash / ```sh / ```shell / ```console block (and every ``$ ``-prompted line of any
other fenced block) is split into commands the way a reader would type them:

* ``\\`` line continuations and quotes that span lines are joined;
* ``#`` comments are kept apart (``cmd  # prints the key once``): the text states outcomes;
* ``export X=... Y=...`` lines and ``X=... cmd`` prefixes become environment assignments;
* ``a && b``, ``a; b`` and a trailing ``&`` (background) are split;
* in console blocks, unprompted lines are the previous command's output, except an indented
  line opening with ``[`` or ``-`` (the docs' hanging indent for more optional flags);
* a line ``# -> ...`` (and the ``#`` lines indented under it) is the previous command's stated
  result.

Optional groups written ``[--flag VALUE]`` are metasyntax: they are kept apart from the argv
(:attr:`Command.optional`) so that the test can check each one on its own.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: Languages of fenced blocks whose lines are shell commands (``$ `` optional).
SHELL = {"bash", "sh", "shell", "zsh"}
#: Languages whose ``$ ``-prompted lines are commands and whose other lines are output.
CONSOLE = {"console", "shell-session"}

_FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>```+|~~~+)\s*(?P<lang>[\w+-]*)")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_ASSIGN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


@dataclass
class Command:
    """One command of an example."""

    file: str  # relative to the repository, e.g. "docs/service.md"
    line: int  # 1-based line of the command's first line
    section: str  # the nearest heading above it
    block: int  # index of its fenced block in the file
    text: str  # the command as written (continuations joined, comment removed)
    head: str  # the same without its optional [...] groups
    argv: list[str]  # words, quotes removed, optional groups removed
    env: dict[str, str] = field(default_factory=dict)  # ``X=... cmd`` / ``export X=...``
    optional: list[list[str]] = field(default_factory=list)  # ``[...]`` groups, each as words
    comment: str = ""  # the trailing ``# ...`` comment
    stated: str = ""  # a ``# -> ...`` result stated under the command
    output: list[str] = field(default_factory=list)  # console blocks: the lines shown
    background: bool = False  # ends with ``&``
    is_export: bool = False  # an ``export`` line (argv empty, env set)

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"

    @property
    def program(self) -> str:
        return self.argv[0] if self.argv else ""

    @property
    def is_dncguard(self) -> bool:
        return self.program == "dncguard"

    def __str__(self) -> str:
        return f"{self.where}: {self.text}"


@dataclass
class Block:
    file: str
    line: int  # the fence's line
    lang: str
    section: str
    index: int
    commands: list[Command] = field(default_factory=list)
    notes: list[tuple[int, str]] = field(default_factory=list)  # comment lines: (line, text)


def doc_files() -> list[Path]:
    """README.md and every docs/*.md, in a stable order."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _strip_comment(text: str) -> tuple[str, str]:
    """``text`` without its trailing shell comment, and the comment (without ``#``). A ``#``
    starts a comment only outside quotes and at the start of a word."""
    quote = ""
    prev = " "
    for i, ch in enumerate(text):
        if quote:
            if ch == quote:
                quote = ""
            elif ch == "\\" and quote == '"':
                continue
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and prev.isspace():
            return text[:i].rstrip(), text[i + 1:].strip()
        prev = ch
    return text.rstrip(), ""


def _complete(text: str) -> bool:
    """Whether ``text`` is a whole command: no trailing ``\\``, no open quote, no open ``[``."""
    if text.rstrip().endswith("\\"):
        return False
    try:
        shlex.split(_strip_comment(text)[0])
    except ValueError:
        return False
    body = _strip_comment(text)[0]
    return body.count("[") <= body.count("]")


def _words(text: str) -> list[str]:
    """Shell words of one logical command line as written (quotes kept), with ``&&``, ``;``,
    ``|`` and ``&`` as words of their own (inside quotes they stay text)."""
    lexer = shlex.shlex(text, posix=False, punctuation_chars=";&|")
    lexer.whitespace_split = True
    lexer.commenters = ""
    return list(lexer)


def _unquote(raw: str) -> str:
    """One word as the shell passes it on (quotes removed, nothing expanded)."""
    return " ".join(shlex.split(raw)) if raw else raw


def _split_optional(raw: list[str]) -> tuple[list[str], list[list[str]]]:
    """Words (unquoted) outside ``[...]`` groups, and each group's words. Only an unquoted
    ``[`` opens a group: a quoted JSON array is a value."""
    argv: list[str] = []
    groups: list[list[str]] = []
    current: list[str] | None = None
    for word in raw:
        w = word
        if current is None and w.startswith("["):
            current = []
            w = w[1:]
        if current is not None:
            end = w.endswith("]")
            w = w[:-1] if end else w
            if w:
                current.append(_unquote(w))
            if end:
                groups.append(current)
                current = None
            continue
        argv.append(_unquote(word))
    if current is not None:
        groups.append(current)
    return argv, groups


def _outside_groups(raw: list[str]) -> list[str]:
    """The words of ``raw`` (as written) outside ``[...]`` groups."""
    out: list[str] = []
    depth = 0
    for word in raw:
        if depth == 0 and word.startswith("["):
            depth = 1
        if depth:
            if word.endswith("]"):
                depth = 0
            continue
        out.append(word)
    return out


def _commands(file: str, line: int, section: str, block: int, logical: str,
              comment: str) -> list[Command]:
    """The commands of one logical line (``a && b; c &``)."""
    words = _words(re.sub(r"\\\n\s*", " ", logical))
    parts: list[tuple[list[str], bool]] = []
    current: list[str] = []
    for w in words:
        if w in ("&&", ";", "||", "|"):
            parts.append((current, False))
            current = []
        elif w == "&":
            parts.append((current, True))
            current = []
        else:
            current.append(w)
    if current:
        parts.append((current, False))
    out: list[Command] = []
    for ws, background in parts:
        if not ws:
            continue
        env: dict[str, str] = {}
        is_export = ws[0] == "export"
        rest = ws[1:] if is_export else ws
        while rest and _ASSIGN.match(rest[0]):
            k, v = rest[0].split("=", 1)
            env[k] = _unquote(v)
            rest = rest[1:]
        argv, optional = _split_optional(rest)
        head = " ".join(ws[:len(ws) - len(rest)] + _outside_groups(rest))
        out.append(Command(file, line, section, block, " ".join(ws), head, argv, env, optional,
                           comment, background=background, is_export=is_export))
    return out


def parse_file(path: Path) -> list[Block]:
    """Every shell block of one Markdown file, with its commands."""
    rel = path.relative_to(ROOT).as_posix()
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    section = ""
    i = 0
    index = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            h = _HEADING.match(lines[i])
            if h:
                section = h.group(2)
            i += 1
            continue
        fence, indent, lang = m.group("fence"), len(m.group("indent")), m.group("lang").lower()
        start = i
        body: list[tuple[int, str]] = []
        i += 1
        while i < len(lines) and not lines[i].strip().startswith(fence[:3]):
            raw = lines[i]
            body.append((i + 1, raw[indent:] if not raw[:indent].strip() else raw.lstrip()))
            i += 1
        i += 1  # the closing fence
        block = Block(rel, start + 1, lang, section, index)
        index += 1
        if lang in SHELL:
            _parse_body(block, body, console=False)
        elif lang in CONSOLE or any(t.startswith("$ ") for _, t in body):
            _parse_body(block, body, console=True)
        if block.commands:
            blocks.append(block)
    return blocks


def _parse_body(block: Block, body: list[tuple[int, str]], console: bool) -> None:
    last: Command | None = None
    j = 0
    while j < len(body):
        lineno, text = body[j]
        stripped = text.strip()
        if console and not text.startswith("$ "):
            if last is not None and stripped:
                last.output.append(stripped)
            j += 1
            continue
        if not stripped:
            j += 1
            continue
        if stripped.startswith("#"):
            note = stripped[1:].strip()
            if note.startswith("->") and last is not None:
                stated = [note[2:].strip()]
                j += 1
                while j < len(body) and body[j][1].startswith("#") and \
                        body[j][1][1:2].isspace() and body[j][1][1:].startswith("  "):
                    stated.append(body[j][1][1:].strip())
                    j += 1
                last.stated = " ".join(stated)
                continue
            block.notes.append((lineno, note))
            j += 1
            continue
        logical = text[2:] if text.startswith("$ ") else text
        j += 1
        # join continuations: a trailing backslash, an open quote or an open [ group, and (in
        # console blocks) an indented line opening with [ or - under the command
        while j < len(body) and (not _complete(logical) or (
                console and re.match(r"^\s+[\[-]", body[j][1]))):
            logical += "\n" + body[j][1]
            j += 1
        body_text, comment = _strip_comment(logical)
        cmds = _commands(block.file, lineno, block.section, block.index, body_text, comment)
        block.commands.extend(cmds)
        if cmds:
            last = cmds[-1]


def all_blocks() -> list[Block]:
    return [b for path in doc_files() for b in parse_file(path)]


def all_commands() -> list[Command]:
    return [c for b in all_blocks() for c in b.commands]


def invocations() -> list[Command]:
    """Every ``dncguard ...`` command of the docs."""
    return [c for c in all_commands() if c.is_dncguard]


@dataclass
class Mention:
    """A ``dncguard ...`` code span of the prose or a table (syntax, often partial)."""

    file: str
    line: int
    text: str

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


def mentions() -> list[Mention]:
    """Every inline code span starting with ``dncguard `` in README.md and docs/*.md (the
    commands table, the prose, comments of the examples), and every ``dncguard ...`` named in
    a comment of a shell example (``# the key needs ...: dncguard keys create ...``)."""
    out: list[Mention] = []
    for path in doc_files():
        rel = path.relative_to(ROOT).as_posix()
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for m in re.finditer(r"`(dncguard [^`]+)`", line):
                out.append(Mention(rel, n, m.group(1)))
        for block in parse_file(path):
            notes = [*block.notes, *((c.line, c.comment) for c in block.commands)]
            for n, note in notes:
                for m in re.finditer(r"(?<![`\w])dncguard ([^`;()]+)", note):
                    out.append(Mention(rel, n, "dncguard " + m.group(1).strip()))
    return out


if __name__ == "__main__":  # python tests/docs_examples.py: what the test sees
    for c in all_commands():
        extra = "".join((f"  env={c.env}" if c.env else "",
                         f"  optional={c.optional}" if c.optional else "",
                         f"  # {c.comment}" if c.comment else "",
                         f"  -> {c.stated}" if c.stated else "",
                         f"  output={c.output}" if c.output else "",
                         "  &" if c.background else ""))
        print(f"{c.where} [{c.section}] {c.argv}{extra}")
