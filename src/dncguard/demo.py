"""Fictional demo data: lists and a contact file built from ranges reserved for fiction.

US and Canadian numbers use 555-0100 to 555-0199 (reserved for fictional use by the NANPA);
UK numbers use Ofcom's drama range 020 7946 0000-0999; Australian numbers use ACMA's
02 5550 xxxx range. No real subscriber is ever involved.
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from .lists.store import ListStore

AREAS = ["202", "212", "305", "312", "415", "512", "617", "702"]


def us(area: str, line: int) -> str:
    return f"+1{area}5550{line:03d}"[:12]


def sandbox_seed() -> dict[str, Any]:
    """The demo tenant served by the CXone sandbox: one active DNC group holding Sam's
    number, a retired group that must not block, and an http-batch list holding Tia's."""
    return {
        "skills": [{"skillId": 218853, "skillName": "Outbound Sales"}],
        "groups": [
            {"dncGroupId": 364, "dncGroupName": "Demo tenant DNC", "scrubbedSkills": [218853],
             "records": ["3125550144", {"phoneNumber": "2125550102",
                                        "expiredDate": "2020-01-01T00:00:00Z"}]},
            {"dncGroupId": 366, "dncGroupName": "Retired list", "isActive": False,
             "records": ["6175550133"]},
        ],
        "http_batch": {"lists": {"partner-dnc": ["+14155550111"]}},
    }


@dataclass
class DemoFiles:
    folder: Path
    contacts: Path


def build_demo(store: ListStore, folder: Path, today: date) -> DemoFiles:
    """Write demo list files into ``folder``, import them into ``store``, write contacts."""
    folder.mkdir(parents=True, exist_ok=True)
    registry = [us(a, n) for a in AREAS for n in range(100, 200, 9)]  # ~12 per area code
    (folder / "us-national.txt").write_text(
        "\n".join(f"{e[2:5]},{e[5:]}" for e in registry) + "\n", encoding="utf-8")
    (folder / "us-fl.txt").write_text("3055550150\n3055550151\n", encoding="utf-8")
    (folder / "us-tx.txt").write_text("5125550160\n", encoding="utf-8")
    (folder / "us-ma.txt").write_text("6175550170\n", encoding="utf-8")
    (folder / "ca-national.txt").write_text("6135550120\n", encoding="utf-8")
    (folder / "gb-tps.txt").write_text("020 7946 0123\n", encoding="utf-8")
    (folder / "au-dncr.txt").write_text("02 5550 1234\n", encoding="utf-8")
    (folder / "litigators.txt").write_text("+14155550177\n", encoding="utf-8")
    hashed = hashlib.sha256(b"+15125550188").hexdigest()
    (folder / "partner-hashes.txt").write_text(hashed + "\n", encoding="utf-8")
    (folder / "blocked-ranges.txt").write_text("1702555019\n", encoding="utf-8")

    store.import_file(folder / "us-national.txt", kind="national", name="us-ftc",
                      jurisdiction="US", snapshot_date=today, who="demo")
    store.import_file(folder / "us-fl.txt", kind="state", name="us-fl", jurisdiction="US-FL",
                      snapshot_date=today, who="demo")
    for state in ("tx", "ma"):
        store.import_file(folder / f"us-{state}.txt", kind="state", name=f"us-{state}",
                          jurisdiction=f"US-{state.upper()}", snapshot_date=today, who="demo")
    store.import_file(folder / "ca-national.txt", kind="national", name="ca-dncl",
                      jurisdiction="CA", snapshot_date=today, who="demo")
    store.import_file(folder / "gb-tps.txt", kind="national", name="gb-tps", jurisdiction="GB",
                      snapshot_date=today, who="demo")
    store.import_file(folder / "au-dncr.txt", kind="national", name="au-dncr",
                      jurisdiction="AU", snapshot_date=today, who="demo")
    store.import_file(folder / "litigators.txt", kind="litigator", name="litigators", who="demo")
    store.import_file(folder / "partner-hashes.txt", kind="hashed", name="partner-hashed",
                      who="demo")
    store.import_file(folder / "blocked-ranges.txt", kind="prefix", name="blocked-ranges",
                      who="demo")
    store.add_number("+13125550166", list_name="internal", reason="asked not to be called",
                     who="demo")

    contacts = folder / "contacts.csv"
    rows = [
        ("Ada", "(202) 555-0100", ""),  # on the national registry
        ("Ben", "202.555.0101", ""),
        ("Cleo", "+1 212 555 0102", ""),
        ("Dev", "305-555-0150", "FL"),  # on the Florida list
        ("Eli", "3125550166", ""),  # on the internal list
        ("Fay", "415 555 0177", ""),  # known litigator
        ("Gus", "512-555-0188", ""),  # on a partner's hashed list
        ("Hal", "702-555-0195", ""),  # in a blocked range
        ("Ivy", "613-555-0120", ""),  # Canada's DNCL
        ("Jo", "+44 20 7946 0123", ""),  # UK TPS
        ("Kai", "+44 20 7946 0456", ""),
        ("Lu", "+61 2 5550 1234", ""),  # Australia's DNCR
        ("Mo", "(202) 555-0101", ""),  # duplicate of Ben
        ("Ned", "12345", ""),  # invalid
        ("Oz", "call me maybe", ""),  # invalid
        ("Pia", "+1 876 555 0100", ""),  # Jamaica: unsupported region
        ("Quin", "=HYPERLINK(\"http://example.invalid\")", ""),  # CSV injection attempt
        ("Rae", "617-555-0133", ""),
        ("Sam", "312-555-0144", ""),  # in the demo tenant's CXone DNC group
        ("Tia", "415-555-0111", ""),  # reported by the http-batch service
        ("Uma", "+61 2 5550 9876", ""),  # Sydney: before 09:00 there at the demo's dial time
        ("Vic", "303-555-0199", ""),  # Colorado: its state list is required, not loaded
    ]
    with contacts.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["name", "phone", "state"])
        w.writerows(rows)
    return DemoFiles(folder, contacts)
