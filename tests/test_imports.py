"""Importing miniai stays light: Hugging Face's `datasets` and hypothesis load only inside the functions that use
them, and `miniai.learner` doesn't pull in `miniai.datasets`. One fresh interpreter imports the package under test."""
import subprocess, sys
from pathlib import Path
import miniai

def test_imports_stay_light():
    code = ("import sys, miniai.learner\nprint(sorted(m for m in sys.modules if m.startswith('miniai.')))\n"
            "import miniai.validate, miniai.training, miniai.scratch, miniai.conv, miniai.datasets, miniai.check\n"
            "print([m for m in ('datasets', 'hypothesis') if m in sys.modules])")
    here = Path(miniai.__file__).parent.parent   # the package these tests import, not another on the path
    res = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=120, cwd=here)
    assert res.returncode == 0, res.stderr[-2000:]
    learner_needs, heavy = res.stdout.splitlines()
    assert 'miniai.datasets' not in learner_needs, learner_needs
    assert heavy == '[]', f"importing miniai loaded {heavy}"
