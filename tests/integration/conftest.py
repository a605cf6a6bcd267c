"""Fixtures of the integration tests beyond the session engine (tests/conftest.py): lab 4 started on that engine,
and folders holding lab 4's reference files with a learner's mistakes written into them."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from securecart_lab.labs import service
from securecart_lab.labs.registry import get_lab

LAB = get_lab(4)
TEMPLATE = (LAB.solution_dir / "template.yaml").read_text()
SECURITY = (LAB.solution_dir / "security.yaml").read_text()


@pytest.fixture(scope="module")
def lab4(settings, engine):
    service.start(settings, 4, with_prereqs=True)
    yield settings


@pytest.fixture
def variant():
    """variant(template={old: new}, security={old: new}) -> a folder with both reference files (deploy 4 deploys
    both), so changed; each `old` must occur."""
    folders = []

    def make(template: dict[str, str] | None = None, security: dict[str, str] | None = None) -> Path:
        folder = Path(tempfile.mkdtemp(prefix="lab04-", dir="/tmp"))
        folders.append(folder)
        for name, text, replacements in (("template.yaml", TEMPLATE, template), ("security.yaml", SECURITY, security)):
            for old, new in (replacements or {}).items():
                assert old in text, old
                text = text.replace(old, new)
            (folder / name).write_text(text)
        return folder

    yield make
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)
