"""Hand-ins as students make them (docs/grading.md, "What a submission is").

An entry of the class folder is resolved to what is judged:

- a ``.zip``, ``.tar.gz``, ``.tgz`` or ``.tar`` file is unpacked SAFELY into
  a private folder (under OUT): no absolute name, no ``..``, no link,
  device or fifo is created or followed (such members are skipped and
  counted), and the whole archive is bounded in bytes (UNPACK_BYTES) and
  members (UNPACK_MEMBERS): past either, the hand-in is one clear problem
  line ("a zip bomb?"), never a full disk. What it held is then judged as a
  folder;
- a folder is descended into while it has no Makefile, no image and
  exactly one visible sub-folder (hidden entries and ``__MACOSX`` do not
  count), at most DESCEND_DEPTH levels (``name/lesson05/...``);
- a folder with no Makefile that holds ``kernel8.img``, or exactly one
  ``*.img``, is that image;
- anything else is judged as it is (a folder: a source tree; a file: an
  image).

Names: each entry's name is cleaned to ``[A-Za-z0-9_.-]`` (an archive's
without its suffix); entries whose cleaned names collide (``Leo Smith``,
``Leo_Smith``) never merge: every one of them whose name changed in the
cleaning gets ``-<8 hex digits of sha256(original name)>``.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
import tarfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

ARCHIVES = (".tar.gz", ".tgz", ".tar", ".zip")  #: suffixes unpacked (longest first)
UNPACK_BYTES = 64 << 20  #: bytes an archive may unpack to, in all
UNPACK_MEMBERS = 10_000  #: members an archive may hold
DESCEND_DEPTH = 8  #: single-folder levels descended into
IGNORED = ("__MACOSX",)  #: folders an archiver adds beside the content
IMAGE = "kernel8.img"
HANDIN_FOLDER = "handin"  #: OUT/<name>/handin: where an archive is unpacked
_CHUNK = 1 << 16


class HandinError(Exception):
    """A hand-in that cannot be turned into something to judge (one line)."""


@dataclass(frozen=True)
class Handin:
    """What one entry of the class folder is judged as."""

    entry: str  #: the entry's own name in the class folder
    path: Path  #: what is judged: a tree (folder) or an image (file)
    kind: str  #: "tree" or "image"
    inside: str = ""  #: ``path`` relative to the hand-in ("" when it is the entry itself)
    problem: str = ""  #: set: it cannot be judged (this line is its 0's reason)
    note: str = ""  #: e.g. the unsafe members an archive had, skipped


def archive_suffix(name: str) -> str:
    """The archive suffix of ``name`` ("" if it is none of ARCHIVES)."""
    lower = name.lower()
    return next((s for s in ARCHIVES if lower.endswith(s)), "")


def clean_name(entry: str) -> str:
    """An entry's name as a folder name of OUT (archive suffix dropped)."""
    stem = entry[: len(entry) - len(archive_suffix(entry))] or entry
    return re.sub(r"[^A-Za-z0-9_.-]", "_", stem)


def unique_names(entries: list[str]) -> dict[str, str]:
    """Entry -> its name in OUT, distinct for distinct entries (module docstring)."""
    cleaned = {e: clean_name(e) for e in entries}
    count: dict[str, int] = {}
    for name in cleaned.values():
        count[name] = count.get(name, 0) + 1
    names: dict[str, str] = {}
    for entry, name in cleaned.items():
        if count[name] > 1 and name != entry:
            name = f"{name}-{hashlib.sha256(entry.encode('utf-8', 'surrogateescape')).hexdigest()[:8]}"
        names[entry] = name
    taken: dict[str, str] = {}
    for entry in sorted(names):  # a suffixed name that meets another entry's: a longer suffix
        name = names[entry]
        if name in taken:
            name = f"{clean_name(entry)}-{hashlib.sha256(entry.encode('utf-8', 'surrogateescape')).hexdigest()[:16]}"
            names[entry] = name
        taken[name] = entry
    return names


def visible(folder: Path) -> list[Path]:
    """The entries of ``folder`` a student meant: no hidden ones, no __MACOSX."""
    try:
        return sorted(p for p in folder.iterdir() if not p.name.startswith(".") and p.name not in IGNORED)
    except OSError:
        return []


def _has_makefile(folder: Path) -> bool:
    return (folder / "Makefile").is_file() or (folder / "makefile").is_file()


def lone_image(folder: Path) -> Path | None:
    """The image a folder without a Makefile holds: kernel8.img, else its only *.img."""
    files = [p for p in visible(folder) if p.is_file() and not p.is_symlink()]
    named = [p for p in files if p.name == IMAGE]
    images = named or [p for p in files if p.suffix.lower() == ".img"]
    return images[0] if len(images) == 1 else None


def resolve_folder(folder: Path) -> tuple[Path, str]:
    """(what to judge in ``folder``, "tree" or "image"), descending single folders."""
    for _ in range(DESCEND_DEPTH + 1):
        if _has_makefile(folder):
            return folder, "tree"
        image = lone_image(folder)
        if image is not None:
            return image, "image"
        folders = [p for p in visible(folder) if p.is_dir() and not p.is_symlink()]
        if len(folders) == 1:  # a wrapping folder (loose notes beside it do not count)
            folder = folders[0]
            continue
        break
    return folder, "tree"


# --- unpacking -----------------------------------------------------------------

def _member_parts(name: str) -> tuple[str, ...] | None:
    """A member name's parts, or None if it is unsafe (absolute, ``..``, a drive)."""
    name = name.replace("\\", "/")
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        return None
    parts = tuple(p for p in PurePosixPath(name).parts if p not in ("", "."))
    if not parts or ".." in parts or any("\0" in p for p in parts):
        return None
    return parts


class _Unpacker:
    """Writes members under ``into``: regular files and folders only, each
    created fresh (O_EXCL|O_NOFOLLOW; no link exists under ``into`` to
    follow), within the byte and member bounds."""

    def __init__(self, into: Path, label: str) -> None:
        self.into, self.label = into, label
        self.members = self.bytes = 0
        self.skipped: list[str] = []

    def count(self, name: str, size: int = 0) -> None:
        self.members += 1
        if self.members > UNPACK_MEMBERS:
            raise HandinError(f"{self.label}: the archive has more than {UNPACK_MEMBERS} members "
                              f"(an archive bomb?): not unpacked, not judged")
        self.add_bytes(size)

    def add_bytes(self, size: int) -> None:
        self.bytes += size
        if self.bytes > UNPACK_BYTES:
            raise HandinError(f"{self.label}: the archive unpacks to more than {UNPACK_BYTES >> 20} MiB "
                              f"(a zip bomb?): not unpacked, not judged")

    def skip(self, name: str, why: str) -> None:
        self.skipped.append(f"{name!r} ({why})")

    def folder(self, parts: tuple[str, ...]) -> Path:
        path = self.into
        for part in parts:
            path = path / part
            try:
                os.mkdir(path, 0o755)
            except FileExistsError:
                if path.is_symlink() or not path.is_dir():
                    raise HandinError(f"{self.label}: member {'/'.join(parts)!r} crosses a file") from None
        return path

    def file(self, parts: tuple[str, ...], source, executable: bool, name: str) -> None:  # noqa: ANN001
        parent = self.folder(parts[:-1])
        target = parent / parts[-1]
        try:
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW,
                         0o755 if executable else 0o644)
        except FileExistsError:
            self.skip(name, "a second member of that name")
            return
        with os.fdopen(fd, "wb") as out:
            while chunk := source.read(_CHUNK):
                self.add_bytes(len(chunk))  # the bytes really written, whatever the header claims
                out.write(chunk)

    def note(self) -> str:
        if not self.skipped:
            return ""
        shown = ", ".join(self.skipped[:5]) + (" ..." if len(self.skipped) > 5 else "")
        return f"{len(self.skipped)} unsafe archive member(s) skipped: {shown}"


def _unpack_zip(archive: Path, u: _Unpacker) -> None:
    with zipfile.ZipFile(archive) as z:
        infos = z.infolist()
        if len(infos) > UNPACK_MEMBERS:
            u.members = UNPACK_MEMBERS
            u.count("")  # raises, naming the bound
        if sum(i.file_size for i in infos) > UNPACK_BYTES:
            u.add_bytes(UNPACK_BYTES + 1)
        for info in infos:
            u.count(info.filename)
            parts = _member_parts(info.filename)
            mode = info.external_attr >> 16
            if parts is None:
                u.skip(info.filename, "a name outside the folder")
            elif info.is_dir():
                u.folder(parts)
            elif mode and not stat.S_ISREG(mode):
                u.skip(info.filename, "a link or special file")
            else:
                with z.open(info) as source:
                    u.file(parts, source, bool(mode & 0o100), info.filename)


def _unpack_tar(archive: Path, u: _Unpacker) -> None:
    with tarfile.open(archive, "r:*") as tar:
        while (member := tar.next()) is not None:
            u.count(member.name, member.size if member.isfile() else 0)
            parts = _member_parts(member.name)
            if parts is None:
                u.skip(member.name, "a name outside the folder")
            elif member.isdir():
                u.folder(parts)
            elif not member.isfile():
                u.skip(member.name, "a link or special file")
            else:
                source = tar.extractfile(member)
                if source is not None:
                    u.bytes -= member.size  # counted again as written
                    u.file(parts, source, bool(member.mode & 0o100), member.name)


def unpack(archive: Path, into: Path, label: str) -> str:
    """Unpack ``archive`` into ``into`` (emptied first); return a note on the
    skipped members. HandinError (one line; ``into`` removed) if it cannot
    be read or exceeds a bound."""
    if into.is_symlink() or into.is_file():
        into.unlink()
    elif into.exists():
        shutil.rmtree(into)
    into.mkdir(parents=True)
    u = _Unpacker(into, label)
    try:
        if archive_suffix(archive.name) == ".zip":
            _unpack_zip(archive, u)
        else:
            _unpack_tar(archive, u)
    except HandinError:
        shutil.rmtree(into, ignore_errors=True)
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, tarfile.TarError, zlib.error, EOFError,
            RuntimeError, NotImplementedError, ValueError, OSError) as e:
        shutil.rmtree(into, ignore_errors=True)
        raise HandinError(f"{label}: the archive cannot be unpacked ({type(e).__name__}: "
                          f"{str(e)[:200] or 'no detail'}): not judged") from None
    return u.note()


def resolve(entry: Path, unpack_into: Path | None) -> Handin:
    """What the class folder's ``entry`` is judged as (module docstring).
    ``unpack_into``: the private folder an archive is unpacked into."""
    if entry.is_file() and archive_suffix(entry.name):
        if unpack_into is None:
            return Handin(entry.name, entry, "image", problem=f"{entry.name}: an archive, and no "
                          f"folder to unpack it into")
        try:
            note = unpack(entry, unpack_into, entry.name)
        except HandinError as e:
            return Handin(entry.name, entry, "image", problem=str(e))
        if not visible(unpack_into):
            return Handin(entry.name, entry, "image", problem=f"{entry.name}: the archive holds "
                          f"nothing to judge", note=note)
        path, kind = resolve_folder(unpack_into)
        rel = path.relative_to(unpack_into).as_posix()
        inside = entry.name if rel == "." else f"{entry.name}/{rel}"
        return Handin(entry.name, path, kind, inside, note=note)
    if entry.is_dir():
        path, kind = resolve_folder(entry)
        return Handin(entry.name, path, kind, str(path.relative_to(entry)) if path != entry else "")
    return Handin(entry.name, entry, "image")
