"""What lets a lesson open alone, as Colab and Kaggle open it (tests/test_colab.py runs lesson 04 that way): each lesson
starts by installing miniai from the repository `settings.ini` names, when it isn't installed, and ends by exporting
only inside the project; the README links each lesson to Colab and Kaggle."""
import json, re, sys
from pathlib import Path
from helpers import root
sys.path.insert(0, str(root/'docs'))
import rules

lessons = [p for p in rules.notebooks() if rules.is_lesson(p)]
def code(p): return [rules.src(c) for c in rules.cells(p) if c['cell_type'] == 'code']

def test_each_lesson_installs_miniai_from_the_repository_when_it_is_missing():
    assert len(lessons) >= 7
    for p in lessons:
        first = code(p)[0]
        assert first.startswith('#| hide') and "find_spec('miniai') is None" in first, p.name
        assert f"'git+{rules.cfg.git_url}'" in first and "os.environ.get('MINIAI_INSTALL'" in first and 'miniai[lessons]' in first, p.name

def test_each_notebook_exports_only_inside_the_project():
    for p in rules.notebooks():
        if any('nbdev_export' in s for s in code(p)):
            assert code(p)[-1].splitlines()[-1].startswith('if nbdev.config.is_nbdev(): nbdev.nbdev_export()'), p.name

def test_readme_links_each_lesson_to_colab_and_kaggle():
    readme = (root/'README.md').read_text()
    for p in lessons:
        row = next((l for l in readme.splitlines() if l.startswith(f'| [') and f'(nbs/{p.name})' in l), None)
        assert row, f"the README's lessons table has no row for {p.name}"
        assert f'[Colab]({rules.colab_url(p)})' in row and f'[Kaggle]({rules.kaggle_url(p)})' in row, row
