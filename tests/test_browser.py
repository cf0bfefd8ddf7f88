"""Lesson 06 as a learner sees it: JupyterLab in headless Chromium runs all cells, we click the lesson's
button, and the callback's output must appear under it. Screenshots go to `$ARTIFACTS` (default `artifacts/`)."""
import json, os, secrets, shutil, signal, socket, subprocess, sys, time, urllib.request
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
def jupyter_lab(nb_dir, home):
    "JupyterLab on 127.0.0.1 with its own HOME, config and token; stopped by PID on the way out, whatever happened."
    port, token = _free_port(), secrets.token_hex(16)
    settings = home/'.jupyter/lab/user-settings/@jupyterlab/apputils-extension'
    settings.mkdir(parents=True)  # no "official Jupyter news?" toast over the notebook
    news = {'fetchNews': 'false', 'checkForUpdates': False}
    (settings/'notification.jupyterlab-settings').write_text(json.dumps(news))
    env = dict(os.environ, HOME=str(home), JUPYTER_CONFIG_DIR=str(home/'.jupyter'),
               JUPYTER_RUNTIME_DIR=str(home/'runtime'), IPYTHONDIR=str(home/'.ipython'))
    cmd = [str(Path(sys.executable).parent/'jupyter'), 'lab', '--no-browser', '--ip=127.0.0.1', f'--port={port}',
           f'--IdentityProvider.token={token}', f'--ServerApp.root_dir={nb_dir}',
           '--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate']
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

def test_06_button_output_in_jupyterlab(tmp_path, capsys):
    from playwright.sync_api import expect, sync_playwright
    expect.set_options(timeout=UI_TIMEOUT_MS)
    proj = tmp_path/'project'  # a copy: settings.ini lets the last cell's nbdev_export() run; nbs/ stays untouched
    (proj/'nbs').mkdir(parents=True)
    shutil.copy(root/'settings.ini', proj)
    shutil.copy(root/'nbs'/NB, proj/'nbs')
    nb = json.loads((root/'nbs'/NB).read_text())
    assert nb['metadata'].get('kernelspec', {}).get('name') == 'python3', \
        f"{NB} should name its kernel (metadata.kernelspec.name='python3'); " \
        "without it JupyterLab asks the learner to pick one"
    n_code = sum(c['cell_type'] == 'code' for c in nb['cells'])
    home = tmp_path/'home'
    shots = ARTIFACTS
    shots.mkdir(parents=True, exist_ok=True)
    shot, fail_shot = shots/'06_foundations_button.png', shots/'06_foundations_failure.png'
    errors = []
    try:
        with jupyter_lab(proj, home) as (base, token), sync_playwright() as p:
            ctx = p.chromium.launch_persistent_context(  # its own profile and HOME (crash reports), both in tmp_path
                str(tmp_path/'chromium'), executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS, timeout=60_000,
                env=dict(os.environ, HOME=str(home)), viewport={'width': 1280, 'height': 900})
            page = ctx.new_page()
            page.set_default_timeout(UI_TIMEOUT_MS)
            page.on('pageerror', lambda e: errors.append(str(e)))
            try:
                page.goto(f'{base}/lab/tree/nbs/{NB}?token={token}')
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
            except Exception:
                page.screenshot(path=str(fail_shot))
                with capsys.disabled():
                    print(f'\nscreenshot at the failure: {fail_shot}; server log: {home/"jupyterlab.log"}')
                raise
            finally: ctx.close()
    finally: left = _reap(f'{tmp_path}{os.sep}')
    assert not left, f"processes still running after the test: {left}"
    assert errors == [], errors
