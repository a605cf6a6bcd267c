"""Learners' submissions: find them, unpack archives safely, and copy the lab files a grade may read.

A submission is a workspace as `start` creates it (`labNN/` folders), a checkout holding one (at its root or
in `securecart-workspace/`), or a .zip/.tar.gz of either. A folder that is none of these but holds
submissions (folders or archives) is a class: each entry is graded.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from securecart_lab.errors import LabError

LAB_DIR = re.compile(r"^lab\d{2}$")
ARCHIVES = (".zip", ".tar.gz", ".tgz", ".tar")
MAX_BYTES = 100 * 1024 * 1024  # a workspace is a few small text files; anything near this is not one
MAX_FILES = 5000
SKIPPED_DIRS = {".backups", "solution", ".git", "__pycache__"}  # backups, `solve`'s copy to read, VCS data


class SubmissionError(LabError):
    """A submission the grader refuses to read (unsafe archive, links leaving it, too big)."""


@dataclass(frozen=True)
class Submission:
    id: str
    path: Path  # what the instructor named: a folder or an archive


def _archive_stem(path: Path) -> str | None:
    name = path.name
    for ext in ARCHIVES:
        if name.lower().endswith(ext) and len(name) > len(ext):
            return name[: -len(ext)]
    return None


def workspace_root(folder: Path) -> Path | None:
    """The folder holding `labNN/` folders: `folder` itself or its `securecart-workspace/`; None if neither."""
    for candidate in (folder, folder / "securecart-workspace"):
        if candidate.is_dir() and not candidate.is_symlink() and any(
            LAB_DIR.match(p.name) and p.is_dir() for p in candidate.iterdir()
        ):
            return candidate
    return None


def discover(paths: list[Path]) -> list[Submission]:
    """The submissions the instructor named, each with a unique id (its folder or archive name)."""
    found: list[Submission] = []
    for path in paths:
        if not path.exists():
            raise LabError(f"No submission at {path}: expected a workspace folder, a .zip or .tar.gz of one, "
                           "or a folder of them.", "Check the path.")
        if path.is_file():
            if _archive_stem(path) is None:
                raise LabError(f"{path} is not a submission: expected a folder, a .zip or a .tar.gz.")
            found.append(Submission(_archive_stem(path), path))
        elif workspace_root(path) is not None:
            found.append(Submission(path.resolve().name, path))
        else:
            entries = sorted(p for p in path.iterdir() if not p.name.startswith(".")
                             and (p.is_dir() or _archive_stem(p) is not None))
            # A class folder: every entry is a learner's (one without lab folders gets a row saying so), but a
            # folder none of whose entries is a workspace or an archive is not a class.
            if not any(p.is_file() or workspace_root(p) is not None for p in entries):
                raise LabError(f"{path} holds no submission: expected labNN/ folders (as \"securecart-lab start\" "
                               "creates them), or folders and archives of learners' workspaces.")
            found += [Submission(_archive_stem(p) or p.name, p) for p in entries]
    return _unique(found)


def _unique(subs: list[Submission]) -> list[Submission]:
    seen: dict[str, int] = {}
    out = []
    for sub in subs:
        safe = re.sub(r"[^A-Za-z0-9._-]+", "-", sub.id).strip("-.") or "submission"
        seen[safe] = seen.get(safe, 0) + 1
        out.append(Submission(safe if seen[safe] == 1 else f"{safe}-{seen[safe]}", sub.path))
    return out


def extract(archive: Path, dest: Path) -> Path:
    """Unpack an archive into `dest`, refusing absolute names, `..`, links leaving `dest`, devices, and more than
    MAX_BYTES or MAX_FILES. Returns `dest`."""
    dest.mkdir(parents=True, exist_ok=True)
    if archive.name.lower().endswith(".zip"):
        _extract_zip(archive, dest)
    else:
        _extract_tar(archive, dest)
    return dest


def _checked_name(archive: Path, name: str) -> PurePosixPath:
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        raise SubmissionError(f"{archive.name}: refused: member {name!r} has an absolute path.")
    if ".." in path.parts:
        raise SubmissionError(f"{archive.name}: refused: member {name!r} leaves the extraction folder (..).")
    return path


def _bounded(archive: Path, count: int, total: int) -> None:
    if count > MAX_FILES:
        raise SubmissionError(f"{archive.name}: refused: more than {MAX_FILES} files.")
    if total > MAX_BYTES:
        raise SubmissionError(f"{archive.name}: refused: more than {MAX_BYTES // (1024 * 1024)} MB unpacked.")


def _extract_zip(archive: Path, dest: Path) -> None:
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        raise SubmissionError(f"{archive.name}: not a readable zip archive ({exc}).")
    with zf:
        infos = zf.infolist()
        total = 0
        for info in infos:
            _checked_name(archive, info.filename)
            if stat.S_ISLNK(info.external_attr >> 16):
                raise SubmissionError(f"{archive.name}: refused: member {info.filename!r} is a link.")
            total += info.file_size
        _bounded(archive, len(infos), total)
        written = 0
        for info in infos:
            target = dest / _checked_name(archive, info.filename)
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(target, "wb") as out:
                while chunk := src.read(1 << 16):
                    written += len(chunk)  # the declared sizes may lie
                    _bounded(archive, 0, written)
                    out.write(chunk)


def _extract_tar(archive: Path, dest: Path) -> None:
    try:
        tf = tarfile.open(archive)
    except (tarfile.TarError, OSError) as exc:
        raise SubmissionError(f"{archive.name}: not a readable tar archive ({exc}).")
    with tf:
        try:
            members = tf.getmembers()
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise SubmissionError(f"{archive.name}: damaged tar archive ({exc}).")
        for m in members:
            path = _checked_name(archive, m.name)
            if m.issym() or m.islnk():
                # A symbolic link is relative to its folder, a hard link to the archive's top.
                target = os.path.normpath(str(path.parent / m.linkname) if m.issym() else m.linkname)
                if m.linkname.startswith("/") or target == ".." or target.startswith("../"):
                    raise SubmissionError(f"{archive.name}: refused: link {m.name!r} -> {m.linkname!r} "
                                          "leaves the extraction folder.")
            elif not (m.isfile() or m.isdir()):
                raise SubmissionError(f"{archive.name}: refused: member {m.name!r} is not a file or folder.")
        _bounded(archive, len(members), sum(m.size for m in members if m.isfile()))
        try:
            # The standard library's own guard behind ours, where this Python has it (3.11.4+).
            tf.extractall(dest, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
        except (tarfile.TarError, OSError) as exc:
            raise SubmissionError(f"{archive.name}: refused: {exc}")


def copy_workspace(source: Path, dest: Path) -> dict[str, str]:
    """Copy the `labNN/` folders of the workspace under `source` to `dest` (regular files only; a link is
    followed only when it stays inside the submission). Returns {"labNN/file": sha256} of what was copied."""
    root = workspace_root(source)
    if root is None:
        raise SubmissionError(f"{source.name}: no labNN/ folder (expected a workspace as \"securecart-lab start\" "
                              "creates it, at the top or in securecart-workspace/).")
    top = source.resolve()
    hashes: dict[str, str] = {}
    total = 0
    dest.mkdir(parents=True, exist_ok=True)
    for lab_dir in sorted(p for p in root.iterdir() if LAB_DIR.match(p.name) and p.is_dir()):
        for dirpath, dirnames, filenames in os.walk(lab_dir):
            dirnames[:] = sorted(d for d in dirnames if d not in SKIPPED_DIRS)
            for name in sorted(filenames):
                path = Path(dirpath) / name
                real = path.resolve()
                if not real.is_relative_to(top):
                    raise SubmissionError(f"{source.name}: refused: {path.relative_to(root)} links outside the "
                                          "submission.")
                if not real.is_file():
                    continue
                rel = path.relative_to(root).as_posix()
                data = real.read_bytes()
                total += len(data)
                _bounded(source, len(hashes), total)
                target = dest / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
                hashes[rel] = hashlib.sha256(data).hexdigest()
    return hashes


def prepare(sub: Submission, scratch: Path, workspace: Path) -> dict[str, str]:
    """The submission's lab files, copied into `workspace` (an archive is unpacked in `scratch` first)."""
    source = sub.path
    if source.is_file():
        unpacked = extract(source, scratch / "unpacked")
        entries = [p for p in unpacked.iterdir() if not p.name.startswith(".") and p.name != "__MACOSX"]
        # An archive of a folder holds that folder: grade what is inside it.
        source = entries[0] if workspace_root(unpacked) is None and len(entries) == 1 and entries[0].is_dir() \
            and not entries[0].is_symlink() else unpacked
    return copy_workspace(source, workspace)
