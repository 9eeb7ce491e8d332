"""A synthetic ADT feed for the demo network and the matching tests: deterministic by seed.

Why: patient matching can only be measured against a truth, and real feeds carry none. The feed is made
from a list of the center's patients (a generated warehouse's, or :func:`synthetic_patients`, which has
realistic, varied names and planted twins) and plants what real feeds hold:

* typos in names (adjacent letters swapped, a letter dropped, doubled or replaced), accents and
  punctuation (``O'Brien``, ``José``), birth dates one digit off or with day and month swapped, missing or
  changed postal codes;
* twins: two patients with the same family name, birth date and postal code (some with near-equal given
  names, ``Aiden`` / ``Ayden``), both admitted;
* people who are not the center's patients (the truth says ``None``);
* the center's MRN in PID-3 with its assigning authority for a share of the messages only (many
  hospitals send their own MRN alone);
* a few broken messages, so the demo shows the quarantine.

:func:`feed` returns the HL7 text and the truth (message control id -> patient id or ``None``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from chc_equity.vbp.matching import PatientRecord


def _words(text: str) -> list[str]:
    return text.split()


FAMILY = _words(
    "Garcia Smith Nguyen Johnson Rodriguez Williams Brown Jones Miller Davis Martinez Hernandez Lopez "
    "Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White Harris "
    "Sanchez Clark Ramirez Lewis Robinson Walker Young Allen King Wright Scott Torres Hill Flores "
    "Green Adams Nelson Baker Hall Rivera Campbell Mitchell Carter Roberts Tran Pham Le Kim Park "
    "Chen Wang Patel Shah Silva Santos Pereira Oliveira O'Brien McCarthy Kowalski Nowak Dubois "
    "Fontaine Haddad Mansour Okafor Mensah Abebe Tesfaye Yilmaz Kaya Ivanova Petrov"
)
FEMALE = _words(
    "Maria Ana Rosa Linh Mai Emily Olivia Sophia Isabella Mia Ava Grace Chloe Fatima Aisha Amina "
    "Lucia Carmen Elena Sofia Hannah Zoe Leah Nadia Yasmin Priya Anjali Mei Hoa Thu Joy Ruth "
    "Esther Marta Irene Clara Julia Laura Paula Teresa"
)
MALE = _words(
    "Jose Juan Luis Carlos Minh Tuan Anh James John Robert Michael David William Daniel Joseph "
    "Mohamed Ahmed Omar Ali Wei Jun Hao Kwame Kofi Samuel Peter Paul Mark Luke Aiden Ethan Noah "
    "Liam Lucas Mateo Diego Pedro Rafael Andre Ivan"
)
NEAR_TWINS = (("Aiden", "Ayden"), ("Jon", "John"), ("Mariah", "Maria"), ("Eric", "Erik"), ("Ana", "Anna"))
ACCENTED = {"Jose": "José", "Lucia": "Lucía", "Andre": "André", "Elena": "Eléna"}
MRN_SYSTEM = "urn:chc-equity:synth:mrn"  # = the synthetic warehouse's Patient.identifier system
HOSPITALS = ("MERCY", "STLUKE", "GENERAL")


def synthetic_patients(n: int, seed: int, *, twins: int = 20, center: str = "north") -> list[PatientRecord]:
    """``n`` patients with varied names (and ``twins`` planted pairs among them)."""
    rng = random.Random(f"adt-patients:{seed}")
    out: list[PatientRecord] = []
    for i in range(n - 2 * twins):
        female = rng.random() < 0.55
        birth = date(1935, 1, 1) + timedelta(days=rng.randrange(365 * 85))
        out.append(_patient(center, i, rng.choice(FAMILY), rng.choice(FEMALE if female else MALE),
                            birth, "F" if female else "M", f"018{rng.randrange(40, 60)}"))  # fmt: skip
    for k in range(twins):
        family, birth = rng.choice(FAMILY), date(1960, 1, 1) + timedelta(days=rng.randrange(365 * 60))
        zip5 = f"018{rng.randrange(40, 60)}"
        if k % 3 == 0:
            a, b = NEAR_TWINS[k % len(NEAR_TWINS)]
        else:
            a, b = rng.sample(FEMALE + MALE, 2)
        for j, given in enumerate((a, b)):
            sex = "F" if given in FEMALE or given in ("Mariah", "Anna") else "M"
            out.append(_patient(center, n - 2 * twins + 2 * k + j, family, given, birth, sex, zip5))
    return out


def _patient(center: str, i: int, family: str, given: str, birth: date, sex: str, zip5: str) -> PatientRecord:
    pid = f"{center}-p{i:05d}"
    return PatientRecord(pid, frozenset({(MRN_SYSTEM, pid)}), family, given, birth, sex, zip5)


def typo(name: str, rng: random.Random) -> str:
    """One keyboard slip: adjacent letters swapped, a letter dropped, doubled or replaced."""
    if len(name) < 3:
        return name + name[-1]
    i = rng.randrange(1, len(name) - 1)
    kind = rng.randrange(4)
    if kind == 0:
        return name[:i] + name[i + 1] + name[i] + name[i + 2 :]
    if kind == 1:
        return name[:i] + name[i + 1 :]
    if kind == 2:
        return name[:i] + name[i] + name[i:]
    return name[:i] + rng.choice("aeioulnrst") + name[i + 1 :]


def _date_slip(d: date, rng: random.Random) -> date:
    if d.day <= 12 and d.day != d.month and rng.random() < 0.5:
        return date(d.year, d.day, d.month)
    for _ in range(10):
        s = list(d.strftime("%Y%m%d"))
        i = rng.choice([3, 5, 7])
        s[i] = str((int(s[i]) + rng.choice([1, -1])) % 10)
        try:
            return datetime.strptime("".join(s), "%Y%m%d").date()
        except ValueError:
            continue
    return d


@dataclass(frozen=True, slots=True)
class Feed:
    text: str  # HL7 v2, one message per block, blank-line separated
    truth: dict[str, str | None]  # MSH-10 -> true patient id (None: not the center's patient)
    planted: dict[str, str]  # MSH-10 -> what was planted ("typo", "twin", "birth date", "outsider" ...)


def _hl7(s: str) -> str:
    return s.replace("\\", "\\E\\").replace("|", "\\F\\").replace("^", "\\S\\").replace("&", "\\T\\")


def _message(ev: str, cid: str, hospital: str, when: datetime, pid3: str, family: str, given: str,
             birth: date, sex: str, zip5: str, pclass: str, visit: str, admit: datetime,
             discharge: datetime | None) -> str:  # fmt: skip
    ts = when.strftime("%Y%m%d%H%M%S")
    pv1 = ["PV1", "1", pclass, f"UNIT^1^^{hospital}"] + [""] * 15 + [visit] + [""] * 16
    pv1 += ["01" if discharge else ""] + [""] * 7 + [admit.strftime("%Y%m%d%H%M%S")]
    pv1 += [discharge.strftime("%Y%m%d%H%M%S") if discharge else ""]
    return "\r".join([
        f"MSH|^~\\&|ADT|{hospital}|CHC|CENTER|{ts}||ADT^{ev}^ADT_A01|{cid}|P|2.5.1",
        f"EVN|{ev}|{ts}",
        f"PID|1||{pid3}||{_hl7(family)}^{_hl7(given)}||{birth:%Y%m%d}|{sex}|||1 Main St^^Town^MA^{zip5}",
        "|".join(pv1),
    ])  # fmt: skip


def feed(patients: list[PatientRecord], seed: int, *, stays: int = 300, start: date = date(2024, 1, 2),
         days: int = 90, authority: str = "CENTERMRN", mrn_share: float = 0.35,
         broken: int = 2) -> Feed:  # fmt: skip
    """A feed of ``stays`` hospital stays (admit + discharge messages; ED visits as A04 + A03)."""
    rng = random.Random(f"adt-feed:{seed}")
    by_family: dict[tuple[str, date | None], list[PatientRecord]] = {}
    for p in patients:
        by_family.setdefault((p.family, p.birth_date), []).append(p)
    twins = [ps for ps in by_family.values() if len(ps) == 2]
    blocks: list[str] = []
    truth: dict[str, str | None] = {}
    planted: dict[str, str] = {}
    for s in range(stays):
        hospital = HOSPITALS[s % len(HOSPITALS)]
        what = []
        if twins and s % 12 == 0:
            p: PatientRecord | None = rng.choice(rng.choice(twins))
            what.append("twin")
        elif rng.random() < 0.1:
            p = None
            what.append("outsider")
        else:
            p = rng.choice(patients)
        if p is None:
            female = rng.random() < 0.5
            family, given = rng.choice(FAMILY), rng.choice(FEMALE if female else MALE)
            birth = date(1940, 1, 1) + timedelta(days=rng.randrange(365 * 80))
            sex, zip5, ids = ("F" if female else "M"), f"018{rng.randrange(40, 60)}", ""
        else:
            family, given, birth, sex, zip5 = p.family, p.given, p.birth_date, p.sex, p.postal_code
            ids = ""
            if rng.random() < mrn_share:
                mrn = next(v for sys, v in sorted(p.identifiers))
                ids = f"~{mrn}^^^{authority}^MR"
                what.append("mrn")
            r = rng.random()
            if r < 0.15:
                family = typo(family, rng)
                what.append("typo family")
            elif r < 0.30:
                given = typo(given, rng)
                what.append("typo given")
            elif r < 0.35:
                birth = _date_slip(birth, rng)
                what.append("birth date")
            elif r < 0.40:
                given = ACCENTED.get(given, given.upper())
                family = family.replace("'", "")
                what.append("accents/case")
            if rng.random() < 0.1:
                zip5 = "" if rng.random() < 0.5 else f"019{rng.randrange(10, 99)}"
                what.append("postal")
        pid3 = f"H{rng.randrange(10**6, 10**7)}^^^{hospital}^MR" + ids
        ed = rng.random() < 0.4
        admit = datetime.combine(start + timedelta(days=rng.randrange(days)), datetime.min.time())
        admit += timedelta(hours=rng.randrange(24), minutes=rng.randrange(60))
        discharge = admit + (
            timedelta(hours=rng.randrange(2, 20)) if ed else timedelta(days=rng.randrange(1, 7))
        )
        pclass, visit = ("E" if ed else "I"), f"V{s:06d}"
        for ev, when, dis in (("A04" if ed else "A01", admit, None), ("A03", discharge, discharge)):
            cid = f"{hospital}-{s:05d}-{ev}"
            blocks.append(_message(ev, cid, hospital, when, pid3, family, given, birth, sex, zip5,
                                   pclass, visit, admit, dis))  # fmt: skip
            truth[cid] = p.patient_id if p else None
            planted[cid] = ", ".join(what) or "clean"
    for b in range(broken):  # planted broken messages: the demo's quarantine has something to show
        at = rng.randrange(len(blocks))
        blocks.insert(
            at, blocks[at].replace("PID|1||", "PID|1|||", 1) if b % 2 == 0 else "PV1|1|I\rMSH|^~\\&|"
        )
    return Feed("\r\r".join(blocks) + "\r", truth, planted)
