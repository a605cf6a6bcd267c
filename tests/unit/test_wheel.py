"""`pip install .` must give a working tool: the wheel carries labs/, checks/, seed/ and docker-compose.yml."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "-q", "-w", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    (path,) = out.glob("securecart_lab-*.whl")
    return zipfile.ZipFile(path)


def test_wheel_ships_the_content(wheel):
    names = set(wheel.namelist())
    content = "securecart_lab/_content/"
    assert f"{content}docker-compose.yml" in names
    assert f"{content}seed/schema.sql" in names
    for lab in sorted(p for p in (ROOT / "labs").iterdir() if (p / "lab.toml").exists()):
        assert f"{content}labs/{lab.name}/lab.toml" in names
        assert f"{content}checks/lab{lab.name[:2]}.py" in names
    assert "securecart_lab/app/static/index.html" in names
    assert "securecart_lab/grading/github-workflow.yml" in names  # what grade --init-workflow writes
    assert not any("/tests/" in n or n.startswith("tests/") for n in names)


def test_wheel_declares_the_console_script(wheel):
    entry_points = next(n for n in wheel.namelist() if n.endswith("entry_points.txt"))
    assert "securecart-lab = securecart_lab.cli:main" in wheel.read(entry_points).decode()
