"""The learner's workspace: `<workspace>/labNN/`. Nothing here is ever overwritten without a backup."""

from __future__ import annotations

import hashlib
import shutil
import time
from pathlib import Path

from securecart_lab.labs.model import Lab


def lab_dir(workspace: Path, lab: Lab) -> Path:
    return workspace / lab.key


def copy_starter(workspace: Path, lab: Lab) -> list[Path]:
    """Copy starter files that are not there yet; returns the files created. Existing files are left alone."""
    target = lab_dir(workspace, lab)
    target.mkdir(parents=True, exist_ok=True)
    created = []
    for name in lab.workspace_files:
        dest = target / name
        if not dest.exists():
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(lab.starter_dir / name, dest)
            created.append(dest)
    return created


def copy_instructions(workspace: Path, lab: Lab) -> Path:
    """The lab's README beside the learner's files (`labNN/README.md`), where they work; never overwritten."""
    dest = lab_dir(workspace, lab) / "README.md"
    if not dest.exists():
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(lab.readme, dest)
    return dest


def backup(workspace: Path, lab: Lab) -> Path | None:
    """Copy the learner's current files to `labNN/.backups/<timestamp>/`; returns that folder (None if nothing to save)."""
    source = lab_dir(workspace, lab)
    present = [source / n for n in lab.workspace_files if (source / n).exists()]
    if not present:
        return None
    stamp = time.strftime("%Y%m%d-%H%M%S")
    folder = source / ".backups" / stamp
    n = 1
    while folder.exists():
        n += 1
        folder = source / ".backups" / f"{stamp}-{n}"
    for path in present:
        dest = folder / path.relative_to(source)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, dest)
    return folder


def reset(workspace: Path, lab: Lab) -> Path | None:
    """Back up, then put the starter files back."""
    saved = backup(workspace, lab)
    target = lab_dir(workspace, lab)
    for name in lab.workspace_files:
        dest = target / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(lab.starter_dir / name, dest)
    return saved


def fingerprint(folder: Path, lab: Lab) -> str:
    """A hash of the lab's files in `folder`, to tell whether the workspace changed since the last deploy."""
    digest = hashlib.sha256()
    for name in lab.workspace_files:
        path = folder / name
        digest.update(name.encode())
        digest.update(path.read_bytes() if path.exists() else b"<missing>")
    return digest.hexdigest()[:16]
