"""The console's forms hold only their own fields, each once: a field the page does not read
(line_type=..., a misspelt zipcode) or a field given twice (two phone numbers) is refused
with 422 naming it, never judged as if it had not been sent."""

from __future__ import annotations

from pathlib import Path

import httpx

from ..server.conftest import Server, make_key, server_env
from .conftest import csrf_token


def test_forms_refuse_fields_they_do_not_read(tmp_path: Path) -> None:
    home = tmp_path / "home"
    admin = make_key(home, "admin")
    server = Server(server_env(home), tmp_path / "server.log")
    try:
        server.start()
        with httpx.Client(base_url=server.url, timeout=30) as c:
            refused = c.post("/console/signin", data={
                "key": admin, "keys": admin, "csrf": csrf_token(c.get("/console/signin"))})
            assert refused.status_code == 422 and "unknown field &#x27;keys&#x27;" in \
                refused.text.replace("&#39;", "&#x27;")
            signed = c.post("/console/signin", data={
                "key": admin, "csrf": csrf_token(c.get("/console/signin"))})
            assert signed.status_code == 303, signed.text
            token = csrf_token(c.get("/console/check"))
            forms: list[tuple[dict[str, str | list[str]], str]] = [
                ({"phone": "+12025550123", "line_type": "bogus"}, "line_type"),
                ({"phone": "+12025550123", "zipcode": "99999"}, "zipcode"),
                ({"phone": ["+12025550188", "+12025550123"]}, "given twice"),
            ]
            for data, named in forms:
                page = c.post("/console/check", data={**data, "csrf": token})
                assert page.status_code == 422, (data, page.status_code)
                assert "Form not understood" in page.text and named in page.text
            ok = c.post("/console/check", data={"phone": "+12025550123", "csrf": token})
            assert ok.status_code == 200 and "+12025550123" in ok.text
            opt = c.post("/console/optouts/add", data={
                "phone": "+12025550123", "reasn": "asked", "csrf": token})
            assert opt.status_code == 422 and "reasn" in opt.text
    finally:
        server.stop()
