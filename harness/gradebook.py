"""OUT/gradebook.csv: the class's scores as Canvas and Moodle import them
(issue 14 item 4; docs/grading.md, "Into the LMS gradebook").

Without a roster, one row per submission: ``Student`` (its name in OUT),
then the assignment's points and percent. With ``--roster FILE`` (the
gradebook export of Canvas or Moodle, or any CSV with a header naming its
students), one row per roster student in the roster's order, with the
roster's own identity columns (Canvas: Student, ID, SIS User ID, SIS Login
ID, Section; Moodle: First name, Last name, ID number, Email address, ...)
so that the LMS recognises each student, then the points and the percent.

A roster row is matched to a submission by comparing names with case,
accents, spaces and punctuation ignored: first the submission's whole name
(or its entry's, the folder or archive as handed in), then the leading
words of it (Canvas names a download ``smithjane_12345_...``, Moodle ``Jane
Smith_12345_assignsubmission_file_``), then any single word of it against
the roster's IDs. A roster row no submission matches keeps a blank score and
gets a warning line; a submission no roster row matches is listed; a match
that is not unique is not made (a warning names the candidates).
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .handin import archive_suffix

if TYPE_CHECKING:
    from .grade import Graded

GRADEBOOK = "gradebook.csv"
DEFAULT_ASSIGNMENT = "Kernel"
ROSTER_BYTES = 16 << 20  #: a roster larger than this is refused (it is not a class list)
MIN_KEY = 2  #: characters a name or ID must have to match anything
MIN_WORD = 3  #: characters one word of a submission's name needs to match an ID

#: roster headers (compared normalised) -> how the column identifies a student:
#: "last_first" (Canvas's Student: "Last, First"), "name", "first", "last", "id", "email";
#: "keep" columns are copied, not matched (an LMS may need them)
HEADERS = {
    "student": "last_first", "name": "name", "fullname": "name", "studentname": "name",
    "firstname": "first", "givenname": "first", "lastname": "last", "surname": "last", "familyname": "last",
    "id": "id", "sisuserid": "id", "sisloginid": "id", "integrationid": "id", "idnumber": "id",
    "studentid": "id", "userid": "id", "username": "id", "login": "id", "github": "id",
    "githubusername": "id", "githubid": "id",
    "emailaddress": "email", "email": "email",
    "section": "keep", "institution": "keep", "department": "keep",
}
#: the second row of a Canvas export (points possible per assignment), not a student
CANVAS_POINTS_ROW = "pointspossible"


class RosterError(Exception):
    """A roster that cannot be read (one line for the user)."""


def norm(text: str) -> str:
    """``text`` without case, accents, spaces and punctuation: how names compare."""
    decomposed = unicodedata.normalize("NFKD", text).casefold()
    return "".join(c for c in decomposed if c.isascii() and c.isalnum())


def _words(text: str) -> list[str]:
    plain = unicodedata.normalize("NFKD", text)
    return [w for w in re.split(r"[^0-9A-Za-z]+", "".join(c for c in plain if c.isascii())) if w]


@dataclass(frozen=True)
class Student:
    """One roster row: its cells and the keys it is matched by."""

    cells: dict[str, str]
    names: frozenset[str]  #: normalised name forms (first last, last first, as written)
    ids: frozenset[str]  #: normalised IDs, logins and e-mail addresses (and their local parts)

    def label(self, columns: Sequence[str]) -> str:
        return ", ".join(f"{c}={self.cells.get(c, '')}" for c in columns if self.cells.get(c, "")) or "(empty row)"


@dataclass(frozen=True)
class Roster:
    path: Path
    columns: tuple[str, ...]  #: the identity columns copied into gradebook.csv, in the roster's order
    students: tuple[Student, ...]


def _student(cells: dict[str, str], kinds: dict[str, str]) -> Student:
    names: set[str] = set()
    ids: set[str] = set()
    first = " ".join(cells[c] for c, k in kinds.items() if k == "first" and cells.get(c))
    last = " ".join(cells[c] for c, k in kinds.items() if k == "last" and cells.get(c))
    if first and last:
        names |= {norm(first + last), norm(last + first)}
    for column, kind in kinds.items():
        value = cells.get(column, "").strip()
        if not value:
            continue
        if kind == "last_first" and "," in value:
            surname, given = value.split(",", 1)
            names |= {norm(value), norm(given + surname)}
        elif kind in ("last_first", "name"):
            words = value.split()
            names |= {norm(value), norm(" ".join(words[-1:] + words[:-1]))}
        elif kind == "id":
            ids.add(norm(value))
        elif kind == "email":
            ids |= {norm(value), norm(value.split("@", 1)[0])}
    return Student(cells, frozenset(n for n in names if len(n) >= MIN_KEY),
                   frozenset(i for i in ids if len(i) >= MIN_KEY))


def read_roster(path: Path) -> Roster:
    """Read a roster CSV (UTF-8, with or without a BOM; comma, semicolon or
    tab separated); RosterError naming the problem."""
    try:
        raw = Path(path).read_bytes()
    except OSError as e:
        raise RosterError(f"--roster {path}: {e.strerror}") from None
    if len(raw) > ROSTER_BYTES:
        raise RosterError(f"--roster {path}: larger than {ROSTER_BYTES >> 20} MiB: not a class list")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise RosterError(f"--roster {path}: not UTF-8 text (save it as CSV UTF-8)") from None
    first = text.split("\n", 1)[0]
    delimiter = max(",;\t", key=first.count)
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    if not rows:
        raise RosterError(f"--roster {path}: empty")
    header = [h.strip() for h in rows[0]]
    kinds = {h: HEADERS[norm(h)] for h in header if norm(h) in HEADERS}
    if not any(k != "keep" for k in kinds.values()):
        raise RosterError(f"--roster {path}: no column names a student (want e.g. Student, ID, SIS User ID, "
                          f"First name, Last name, Email address, ID number, Username); its header is "
                          f"{', '.join(header)[:200]}")
    students = []
    for row in rows[1:]:
        cells = {h: (row[i].strip() if i < len(row) else "") for i, h in enumerate(header) if h in kinds}
        if not any(cells.values()):
            continue
        if any(norm(v) == CANVAS_POINTS_ROW for v in cells.values()):
            continue
        students.append(_student(cells, kinds))
    if not students:
        raise RosterError(f"--roster {path}: no student rows")
    return Roster(Path(path), tuple(h for h in header if h in kinds), tuple(students))


def candidates(g: Graded) -> list[tuple[set[str], set[str]]]:
    """A submission's match keys by level, best first: (name keys, ID keys)."""
    texts = {g.sub.name}
    if g.sub.entry:
        entry = g.sub.entry
        texts.add(entry[: len(entry) - len(archive_suffix(entry))] or entry)
    whole = {norm(t) for t in texts}
    prefixes: set[str] = set()
    words: set[str] = set()
    for t in texts:
        w = _words(t)
        prefixes |= {norm("".join(w[:k])) for k in range(1, len(w))}
        words |= {norm(x) for x in w if len(x) >= MIN_WORD}
    return [(whole, whole), (prefixes, prefixes), (set(), words)]


def match(graded: Sequence[Graded], roster: Roster) -> tuple[dict[int, Graded], list[str], list[str]]:
    """Roster row index -> its submission; the warning lines; the names of
    the submissions no roster row matched."""
    warnings: list[str] = []
    claimed: dict[int, list[Graded]] = {}
    unmatched: list[str] = []
    for g in graded:
        found: set[int] = set()
        for names, ids in candidates(g):
            found = {i for i, s in enumerate(roster.students) if s.names & names or s.ids & ids}
            if found:
                break
        if len(found) == 1:
            claimed.setdefault(found.pop(), []).append(g)
        elif found:
            rows = "; ".join(roster.students[i].label(roster.columns) for i in sorted(found))
            warnings.append(f"submission {g.sub.name} matches {len(found)} roster rows ({rows}): not entered")
            unmatched.append(g.sub.name)
        else:
            unmatched.append(g.sub.name)
    matched: dict[int, Graded] = {}
    for i, subs in sorted(claimed.items()):
        if len(subs) == 1:
            matched[i] = subs[0]
            continue
        names = ", ".join(sorted(s.sub.name for s in subs))
        warnings.append(f"roster row {roster.students[i].label(roster.columns)} matches submissions {names}: "
                        f"left blank (rename the folders or grade one of them)")
        unmatched += [s.sub.name for s in subs]
    for i, s in enumerate(roster.students):
        if i not in matched and i not in claimed:
            warnings.append(f"roster row {s.label(roster.columns)}: no submission matches it; its score is blank")
    if unmatched:
        warnings.append(f"{len(unmatched)} submission(s) on no roster row: {', '.join(sorted(unmatched))}")
    return matched, warnings, sorted(unmatched)


def _points(g: Graded | None) -> list[str]:
    if g is None or g.not_graded:
        return ["", ""]
    return [f"{g.score:g}", f"{g.percent:g}"]


@dataclass
class Gradebook:
    header: list[str]
    rows: list[list[str]]
    warnings: list[str] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)  #: submissions on no roster row

    def csv_text(self) -> str:
        text = io.StringIO(newline="")
        w = csv.writer(text, lineterminator="\r\n")
        w.writerow(self.header)
        w.writerows(self.rows)
        return text.getvalue()


def build(graded: Sequence[Graded], roster: Roster | None = None,
          assignment: str = DEFAULT_ASSIGNMENT) -> Gradebook:
    """The gradebook of these submissions: a submission not graded (an
    infrastructure fault) has a blank score, not 0."""
    scores = [assignment, f"{assignment} (percent)"]
    maxima = sorted({g.max_score for g in graded if not g.not_graded})
    mixed = ([f"the points are out of different maxima ({', '.join(f'{m:g}' for m in maxima)}: markers and "
              f"EL0 judge different scenarios); the percent column compares them"] if len(maxima) > 1 else [])
    if roster is None:
        rows = [[g.sub.name, *_points(g)] for g in sorted(graded, key=lambda g: g.sub.name)]
        warnings = [f"{g.sub.name}: not graded, left blank" for g in graded if g.not_graded]
        return Gradebook(["Student", *scores], rows, warnings + mixed)
    matched, warnings, unmatched = match(graded, roster)
    rows = [[s.cells.get(c, "") for c in roster.columns] + _points(matched.get(i))
            for i, s in enumerate(roster.students)]
    warnings += [f"{g.sub.name}: not graded, left blank" for g in matched.values() if g.not_graded]
    return Gradebook([*roster.columns, *scores], rows, warnings + mixed, unmatched)
