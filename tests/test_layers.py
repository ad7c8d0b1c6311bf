"""The package layers declared in pyproject.toml ([tool.importlinter]) hold: no lower
layer (nn, training, models/debias, experiments) imports a higher one (issue 31)."""
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_declared_layers_are_kept():
    out = subprocess.run(["lint-imports", "--config", str(ROOT / "pyproject.toml")],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert "0 broken" in out.stdout
