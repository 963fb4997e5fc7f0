"""The scrub pipeline: verdicts, dedup, order, bad input, injection, summary, fail closed."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dncguard.config import Settings
from dncguard.engine.scrubber import Scrubber, summary_path
from dncguard.errors import InputError
from dncguard.lists.store import ListStore
from dncguard.models import DataVersions, Decision, Reason, merge_reasons
from dncguard.sources.local import LocalListsCheck
from dncguard.sources.protocol import Batch, CheckBase, CheckContext

from .conftest import AT, read_csv

D = date(2026, 11, 1)


@pytest.fixture
def lists(store: ListStore, write_lines: Callable[..., Path]) -> ListStore:
    store.import_file(write_lines(["2025550100", "2025550101"], "us.txt"), kind="national",
                      name="us-ftc", jurisdiction="US", snapshot_date=D)
    store.import_file(write_lines(["3055550150"], "fl.txt"), kind="state", name="us-fl",
                      jurisdiction="US-FL", snapshot_date=D)
    store.add_number("2025550102", reason="opt-out")
    return store


class Exploding(CheckBase):
    """A check that always fails, like an unreachable remote source."""

    name = "remote-x"

    def versions(self) -> DataVersions:
        return DataVersions()

    async def check(self, batch: Batch, ctx: CheckContext) -> list[list[Reason]]:
        raise ConnectionError("connection refused")


class TestVerdicts:
    def test_check_one_number(self, lists: ListStore, scrubber: Scrubber) -> None:
        v = scrubber.check("(202) 555-0100", at=AT)
        assert v.decision is Decision.BLOCK
        assert v.reason_codes == ["DNC_NATIONAL"]
        reason = v.reasons[0]
        assert (reason.source, reason.list) == ("local", "us-ftc")
        assert "2026-11-01" in reason.detail
        assert v.e164 == "+12025550100" and v.region == "US" and v.state == "DC"
        assert v.dial_time == AT and v.checked_at == AT
        # an undated list is named by its last change (what it held then)
        changed = lists.get("internal").updated_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        assert v.versions.lists == {"us-ftc": "2026-11-01", "us-fl": "2026-11-01",
                                    "internal": changed}

    def test_every_hit_is_kept_and_most_severe_wins(self, lists: ListStore,
                                                    scrubber: Scrubber) -> None:
        lists.add_number("2025550100")
        v = scrubber.check("2025550100", at=AT)
        assert v.decision is Decision.BLOCK
        assert sorted(v.reason_codes) == ["DNC_INTERNAL", "DNC_NATIONAL"]

    def test_clean_number_is_allowed(self, lists: ListStore, scrubber: Scrubber) -> None:
        v = scrubber.check("+1 212 555 0199", at=AT)
        assert (v.decision, v.reasons) == (Decision.ALLOW, [])

    def test_naive_dial_time_is_refused(self, scrubber: Scrubber) -> None:
        with pytest.raises(ValueError, match="offset"):
            scrubber.check("2025550100", at=AT.replace(tzinfo=None))

    @pytest.mark.parametrize(
        ("decisions", "expected"),
        [
            (["allow", "defer"], "defer"), (["defer", "error"], "error"),
            (["error", "block"], "block"), (["block", "invalid"], "invalid"), ([], "allow"),
        ],
    )
    def test_severity_order(self, decisions: list[str], expected: str) -> None:
        reasons = [Reason(code="X", decision=Decision(d)) for d in decisions]
        assert merge_reasons(reasons)[0] is Decision(expected)

    def test_defer_takes_the_latest_moment(self) -> None:
        from datetime import timedelta

        reasons = [Reason(code="A", decision=Decision.DEFER, next_allowed_at=AT),
                   Reason(code="B", decision=Decision.DEFER,
                          next_allowed_at=AT + timedelta(hours=2))]
        assert merge_reasons(reasons) == (Decision.DEFER, AT + timedelta(hours=2))
        reasons.append(Reason(code="C", decision=Decision.DEFER))
        assert merge_reasons(reasons) == (Decision.DEFER, None)

    def test_exemption_lifts_registry_hits_only(self) -> None:
        hit = Reason(code="DNC_NATIONAL", decision=Decision.BLOCK)
        internal = Reason(code="DNC_INTERNAL", decision=Decision.BLOCK)
        consent = Reason(code="EXEMPT_CONSENT", decision=Decision.ALLOW,
                         overrides=["DNC_NATIONAL", "DNC_STATE"])
        assert merge_reasons([hit, consent])[0] is Decision.ALLOW
        assert merge_reasons([hit, consent, internal])[0] is Decision.BLOCK

    def test_state_lists_apply_by_area_code_or_address(self, store: ListStore,
                                                       scrubber: Scrubber,
                                                       write_lines: Callable[..., Path]) -> None:
        """A state list applies to numbers of its state, by area code or by the address's
        state, and to every number whose row gives no address (an area code does not show
        where the subscriber lives); a national registry to numbers of its country."""
        store.import_file(write_lines(["3055550150", "2125550170"], "fl.txt"), kind="state",
                          name="us-fl", jurisdiction="US-FL", snapshot_date=D)
        store.import_file(write_lines(["+16135550120", "+12125550171"], "ca.txt"),
                          kind="national", name="ca-dncl", jurisdiction="CA", snapshot_date=D)
        assert scrubber.check("3055550150", at=AT).reason_codes == ["DNC_STATE"]
        unplaced = scrubber.check("2125550170", at=AT)  # a NY area code, no address
        assert unplaced.reason_codes == ["DNC_STATE"]
        assert "the row gives no state or ZIP" in unplaced.reasons[0].detail
        assert scrubber.check("2125550170", at=AT, state="NY").decision is Decision.ALLOW
        assert scrubber.check("2125550170", at=AT, zip="10001").decision is Decision.ALLOW
        assert scrubber.check("2125550170", at=AT, state="FL").reason_codes == ["DNC_STATE"]
        assert scrubber.check("6135550120", at=AT).reason_codes == ["DNC_NATIONAL"]
        assert scrubber.check("2125550171", at=AT).decision is Decision.ALLOW  # a US number

    def test_campaign_profile_selects_lists(self, lists: ListStore, settings: Settings) -> None:
        from dncguard.config import CampaignProfile

        cfg = settings.model_copy(update={"campaigns": {
            "internal-only": CampaignProfile(lists=["internal"])}})
        s = Scrubber(cfg, clock=lambda: AT)
        assert s.check("2025550100", campaign="internal-only").decision is Decision.ALLOW
        assert s.check("2025550102", campaign="internal-only").decision is Decision.BLOCK
        v = s.check("2025550102", campaign="internal-only")
        assert list(v.versions.lists) == ["internal"] and v.versions.lists["internal"]


class TestFailClosed:
    def test_failing_check_gives_error_never_allow(self, lists: ListStore,
                                                   settings: Settings) -> None:
        s = Scrubber(settings, checks=[LocalListsCheck(lists), Exploding()], clock=lambda: AT)
        verdicts = s.scrub(["2025550100", "2125550199", "12345"], at=AT)
        assert [v.decision for v in verdicts] == [Decision.BLOCK, Decision.ERROR,
                                                  Decision.INVALID]
        err = verdicts[1].reasons[0]
        assert (err.code, err.source) == ("SOURCE_ERROR", "remote-x")
        assert "connection refused" in err.detail

    def test_corrupt_snapshot_fails_closed(self, lists: ListStore, scrubber: Scrubber,
                                           tmp_path: Path, write_csv: Callable[..., Path]
                                           ) -> None:
        """A damaged list file makes every number 'error' and the summary counts them."""
        info = lists.get("us-ftc")
        path = lists.snapshot_path(info)
        assert path is not None
        path.write_bytes(b"garbage")
        src = write_csv([["phone"], ["2125550199"], ["2025550102"]])
        summary = scrubber.scrub_file(src, tmp_path / "out.csv", at=AT)
        got = read_csv(tmp_path / "out.csv")
        assert [r["decision"] for r in got] == ["error", "block"]
        assert got[0]["reason_codes"] == "SOURCE_ERROR"
        assert "list us-ftc could not be read" in got[0]["detail"]
        assert got[1]["reason_codes"] == "DNC_INTERNAL;SOURCE_ERROR"
        assert summary.source_errors == 2


class TestFiles:
    def test_dedup_order_and_columns(self, lists: ListStore, settings: Settings,
                                     tmp_path: Path, write_csv: Callable[..., Path]) -> None:
        """Output keeps every column and the input order across many small chunks run
        concurrently; later copies of a number point at the first row and share its
        decision."""
        rows = [["name", "Phone Number", "detail"]]
        numbers = ["2025550100", "2125550111", "(202) 555-0100", "3055550150", "2025550102",
                   "bad", "+1 202 555 0100", "2125550111"] * 5
        rows += [[f"n{i}", p, f"keep-{i}"] for i, p in enumerate(numbers)]
        src = write_csv(rows)
        s = Scrubber(settings.model_copy(update={"chunk_size": 3, "concurrency": 3}),
                     clock=lambda: AT)
        out = tmp_path / "out.csv"
        summary = s.scrub_file(src, out, at=AT)
        got = read_csv(out)
        # an input column named like an added one that no dialer acts on stays; the added one
        # becomes dncguard_<name> (an input "decision" is refused: tests/test_scrub_output_safety)
        assert list(got[0]) == ["name", "Phone Number", "detail", "e164", "decision",
                                "reason_codes", "dncguard_detail", "next_allowed_at"]
        assert [r["name"] for r in got] == [f"n{i}" for i in range(len(numbers))]
        assert [r["detail"] for r in got] == [f"keep-{i}" for i in range(len(numbers))]
        assert got[2]["reason_codes"] == "DNC_NATIONAL;DUPLICATE"
        assert "duplicate of row 1" in got[2]["dncguard_detail"]
        assert got[2]["decision"] == got[0]["decision"] == "block"
        assert got[8]["reason_codes"] == "DNC_NATIONAL;DUPLICATE"
        assert got[3]["reason_codes"] == "DNC_STATE"
        assert got[4]["reason_codes"] == "DNC_INTERNAL"
        assert got[5]["decision"] == "invalid"
        assert summary.duplicates == len(numbers) - 5 - 4  # 5 invalid rows, 4 unique numbers
        assert summary.unique_valid == 4

    def test_summary_matches_an_independent_count(self, lists: ListStore, scrubber: Scrubber,
                                                  tmp_path: Path,
                                                  write_csv: Callable[..., Path]) -> None:
        rows = [["phone", "state"], ["2025550100", ""], ["2025550100", ""], ["3055550150", "FL"],
                ["2125550199", "NY"], ["2025550102", ""], ["junk", ""], ["+18765550100", ""],
                ["020 7946 0123", ""]]
        src = write_csv(rows)
        out = tmp_path / "out.csv"
        scrubber.scrub_file(src, out, at=AT, defaults={"region": "US"})
        summary = json.loads(summary_path(out).read_text())
        got = read_csv(out)
        decisions = Counter(r["decision"] for r in got)
        reasons = Counter(c for r in got for c in r["reason_codes"].split(";") if c)
        assert summary["totalRows"] == len(got) == 8
        assert summary["byDecision"] == {d.value: decisions.get(d.value, 0) for d in Decision}
        assert summary["byReason"] == dict(sorted(reasons.items()))
        assert summary["byList"] == {"internal": 1, "us-fl": 1, "us-ftc": 2}
        assert summary["byState"]["DC"] == {"block": 3}
        assert summary["byState"]["NY"] == {"allow": 1}
        assert summary["duplicates"] == 1
        unique = {r["e164"] for r in got if r["decision"] != "invalid"}
        suppressed = {r["e164"] for r in got if r["decision"] in ("block", "defer", "error")}
        assert summary["uniqueValid"] == len(unique) == 4
        assert summary["suppressionRate"] == round(len(suppressed) / len(unique), 6)
        assert summary["lists"] == {
            "internal": lists.get("internal").updated_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "us-fl": "2026-11-01", "us-ftc": "2026-11-01"}
        assert summary["rowErrorCount"] == 3  # junk, Jamaica, a UK number dialled as US
        assert summary["rowsPerSecond"] > 0

    def test_malformed_rows_are_reported_not_fatal(self, scrubber: Scrubber, tmp_path: Path
                                                   ) -> None:
        src = tmp_path / "in.csv"
        src.write_bytes(b"name,phone\nA,2025550100\nB,2025550101,extra\nC\n"
                        b"D,20255501\xff9\nE,2125550199\n")
        out = tmp_path / "out.csv"
        summary = scrubber.scrub_file(src, out, at=AT)
        got = read_csv(out)
        assert [r["name"] for r in got] == ["A", "B", "C", "D", "E"]
        assert [r["decision"] for r in got] == ["allow", "invalid", "invalid", "invalid",
                                                "allow"]
        assert got[1]["reason_codes"] == "MALFORMED_ROW"
        assert "row 2: expected 2 fields, found 3" in got[1]["detail"]
        assert "row 3: expected 2 fields, found 1" in got[2]["detail"]
        assert "not valid UTF-8" in got[3]["detail"]
        assert [(e.row, e.field) for e in summary.row_errors] == [(2, "*"), (3, "*"), (4, "*")]

    def test_invalid_number_names_row_and_field(self, scrubber: Scrubber, tmp_path: Path,
                                                write_csv: Callable[..., Path]) -> None:
        src = write_csv([["Mobile"], ["2025550100"], ["12345"]])
        summary = scrubber.scrub_file(src, tmp_path / "o.csv", at=AT)
        assert [(e.row, e.field) for e in summary.row_errors] == [(2, "Mobile")]
        assert "row 2, field 'Mobile'" in read_csv(tmp_path / "o.csv")[1]["detail"]

    def test_empty_and_header_only_files(self, scrubber: Scrubber, tmp_path: Path) -> None:
        src = tmp_path / "nothing.csv"
        src.write_bytes(b"")
        with pytest.raises(InputError, match="no header row"):  # as blank lines are
            scrubber.scrub_file(src, tmp_path / "o.csv", at=AT)
        for content in (b"phone\n",):
            src = tmp_path / "empty.csv"
            src.write_bytes(content)
            out = tmp_path / "out.csv"
            summary = scrubber.scrub_file(src, out, at=AT)
            assert summary.total_rows == 0
            assert summary.by_decision == {d.value: 0 for d in Decision}
            assert summary.suppression_rate is None
            assert read_csv(out) == []

    def test_missing_phone_column_is_an_input_error(self, scrubber: Scrubber, tmp_path: Path,
                                                    write_csv: Callable[..., Path]) -> None:
        src = write_csv([["name", "email"], ["a", "b"]])
        with pytest.raises(InputError, match="no phone column found.*name, email"):
            scrubber.scrub_file(src, tmp_path / "o.csv", at=AT)
        with pytest.raises(InputError, match="no column named 'tel'"):
            scrubber.scrub_file(src, tmp_path / "o.csv", at=AT, phone_column="tel")
        assert not (tmp_path / "o.csv").exists()
        with pytest.raises(InputError, match="no such file"):
            scrubber.scrub_file(tmp_path / "missing.csv", tmp_path / "o.csv", at=AT)

    def test_explicit_phone_column_and_region_column(self, scrubber: Scrubber, tmp_path: Path,
                                                     write_csv: Callable[..., Path]) -> None:
        src = write_csv([["home", "work", "country"], ["x", "020 7946 0123", "UK"],
                         ["y", "02 5550 1234", "AU"], ["z", "2025550100", ""]])
        scrubber.scrub_file(src, tmp_path / "o.csv", at=AT, phone_column="work")
        assert [r["e164"] for r in read_csv(tmp_path / "o.csv")] == [
            "+442079460123", "+61255501234", "+12025550100"]

    def test_csv_injection_is_defused_unless_raw(self, scrubber: Scrubber, tmp_path: Path,
                                                 write_csv: Callable[..., Path]) -> None:
        src = write_csv([["phone", "note"], ["+12025550100", "=cmd|' /C calc'!A0"],
                         ["2025550101", "@SUM(1+1)"], ["2025550102", "-12"]])
        scrubber.scrub_file(src, tmp_path / "safe.csv", at=AT)
        safe = read_csv(tmp_path / "safe.csv")
        assert [r["note"] for r in safe] == ["'=cmd|' /C calc'!A0", "'@SUM(1+1)", "-12"]
        assert safe[0]["phone"] == "+12025550100" and safe[0]["e164"] == "+12025550100"
        scrubber.scrub_file(src, tmp_path / "raw.csv", at=AT, raw=True)
        assert read_csv(tmp_path / "raw.csv")[0]["note"] == "=cmd|' /C calc'!A0"

    def test_parquet_in_and_out(self, lists: ListStore, scrubber: Scrubber,
                                tmp_path: Path) -> None:
        src = tmp_path / "in.parquet"
        pq.write_table(pa.table({"id": [1, 2, 3], "phone": ["2025550100", None, "2125550199"]}),
                       src)
        out = tmp_path / "out.parquet"
        summary = scrubber.scrub_file(src, out, at=AT)
        table = pq.read_table(out).to_pylist()
        assert [r["id"] for r in table] == ["1", "2", "3"]
        assert [r["decision"] for r in table] == ["block", "invalid", "allow"]
        assert summary.total_rows == 3

    def test_scrub_api_marks_duplicates(self, lists: ListStore, scrubber: Scrubber) -> None:
        verdicts = scrubber.scrub(["2025550101", "+12025550101", "2125550199"], at=AT)
        assert [v.row for v in verdicts] == [1, 2, 3]
        assert verdicts[1].decision is Decision.BLOCK
        assert verdicts[1].reason_codes == ["DNC_NATIONAL", "DUPLICATE"]


def test_a_check_without_the_protocol_is_refused_by_name(settings: Settings) -> None:
    """A source written without the protocol's members is refused when the scrubber is built,
    naming what it lacks (not an AttributeError in the middle of a scrub)."""
    from dncguard.errors import ConfigError

    class Bare:
        name = "bare-source"

        def versions(self) -> DataVersions:
            return DataVersions()

        async def check(self, batch: Batch, ctx: CheckContext) -> list[list[Reason]]:
            return [[] for _ in range(len(batch))]

    with pytest.raises(ConfigError, match="'bare-source' lacks always, findings, timezones"):
        Scrubber(settings, checks=[Bare()])  # type: ignore[list-item]
    assert Scrubber(settings, checks=[Exploding()]).checks[0].name == "remote-x"
