"""CI's scripts say what the README says: GitHub's workflows are valid YAML, the test workflow and `.ci/run` run the
README's install line and its test command, and the deploy workflow builds the docs site with `docs/build.py` and
publishes the folder it builds into."""
import re, subprocess
import pytest, yaml
from helpers import root
from nbdev.config import get_config

workflows = root/'.github'/'workflows'
readme = (root/'README.md').read_text(encoding='utf-8')
contributing = (root/'CONTRIBUTING.md').read_text(encoding='utf-8')

def section(text, heading):
    "The text under the `## heading` of a Markdown file, up to the next `## `"
    return re.search(rf'^## {re.escape(heading)}\n(.*?)(?=^## |\Z)', text, re.M | re.S)[1]

def commands(md):
    "The lines of a Markdown text's ```sh blocks, without comments"
    return [l.split('#')[0].strip() for b in re.findall(r'```sh\n(.*?)```', md, re.S) for l in b.splitlines() if l.split('#')[0].strip()]

def steps(wf): return [s for job in wf['jobs'].values() for s in job['steps']]
def runs(wf): return [l.strip() for s in steps(wf) for l in s.get('run', '').splitlines()]

@pytest.fixture(scope='module')
def wfs():
    files = sorted(workflows.glob('*.yml'))
    assert [f.name for f in files] == ['deploy.yml', 'test.yml']
    return {f.stem: yaml.safe_load(f.read_text(encoding='utf-8')) for f in files}

def test_workflows_are_valid(wfs):
    for name, wf in wfs.items():
        assert wf['name'] and wf[True] and wf['jobs'], name   # YAML 1.1 reads the key `on` as True
        for job in wf['jobs'].values():
            assert job['runs-on'] and job['steps'] and all('uses' in s or 'run' in s for s in job['steps']), name

def test_readme_has_one_test_command():
    assert commands(section(readme, 'Run the tests')) == ['pytest']

def test_test_workflow_installs_and_tests_as_the_readme_says(wfs):
    test_cmd, = commands(section(readme, 'Run the tests'))
    install = next(l for l in commands(section(contributing, 'Set up')) if l.startswith('pip install -e'))
    assert install in runs(wfs['test']) and test_cmd in runs(wfs['test']), runs(wfs['test'])
    assert {'push', 'pull_request'} <= set(wfs['test'][True])

def test_deploy_workflow_builds_with_docs_build_and_publishes_the_site(wfs):
    cfg = get_config(path=root)
    wf = wfs['deploy']
    assert wf[True]['push']['branches'] == [cfg.branch] and 'python docs/build.py' in runs(wf)
    pub, = [s for s in steps(wf) if s.get('uses', '').startswith('peaceiris/actions-gh-pages')]
    assert pub['with']['publish_dir'].strip('./') == cfg.doc_path.name and wf['permissions']['contents'] == 'write'

def test_ci_script_is_valid_bash_and_runs_the_readme_commands():
    run = (root/'.ci'/'run').read_text(encoding='utf-8')
    assert subprocess.run(['bash', '-n', root/'.ci'/'run'], capture_output=True, text=True).returncode == 0
    test_cmd, = commands(section(readme, 'Run the tests'))
    install = next(l for l in commands(section(contributing, 'Set up')) if l.startswith('pip install -e'))
    lines = [l.split('#')[0].strip() for l in run.splitlines()]
    assert test_cmd in lines and any(l.endswith(install.removeprefix('pip ')) for l in lines), "CI runs the README's commands"
