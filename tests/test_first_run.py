"""Starting Ferry with a Python that lacks its dependencies (the system one, outside .venv)
says so in one line with what to do, and exits non-zero; nothing is started."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SYSTEM_PYTHON = "/usr/bin/python3"
CLEAN_ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}


def system_python_lacks_tornado() -> bool:
    if not Path(SYSTEM_PYTHON).exists():
        return False
    probe = subprocess.run([SYSTEM_PYTHON, "-c", "import tornado"], env=CLEAN_ENV,
                           capture_output=True, check=False)
    return probe.returncode != 0


@pytest.mark.skipif(not system_python_lacks_tornado(),
                    reason="needs a system Python without Ferry's dependencies")
@pytest.mark.parametrize("args", [["--help"], []])
def test_server_py_outside_the_venv_says_in_one_line_what_to_do(args, tmp_path):
    result = subprocess.run([SYSTEM_PYTHON, str(ROOT / "server.py"), *args], cwd=tmp_path,
                            env=CLEAN_ENV, capture_output=True, text=True, timeout=120,
                            check=False)
    assert result.returncode != 0
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("ferry: Ferry's dependencies are not installed in this Python")
    assert "make demo" in lines[0] and ".venv/bin/python server.py" in lines[0]
    assert list(tmp_path.iterdir()) == []        # no data directory, nothing started
