"""README's generated blocks (CLI output, data tables) match the live CLI and data."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_readme_is_current():
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "readme.py"), "--check"], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_readme_states_the_two_commands():
    text = (ROOT / "README.md").read_text()
    assert "pip install -r requirements.txt && streamlit run app.py" in text
    assert "bash .ci/run" in text
