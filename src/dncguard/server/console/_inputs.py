"""What the console refuses in a posted form before acting on it, and how it counts an upload.

* A text field sent as a file part (multipart) would be read as absent: it is named instead.
* A sign-in key that is not of a key's form (:mod:`..keys`) is refused before the key store
  is asked: a NUL in it cannot even be sent to PostgreSQL.
* An upload's name with a control character (a NUL, an ESC) is refused: it is stored as the
  job's input name, and shown on every page that lists the job.
* An upload's rows are counted by the job runner's own reader
  (:func:`dncguard.io.tables.open_table`), so the total shown is the rows it scrubs.
"""

from __future__ import annotations

import re
from pathlib import Path

from starlette.datastructures import FormData, UploadFile

from ...io.tables import open_table
from .._text import not_text
from ..keys import PREFIX

#: A key as :meth:`..keys.KeyStore.create` writes it: ``dgk_``, its id (12 hex digits, as
#: ``secrets.token_hex(6)``), ``_`` and its secret (``secrets.token_urlsafe``).
_KEY = re.compile(re.escape(PREFIX) + r"[0-9a-f]{12}_[A-Za-z0-9_-]{1,200}")
#: C0 controls (tab and line breaks included), DEL and C1 controls: none belongs in a name.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def looks_like_key(text: str) -> bool:
    """Whether ``text`` has the form of an API key (it may still be wrong or revoked)."""
    return _KEY.fullmatch(text) is not None


def sent_as_files(form: FormData, files: tuple[str, ...] = ()) -> list[str]:
    """The fields of ``form`` given as a file part, other than ``files`` (which take one)."""
    return sorted({k for k, v in form.multi_items()
                   if isinstance(v, UploadFile) and k not in files})


def file_name_problem(name: str) -> str | None:
    """Why an upload's name cannot be stored as a job's input name (one line that does not
    repeat the name), or None."""
    found = _CONTROL.search(name)
    if found is not None:
        return (f"the file's name holds the control character U+{ord(found.group()):04X}; "
                "rename the file and upload it again")
    why = not_text(name)
    if why is not None:
        return f"the file's name is {why}"
    return None


def count_rows(path: Path) -> int | None:
    """The rows of a job's input as the job runner reads them (its reader skips blank lines
    and reads a quoted field over several lines as one row); None when it cannot be read
    (the job then fails saying why)."""
    try:
        reader = open_table(path)
    except Exception:
        return None
    try:
        return sum(1 for _ in reader.rows())
    except Exception:
        return None
    finally:
        reader.close()


__all__ = ["count_rows", "file_name_problem", "looks_like_key", "sent_as_files"]
