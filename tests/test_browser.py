"""The notebooks as a learner sees them in JupyterLab, driven in headless Chromium:
- lesson 06 runs all cells, we click its button, and the callback's output must appear under it;
- every notebook opens without the unsaved-changes mark, once its stored kernel record is this machine's (see
  `test_notebooks_open_unmodified`).
Screenshots go to `$ARTIFACTS` (default `artifacts/`)."""
import json, os, re, secrets, shutil, signal, socket, subprocess, sys, time, urllib.request
from contextlib import contextmanager, suppress
from pathlib import Path
import psutil, pytest

root = Path(__file__).resolve().parent.parent
NB = '06_foundations.ipynb'
from helpers import CHROMIUM, CHROMIUM_ARGS, ARTIFACTS
SERVER_TIMEOUT, KERNEL_TIMEOUT, UI_TIMEOUT_MS, RUN_ALL_TIMEOUT_MS = 60, 90, 60_000, 120_000

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                reason=f"no Chromium at {CHROMIUM}: install Debian's `chromium` "
                                       "(CI's .ci/run does) or set CHROMIUM")]

def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]

def _ours(marker):
    "Processes but this one whose command line has `marker` (our temp dir): the server's kernels, Chromium's helpers."
    me = os.getpid()
    return [p for p in psutil.process_iter(['cmdline']) if p.pid != me and marker in ' '.join(p.info['cmdline'] or [])]

def _reap(marker, timeout=10):
    "SIGKILL whatever of ours outlived the normal shutdown, by PID; return the PIDs still there after `timeout` s."
    deadline = time.monotonic() + timeout
    while (procs := _ours(marker)) and time.monotonic() < deadline:
        for p in procs:
            with suppress(psutil.NoSuchProcess): p.kill()
        psutil.wait_procs(procs, timeout=1)
    return [p.pid for p in procs]

@contextmanager
def jupyter_lab(nb_dir, home, *args, settings=None):
    """JupyterLab on 127.0.0.1 with its own HOME, config and token, started with `args` and the apputils-extension
    `settings` (plugin name -> values); stopped by PID on the way out, whatever happened."""
    port, token = _free_port(), secrets.token_hex(16)
    folder = home/'.jupyter/lab/user-settings/@jupyterlab/apputils-extension'
    folder.mkdir(parents=True)
    news = {'fetchNews': 'false', 'checkForUpdates': False}  # no "official Jupyter news?" toast over the notebook
    for name, values in ({'notification': news} | (settings or {})).items():
        (folder/f'{name}.jupyterlab-settings').write_text(json.dumps(values))
    env = dict(os.environ, HOME=str(home), JUPYTER_CONFIG_DIR=str(home/'.jupyter'),
               JUPYTER_RUNTIME_DIR=str(home/'runtime'), IPYTHONDIR=str(home/'.ipython'))
    cmd = [str(Path(sys.executable).parent/'jupyter'), 'lab', '--no-browser', '--ip=127.0.0.1', f'--port={port}',
           f'--IdentityProvider.token={token}', f'--ServerApp.root_dir={nb_dir}',
           '--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate', *args]
    if os.geteuid() == 0: cmd.append('--allow-root')  # otherwise the server refuses to start
    log_path = home/'jupyterlab.log'
    with open(log_path, 'w') as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        try:
            deadline = time.monotonic() + SERVER_TIMEOUT
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"JupyterLab exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
                try:
                    urllib.request.urlopen(f'http://127.0.0.1:{port}/api/status?token={token}', timeout=2)
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"JupyterLab not answering after {SERVER_TIMEOUT}s, see {log_path}")
                    time.sleep(0.25)
            yield f'http://127.0.0.1:{port}', token
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)  # the server shuts its kernels down
                try: proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)  # its own process group only
                    proc.wait(timeout=10)

# The toolbar says 'No Kernel' until the session exists, and the indicator reports a stale 'idle' before the kernel
# has started: require a kernel name AND idle, several polls in a row.
KERNEL_READY_JS = """() => {
  const name = document.querySelector(".jp-NotebookPanel-toolbar [title='Switch kernel']");
  const ind = document.querySelector('.jp-NotebookPanel-toolbar .jp-Notebook-ExecutionIndicator');
  return !!name && /\\S/.test(name.textContent) && !/No Kernel/.test(name.textContent)
    && !!ind && ind.dataset.status === 'idle';
}"""
# Run All is over when no prompt shows '[*]' (queued or running) and either every code cell shows an execution count
# or an error stopped the run (its traceback is stderr output; the cells after it keep '[ ]').
RUN_OVER_JS = """({n, stderr}) => {
  const ps = [...document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputPrompt')].map(p => p.textContent);
  if (ps.length !== n || ps.some(t => t.includes('*'))) return false;
  return ps.every(t => /\\[\\d+\\]/.test(t)) || !!document.querySelector('.jp-Notebook ' + stderr);
}"""
STDERR = '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'

def wait_kernel_idle(page, timeout=KERNEL_TIMEOUT, polls=3):
    deadline, ok = time.monotonic() + timeout, 0
    while time.monotonic() < deadline:
        ok = ok+1 if page.evaluate(KERNEL_READY_JS) else 0
        if ok >= polls: return
        time.sleep(0.2)
    raise TimeoutError(f"kernel not started and idle after {timeout}s")

@contextmanager
def lab_page(tmp_path, proj, *args, fail_shot, settings=None):
    """A Chromium page and the URL of JupyterLab (started with `args` and `settings`) serving `proj`; a screenshot
    goes to `fail_shot` if the body fails. Whatever both started is gone on the way out; the page raised no errors."""
    from playwright.sync_api import expect, sync_playwright
    expect.set_options(timeout=UI_TIMEOUT_MS)
    home, errors = tmp_path/'home', []
    try:
        with jupyter_lab(proj, home, *args, settings=settings) as (base, token), sync_playwright() as p:
            ctx = p.chromium.launch_persistent_context(  # its own profile and HOME (crash reports), both in tmp_path
                str(tmp_path/'chromium'), executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS, timeout=60_000,
                env=dict(os.environ, HOME=str(home)), viewport={'width': 1280, 'height': 900})
            page = ctx.new_page()
            page.set_default_timeout(UI_TIMEOUT_MS)
            page.on('pageerror', lambda e: errors.append(str(e)))
            try: yield page, f'{base}/lab', token
            except Exception:
                fail_shot.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(fail_shot))
                print(f'\nscreenshot at the failure: {fail_shot}; server log: {home/"jupyterlab.log"}')
                raise
            finally: ctx.close()
    finally: left = _reap(f'{tmp_path}{os.sep}')
    assert not left, f"processes still running after the test: {left}"
    assert errors == [], errors

def test_06_button_output_in_jupyterlab(tmp_path, capsys):
    from playwright.sync_api import expect
    proj = tmp_path/'project'  # a copy: settings.ini lets the last cell's nbdev_export() run; nbs/ stays untouched
    (proj/'nbs').mkdir(parents=True)
    shutil.copy(root/'settings.ini', proj)
    nb = json.loads((root/'nbs'/NB).read_text())   # less any `#| eval: false` cell, which nbdev's runner skips too
    nb['cells'] = [c for c in nb['cells'] if not re.match(r'#\|\s*eval:\s*false\s*$', ''.join(c['source']).split('\n')[0])]
    (proj/'nbs'/NB).write_text(json.dumps(nb))
    assert nb['metadata'].get('kernelspec', {}).get('name') == 'python3', \
        f"{NB} should name its kernel (metadata.kernelspec.name='python3'); " \
        "without it JupyterLab asks the learner to pick one"
    n_code = sum(c['cell_type'] == 'code' for c in nb['cells'])
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS/'06_foundations_button.png'
    with lab_page(tmp_path, proj, fail_shot=ARTIFACTS/'06_foundations_failure.png') as (page, lab, token):
        page.goto(f'{lab}/tree/nbs/{NB}?token={token}')
        expect(page.locator('.jp-Notebook')).to_be_visible()
        wait_kernel_idle(page)
        page.get_by_role('menuitem', name='Run', exact=True).click()
        page.get_by_role('menuitem', name='Run All Cells', exact=True).click()
        page.wait_for_function(RUN_OVER_JS, arg={'n': n_code, 'stderr': STDERR}, timeout=RUN_ALL_TIMEOUT_MS)
        stderr = page.locator('.jp-Notebook ' + STDERR)
        assert stderr.count() == 0, stderr.all_inner_texts()
        wait_kernel_idle(page)

        has_button = page.locator('.widget-button', has_text='Click me')
        cell = page.locator('.jp-Notebook .jp-CodeCell', has=has_button)
        button, out = cell.locator('.widget-button'), cell.locator('.widget-output')
        expect(out).to_have_text('Clicked 1 time(s)')  # the notebook's btn.click(), in the Output widget
        button.click()
        expect(out).to_have_text('Clicked 1 time(s)\nClicked 2 time(s)')  # our click, under the button
        expect(page.locator('.jp-LogConsoleStatusItem')).to_have_text('')  # nothing went to the Log Console
        out.evaluate("e => e.scrollIntoView({block: 'center'})")
        b, o = button.bounding_box(), out.bounding_box()
        assert o['y'] >= b['y'] + b['height'], \
            f"the output should be under the button, but got button {b}, output {o}"
        page.screenshot(path=str(shot))
        with capsys.disabled(): print(f'\nscreenshot of the clicked button: {shot}')

# What JupyterLab records in every notebook it opens (NotebookPanel's _updateSpec and _updateLanguage): the kernel
# spec's name, display name and language, and the language_info the running kernel reports, with its exact version.
KERNEL_RECORD_JS = """async name => {
  const sm = window.jupyterapp.serviceManager;
  await sm.kernelspecs.ready;
  const spec = sm.kernelspecs.specs.kernelspecs[name];
  const kernel = await sm.kernels.startNew({name});
  try {
    return {kernelspec: {name, display_name: spec.display_name, language: spec.language},
            language_info: (await kernel.info).language_info};
  } finally { await kernel.shutdown(); }
}"""
# Open `path` and wait until JupyterLab has written its kernel record: the panel asks for the kernel's info and spec
# when the kernel appears, before the session is ready, so by the time our own requests resolve, its have.
OPEN_JS = """async ({path, ms}) => {
  const w = await window.jupyterapp.commands.execute('docmanager:open', {path});
  const recorded = (async () => {
    await w.context.ready;
    await w.context.sessionContext.ready;
    const kernel = w.context.sessionContext.session?.kernel;
    if (!kernel) throw new Error(`${path} opened without a kernel`);
    await kernel.info;
    await kernel.spec;
    await new Promise(r => setTimeout(r));
  })();
  let timer;
  const late = new Promise((_, no) => {
    timer = setTimeout(() => no(new Error(`${path}: no kernel after ${ms} ms`)), ms);
  });
  try { await Promise.race([recorded, late]); } finally { clearTimeout(timer); }
  const {kernelspec, language_info} = w.context.model.toJSON().metadata;
  return {dirty: w.context.model.dirty, kernelspec, language_info};
}"""
# After a click on a tab's close icon: either the tab is gone or JupyterLab asks something.
CLOSED_OR_ASKED_JS = """name => !!document.querySelector('.jp-Dialog')
  || ![...document.querySelectorAll('#jp-main-dock-panel .lm-TabBar-tabLabel')].some(t => t.textContent === name)"""

def test_notebooks_open_unmodified(tmp_path):
    """Each notebook opens in JupyterLab without the unsaved-changes mark, and closing it asks nothing, when its
    stored kernel record (metadata `kernelspec` and `language_info`) is what this JupyterLab records for its kernel.

    JupyterLab writes that record into every notebook it opens and marks the notebook modified where it differs
    from the stored one. The committed notebooks can't match every learner's: `nbdev_clean` (which CI enforces)
    stores `display_name` as the kernel's name ('python3', where ipykernel says 'Python 3 (ipykernel)') and drops
    `language_info`, whose `version` is the learner's exact Python. So they do open marked, and Discard or Save
    both lose nothing. This test puts this machine's record in copies and checks that nothing else of ours (cells,
    outputs, widget state, format) makes JupyterLab change a notebook on opening it."""
    from playwright.sync_api import expect
    proj = tmp_path/'project'  # copies: nbs/ stays untouched
    (proj/'nbs').mkdir(parents=True)
    shutil.copy(root/'settings.ini', proj)
    problems = []
    # No kernel subshells for comms: closing a notebook just after opening it would cancel JupyterLab's pending
    # create_subshell_request, a page error of JupyterLab's own.
    with lab_page(tmp_path, proj, '--LabApp.expose_app_in_browser=True',
                  settings={'kernels-settings': {'commsOverSubshells': 'disabled'}},
                  fail_shot=ARTIFACTS/'notebooks_open_failure.png') as (page, lab, token):
        page.goto(f'{lab}?reset&token={token}')
        page.wait_for_function('() => window.jupyterapp')
        page.evaluate('async () => { await window.jupyterapp.restored; }')
        record = page.evaluate(KERNEL_RECORD_JS, 'python3')
        for src in sorted((root/'nbs').glob('*.ipynb')):
            nb = json.loads(src.read_text())
            nb['metadata'].update(record)
            (proj/'nbs'/src.name).write_text(json.dumps(nb, indent=1, ensure_ascii=False))
            opened = page.evaluate(OPEN_JS, {'path': f'nbs/{src.name}', 'ms': KERNEL_TIMEOUT*1000})
            tab = page.locator('#jp-main-dock-panel .lm-TabBar-tab', has_text=src.name)
            if opened['dirty'] or 'jp-mod-dirty' in tab.get_attribute('class'):
                rewrote = [k for k in record if opened[k] != nb['metadata'].get(k)]
                what = ', '.join(f'metadata.{k}' for k in rewrote) or 'something besides its kernel record'
                problems.append(f"{src.name} opens marked modified; JupyterLab rewrote {what}")
            tab.locator('.lm-TabBar-tabCloseIcon').click()
            page.wait_for_function(CLOSED_OR_ASKED_JS, arg=src.name)
            if (dialog := page.locator('.jp-Dialog')).count():
                problems.append(f"closing {src.name} asks: {dialog.inner_text()!r}")
                dialog.get_by_role('button', name='Discard').click()
                expect(dialog).to_have_count(0)
    assert problems == [], '\n'.join(problems)
