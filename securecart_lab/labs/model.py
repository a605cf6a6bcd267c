"""A lab is data: `labs/NN-slug/lab.toml`, parsed here into one typed model."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

from securecart_lab import config
from securecart_lab.errors import LabError
from securecart_lab.paths import load_module

FORMAT_VERSION = 1


@dataclass(frozen=True)
class Step:
    """One step of the lab's instructions: a title, its text, the ids of the checks that verify it, and hints from
    a nudge to nearly the answer (`check --verbose` shows them for a step with a failing check; `solve` is the rest)."""

    title: str
    text: str
    checks: tuple[str, ...] = ()
    hints: tuple[str, ...] = ()


@dataclass(frozen=True)
class Lab:
    """One lab, as declared in its lab.toml.

    number: the lab's number (what learners type: `start 1`).
    slug: the folder name after the number (`01-order-workflow` -> `order-workflow`).
    title, summary: shown by `list` and `start`.
    estimated_minutes: how long a learner typically needs.
    objectives: what the learner will be able to do afterwards.
    services: AWS services the lab uses (shown; checks declare their own needs).
    workspace_files: the learner's files, copied from starter/ and replaced by solution/ files of the same names.
    requires: labs whose resources this one builds on (their solution is deployed when missing).
    steps: the instructions in order, each naming the checks that verify it.
    references: read-only copies for the learner to read beside their files: (folder under labNN/reference/, glob
        relative to the lab's folder, or to the kit's seed/ when it starts with "seed/").
    stacks, functions: what the lab creates by name, as (account id, name): its CloudFormation stacks and the
        Lambda functions its provision.py creates outside them (`[resources]`; an "ACCOUNT:" prefix such as
        "security:" names another of the kit's accounts). `status` attributes processes to labs from them.
    path: the lab's folder.
    """

    number: int
    slug: str
    title: str
    summary: str
    estimated_minutes: int
    objectives: tuple[str, ...]
    services: tuple[str, ...]
    workspace_files: tuple[str, ...]
    path: Path
    requires: tuple[int, ...] = ()
    steps: tuple[Step, ...] = field(default_factory=tuple)
    references: tuple[tuple[str, str], ...] = ()
    stacks: tuple[tuple[str, str], ...] = ()
    functions: tuple[tuple[str, str], ...] = ()

    @property
    def key(self) -> str:
        return f"lab{self.number:02d}"

    @property
    def starter_dir(self) -> Path:
        return self.path / "starter"

    @property
    def solution_dir(self) -> Path:
        return self.path / "solution"

    @property
    def readme(self) -> Path:
        return self.path / "README.md"

    def checks_file(self, checks_dir: Path) -> Path:
        return checks_dir / f"{self.key}.py"

    def provisioner(self) -> ModuleType:
        """The lab's provisioning module (`provision.py`): provision(ctx), deploy(ctx, source_dir)."""
        path = self.path / "provision.py"
        if not path.exists():
            raise LabError(f"Lab {self.number} has no provisioning module at {path}.")
        return load_module(path)

    def module(self, filename: str) -> ModuleType:
        """Another Python file of the lab's folder (e.g. lab 3's drill.py), imported once."""
        return load_module(self.path / filename)


def _require(data: dict, key: str, kind, where: Path):
    if key not in data:
        raise LabError(f"{where}: missing required field {key!r}.")
    value = data[key]
    if not isinstance(value, kind):
        raise LabError(f"{where}: field {key!r} should be {kind.__name__}, found {type(value).__name__}.")
    return value


def _named(value, key: str, where: Path) -> tuple[tuple[str, str], ...]:
    """`[resources]` names: "name" in SecureCart's account, "ACCOUNT:name" in another of the kit's accounts."""
    if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
        raise LabError(f"{where}: [resources] {key} should be a list of names.")
    named = []
    for item in value:
        account, _, name = item.rpartition(":")
        try:
            named.append((config.account_named(account) if account else config.ACCOUNT_ID, name))
        except LabError as exc:
            raise LabError(f"{where}: [resources] {key}: {item!r}: {exc.message}") from None
    return tuple(named)


def load_lab(folder: Path) -> Lab:
    manifest = folder / "lab.toml"
    try:
        data = tomllib.loads(manifest.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LabError(f"{folder}: no lab.toml.")
    except tomllib.TOMLDecodeError as exc:
        raise LabError(f"{manifest}: {exc}")
    version = _require(data, "format_version", int, manifest)
    if version > FORMAT_VERSION:
        raise LabError(
            f"{manifest}: format_version {version} is newer than this securecart-lab understands ({FORMAT_VERSION}).",
            "Upgrade securecart-lab: pip install -U securecart-lab",
        )
    number_text, _, slug = folder.name.partition("-")
    number = _require(data, "id", int, manifest)
    if not number_text.isdigit() or int(number_text) != number:
        raise LabError(f"{manifest}: id {number} does not match the folder name {folder.name}.")
    steps = tuple(
        Step(title=_require(s, "title", str, manifest), text=s.get("text", ""), checks=tuple(s.get("checks", ())),
             hints=tuple(s.get("hints", ())))
        for s in data.get("steps", [])
    )
    return Lab(
        number=number,
        slug=slug,
        title=_require(data, "title", str, manifest),
        summary=_require(data, "summary", str, manifest),
        estimated_minutes=_require(data, "estimated_minutes", int, manifest),
        objectives=tuple(_require(data, "objectives", list, manifest)),
        services=tuple(_require(data, "services", list, manifest)),
        workspace_files=tuple(_require(data, "workspace_files", list, manifest)),
        requires=tuple(data.get("requires", ())),
        steps=steps,
        references=tuple((str(k), str(v)) for k, v in data.get("references", {}).items()),
        stacks=_named(data.get("resources", {}).get("stacks", []), "stacks", manifest),
        functions=_named(data.get("resources", {}).get("functions", []), "functions", manifest),
        path=folder,
    )
