"""The learner's workspace: `<workspace>/labNN/`. Nothing here is ever overwritten without a backup, nothing is
read or written through a link that leaves the workspace, and every file the kit reads is checked first
(a folder, a link out, too big, not UTF-8 text) so a malformed one gets one line naming it."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from securecart_lab.errors import LabError, WorkspaceFileError
from securecart_lab.labs.model import Lab

# Learner files are small hand-written documents. AWS caps a state machine definition at 1 MiB (1,048,576 characters,
# checked by lab 1's deploy on what it sends) and a CloudFormation template at 1 MB; nothing a lab reads needs 2 MiB.
MAX_FILE_BYTES = 2 * 1024 * 1024
_BOM = b"\xef\xbb\xbf"


def lab_dir(workspace: Path, lab: Lab) -> Path:
    return workspace / lab.key


def check_root(workspace: Path) -> None:
    """The workspace setting must name a folder (or nothing yet): said before anything starts."""
    if workspace.exists() and not workspace.is_dir():
        raise LabError(f"The workspace {workspace} is a file, not a folder.",
                       "Point --workspace (or SECURECART_WORKSPACE) at a folder, e.g. ./securecart-workspace.")
    existing = next((p for p in [workspace, *workspace.absolute().parents] if p.exists()), None)
    if existing is None or not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise LabError(f"The workspace {workspace} cannot be created or written ({existing} is not a folder you can write to).",
                       "Point --workspace (or SECURECART_WORKSPACE) at a folder you can write to.")


def inside(path: Path, root: Path) -> Path:
    """`path`, refusing it when it (or a link on the way, even a dangling one) leads outside `root`."""
    real_root = Path(os.path.realpath(root))
    real = Path(os.path.realpath(path))
    if real != real_root and real_root not in real.parents:
        raise WorkspaceFileError(path, f"is a link to {real}, outside {root}; the kit does not follow links out of "
                                       "the workspace",
                                 hint="Replace the link with a regular file (or copy the file in).")
    return path


def read_text(path: Path, root: Path | None = None, limit: int = MAX_FILE_BYTES) -> str:
    """A learner's (or a lab's) text file, checked: inside `root`, a regular file, at most `limit` bytes, UTF-8."""
    if root is not None:
        inside(path, root)
    if path.is_dir():
        raise WorkspaceFileError(path, "is a folder; a file was expected here",
                                 hint="Remove or rename the folder; reset puts the starter file back.")
    if path.exists() and not path.is_file():
        raise WorkspaceFileError(path, "is not a regular file (a device or a pipe?)", hint="Put a regular text file here.")
    try:
        with open(path, "rb") as fh:
            data = fh.read(limit + 1)
    except FileNotFoundError:
        raise WorkspaceFileError(path, "file not found", hint="Run \"securecart-lab reset N\" to get the starter files back.")
    except OSError as exc:
        raise WorkspaceFileError(path, f"cannot be read: {exc.strerror}")
    if len(data) > limit:
        raise WorkspaceFileError(path, f"is larger than {limit:,} bytes, the most the kit reads from a lab file",
                                 hint="Lab files are small documents: check that the right file was saved here.")
    if data.startswith(_BOM):
        raise WorkspaceFileError(path, "starts with a UTF-8 byte order mark (BOM)",
                                 hint="Save it as UTF-8 without BOM (most editors: \"UTF-8\", not \"UTF-8 with BOM\").")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise WorkspaceFileError(path, f"is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})", line=line,
                                 hint="Save it as UTF-8 text; is it the file you meant to save here?")


def preflight(workspace: Path, lab: Lab) -> None:
    """What start, reset and solve will write is usable, said before the engine starts."""
    check_root(workspace)
    target = lab_dir(workspace, lab)
    if target.exists() or target.is_symlink():
        inside(target, workspace)
        if not target.is_dir():
            raise WorkspaceFileError(target, "is a file where the lab's folder belongs",
                                     hint="Move it away, then run the command again.")
        for name in [*lab.workspace_files, "README.md", "solution"]:
            inside(target / name, target)


def check_files(source: Path, lab: Lab) -> None:
    """Every workspace file of `lab` in `source` is readable text, not absurdly nested, before anything is deployed.
    (Syntax is the lab's to judge: it names the line and what is wrong in its own terms.)"""
    for name in lab.workspace_files:
        text = read_text(source / name, source)
        depth = max_depth(text)
        if depth > MAX_DEPTH:
            raise WorkspaceFileError(source / name, f"is nested {depth:,} levels deep (brackets [ or {{); lab files "
                                                    f"need a handful, the kit reads at most {MAX_DEPTH}",
                                     hint="Fix the file and deploy again; nothing was changed.")


MAX_DEPTH = 200
_STRINGS = re.compile(r'"(?:[^"\\\n]|\\.)*"')
_BRACKETS = re.compile(r"[\[\]{}]")


def max_depth(text: str) -> int:
    """How deep [ and { nest outside double-quoted strings (JSON, and YAML's flow style): parsers recurse per level."""
    depth = deepest = 0
    for bracket in _BRACKETS.findall(_STRINGS.sub("", text)):
        depth = depth + 1 if bracket in "[{" else max(depth - 1, 0)
        deepest = max(deepest, depth)
    return deepest


def _writable_target(dest: Path, root: Path) -> None:
    inside(dest, root)
    if dest.is_dir() and not dest.is_symlink():
        raise WorkspaceFileError(dest, "is a folder where the kit writes a file",
                                 hint="Move the folder away, then run the command again.")


def copy_starter(workspace: Path, lab: Lab) -> list[Path]:
    """Copy starter files that are not there yet; returns the files created. Existing files are left alone."""
    check_root(workspace)
    target = lab_dir(workspace, lab)
    target.mkdir(parents=True, exist_ok=True)
    inside(target, workspace)
    created = []
    for name in lab.workspace_files:
        dest = target / name
        _writable_target(dest, target)
        if not dest.exists():
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(lab.starter_dir / name, dest)
            created.append(dest)
    return created


@dataclass(frozen=True)
class Instructions:
    """Where the lab's README is in the workspace, and what start did to it."""

    path: Path
    written_sha256: str | None  # of the copy the kit last wrote there (None: unknown, the copy predates the record)
    refreshed: bool = False  # an unedited copy replaced by the kit's newer README
    newer: Path | None = None  # the kit's newer README, beside a copy the learner has edited


KIT_README = "README.kit.md"


def copy_instructions(workspace: Path, lab: Lab, written_sha256: str | None = None) -> Instructions:
    """The lab's README beside the learner's files (`labNN/README.md`), where they work. When the kit's README has
    changed (an upgraded kit), a copy the learner has not edited (it is still what the kit wrote: `written_sha256`)
    is replaced by the new one; an edited copy is never overwritten: the new README goes beside it (README.kit.md)."""
    root = lab_dir(workspace, lab)
    dest = root / "README.md"
    _writable_target(dest, root)
    kit = lab.readme.read_bytes()
    kit_sha = hashlib.sha256(kit).hexdigest()
    if not dest.exists():
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(kit)
        return Instructions(dest, kit_sha)
    try:
        current = hashlib.sha256(dest.read_bytes()).hexdigest()
    except OSError:  # not a regular file: left as it is (the learner's), as before
        return Instructions(dest, written_sha256)
    if current == kit_sha:
        return Instructions(dest, kit_sha)
    if written_sha256 is None or written_sha256 == kit_sha:
        return Instructions(dest, written_sha256)  # the learner's edits of the kit's current README (or unknown)
    if current == written_sha256:
        dest.write_bytes(kit)
        return Instructions(dest, kit_sha, refreshed=True)
    newer = root / KIT_README
    _writable_target(newer, root)
    newer.write_bytes(kit)
    return Instructions(dest, written_sha256, newer=newer)


REFERENCE_DIR = "reference"


def reference_sources(lab: Lab) -> dict[str, Path]:
    """"functions/validate_order.py" -> the kit's file, for every reference the lab declares."""
    from securecart_lab import paths

    found = {}
    for folder, pattern in lab.references:
        base, glob = (paths.seed_dir(), pattern.removeprefix("seed/")) if pattern.startswith("seed/") else (lab.path, pattern)
        for source in sorted(base.glob(glob)):
            if source.is_file():
                found[f"{folder}/{source.name}"] = source
    return found


def copy_references(workspace: Path, lab: Lab) -> list[Path]:
    """Read-only copies of what the README links (labNN/reference/...), refreshed from the kit at every start: they
    are the kit's, not the learner's (edits belong in the learner's own files)."""
    root = lab_dir(workspace, lab)
    written = []
    for relative, source in reference_sources(lab).items():
        dest = root / REFERENCE_DIR / relative
        _writable_target(dest, root)
        dest.parent.mkdir(parents=True, exist_ok=True)
        if dest.exists():
            if dest.read_bytes() == source.read_bytes():
                continue
            dest.chmod(0o644)
        shutil.copyfile(source, dest)
        dest.chmod(0o444)
        written.append(dest)
    return written


def _backup_folder(source: Path) -> Path:
    backups = inside(source / ".backups", source)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    n = 1
    while True:
        folder = backups / (stamp if n == 1 else f"{stamp}-{n}")
        try:
            folder.mkdir(parents=True)
            return folder
        except FileExistsError:
            n += 1


def backup(workspace: Path, lab: Lab) -> Path | None:
    """Copy the learner's current files to `labNN/.backups/<timestamp>/`; returns that folder (None if nothing to save)."""
    source = lab_dir(workspace, lab)
    present = [source / n for n in lab.workspace_files if (source / n).exists() or (source / n).is_symlink()]
    if not present:
        return None
    for path in present:
        inside(path, source)
    folder = _backup_folder(source)
    for path in present:
        dest = folder / path.relative_to(source)
        dest.parent.mkdir(parents=True, exist_ok=True)
        if path.is_dir():
            shutil.copytree(path, dest, symlinks=True)
        else:
            shutil.copy2(path, dest)
    return folder


def reset(workspace: Path, lab: Lab) -> Path | None:
    """Back up, then put the starter files back."""
    check_root(workspace)
    target = lab_dir(workspace, lab)
    inside(target, workspace)
    for name in lab.workspace_files:
        inside(target / name, target)
    saved = backup(workspace, lab)
    for name in lab.workspace_files:
        dest = target / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        if dest.is_dir() and not dest.is_symlink():
            shutil.rmtree(dest)  # backed up above
        shutil.copyfile(lab.starter_dir / name, dest)
    return saved


def save_solution_copy(workspace: Path, lab: Lab) -> tuple[Path, Path | None]:
    """Put the reference solution in `labNN/solution/` to read; files the learner edited there are backed up first
    (to `labNN/.backups/<timestamp>/solution/`). Returns the copy and the backup (None when nothing was edited)."""
    source = lab_dir(workspace, lab)
    copy = source / "solution"
    check_root(workspace)
    inside(source, workspace)
    inside(copy, source)
    changed = []
    for path in sorted(lab.solution_dir.rglob("*")):
        if path.is_dir():
            continue
        dest = copy / path.relative_to(lab.solution_dir)
        inside(dest, source)
        if dest.is_dir() and not dest.is_symlink():
            raise WorkspaceFileError(dest, "is a folder where the kit writes a file",
                                     hint="Move the folder away, then run the command again.")
        if dest.exists() and dest.read_bytes() != path.read_bytes():
            changed.append(dest)
    saved = None
    if changed:
        saved = _backup_folder(source)
        for dest in changed:
            keep = saved / dest.relative_to(source)
            keep.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(dest, keep)
    for path in sorted(lab.solution_dir.rglob("*")):
        if path.is_file():
            dest = copy / path.relative_to(lab.solution_dir)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, dest)
    return copy, saved


def fingerprint(folder: Path, lab: Lab) -> str:
    """A hash of the lab's files in `folder`, to tell whether the workspace changed since the last deploy."""
    digest = hashlib.sha256()
    for name in lab.workspace_files:
        path = folder / name
        digest.update(name.encode())
        try:
            inside(path, folder)
            digest.update(path.read_bytes() if path.is_file() and path.stat().st_size <= MAX_FILE_BYTES else b"<missing>")
        except (OSError, LabError):
            digest.update(b"<unreadable>")
    return digest.hexdigest()[:16]
