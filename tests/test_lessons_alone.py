"""What lets a lesson open alone, as Colab and Kaggle open it (tests/test_colab.py runs lesson 04 that way): each lesson
starts with the same cell, which installs miniai from the repository `settings.ini` names whenever `miniai.training`
can't be imported (a folder named `miniai` in the way included), and ends by exporting only inside the project; the
README links each lesson to Colab and Kaggle."""
import json, os, re, site, subprocess, sys, venv
from pathlib import Path
import pytest
from helpers import root
sys.path.insert(0, str(root/'docs'))
import rules

lessons = [p for p in rules.notebooks() if rules.is_lesson(p)]
def code(p): return [rules.src(c) for c in rules.cells(p) if c['cell_type'] == 'code']

def test_each_lesson_starts_with_the_same_install_cell():
    assert len(lessons) >= 7
    first = {p.name: code(p)[0] for p in lessons}
    assert len(set(first.values())) == 1, f"lessons whose first cell differs from {lessons[0].name}'s: {[n for n,c in first.items() if c != first[lessons[0].name]]}"
    cell = first[lessons[0].name]
    assert cell.startswith('#| hide') and f"'git+{rules.cfg.git_url}'" in cell and "os.environ.get('MINIAI_INSTALL'" in cell and 'miniai[lessons]' in cell

@pytest.fixture(scope='module')
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp('dist')
    subprocess.run([sys.executable, '-m', 'pip', 'wheel', '-q', '--no-deps', '--no-build-isolation', '-w', out, root], check=True, capture_output=True, cwd=out, timeout=300)
    return next(out.glob('miniai-*.whl'))

def first_cell(tmp_path, folder, **env):
    """Run lesson 04's first cell in a fresh Python that has every package this one has except miniai (a venv that
    reaches this environment's site-packages as a plain path, so no editable install of miniai is active), in a
    working folder that holds `folder` (a name -> text mapping of files), and print where miniai.training came from"""
    venv.create(tmp_path/'py', with_pip=False)
    py = tmp_path/'py'/'bin'/'python'
    own = subprocess.run([py, '-c', 'import site; print(site.getsitepackages()[0])'], capture_output=True, text=True).stdout.strip()
    Path(own, 'this_env.pth').write_text('\n'.join(site.getsitepackages()) + '\n')
    here = tmp_path/'work'
    for f, text in folder.items(): (here/f).parent.mkdir(parents=True, exist_ok=True); (here/f).write_text(text)
    here.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in ('PYTHONPATH', 'VIRTUAL_ENV', 'MINIAI_INSTALL')} | env
    code_ = code(lessons[0])[0] + "\nprint('miniai.training from', miniai.training.__file__)"
    return subprocess.run([py, '-c', code_], capture_output=True, text=True, cwd=here, env=env, timeout=300), tmp_path/'py'

stray = {'nothing in the way': {}, 'a folder named miniai': {'miniai/notes.txt': 'mine'},
         'a package named miniai': {'miniai/__init__.py': ''}, 'a clone of the repository': {'miniai/nbs/04.ipynb': '{}', 'miniai/miniai/__init__.py': ''}}

@pytest.mark.slow
@pytest.mark.parametrize('folder', stray.values(), ids=stray.keys())
def test_first_cell_installs_miniai_whatever_folder_is_in_the_way(tmp_path, wheel, folder):
    "Installed from a wheel here (offline: no index, and what miniai needs is there already), imported from where pip put it"
    res, env = first_cell(tmp_path, folder, MINIAI_INSTALL=str(wheel), PIP_NO_INDEX='1', PIP_NO_DEPS='1')
    assert res.returncode == 0, res.stderr[-3000:]
    said = res.stdout.splitlines()
    assert said[0] == f"Installing miniai and what the lessons use from {wheel.as_uri()}: this takes a minute or two.", said
    assert said[1] == 'Done.' and said[2].startswith(f"miniai.training from {env}"), said

@pytest.mark.slow
def test_first_cell_offline_says_what_failed_and_what_to_do(tmp_path):
    "Offline (every connection refused), the error shows pip's last lines and points at Kaggle's Internet option"
    off = {k: 'http://127.0.0.1:9' for k in ('http_proxy', 'https_proxy', 'HTTP_PROXY', 'HTTPS_PROXY', 'all_proxy', 'ALL_PROXY')}
    res, _ = first_cell(tmp_path, {'miniai/notes.txt': 'mine'}, GIT_TERMINAL_PROMPT='0', PIP_RETRIES='0', **off)
    assert res.returncode != 0 and res.stdout.startswith(f"Installing miniai and what the lessons use from git+{rules.cfg.git_url}"), res.stdout
    err = res.stderr.splitlines()
    at = next(i for i, l in enumerate(err) if l.startswith('RuntimeError: Installing miniai failed.'))
    assert "On Kaggle, turn on Internet in the notebook's settings." in err[at] and err[at].endswith('pip said:'), err[at]
    assert 1 <= len(err[at+1:]) <= 12 and any('error' in l.lower() for l in err[at+1:]), err[at:]
    assert 'During handling' not in res.stderr, res.stderr

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
