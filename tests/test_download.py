"""miniai.download, and lesson 04's download as the lesson runs it, against a small HTTP server on 127.0.0.1: the file
arrives whole and checked; a transfer that breaks off, a wrong file, a trickling server, an HTTP error or no server leave
nothing behind, and say what to do; the part a killed run left is removed, and the part another run writes is not."""
import hashlib, json, math, multiprocessing, os, re, subprocess, sys, tempfile, threading, time, warnings
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
import pytest
from helpers import DATA, root
from miniai.download import download

MNIST_MD5 = '98100ca27dc0e07ddd9f822cf9d244db'
nb04 = root/'nbs'/'04_minibatch_training.ipynb'

@contextmanager
def serve(body:bytes, send:int=None, pause:float=0, step:int=1000, status:int=200, asked=None, hold=None):
    """Serve `body` at every path, announcing its full length but sending only its first `send` bytes, and with a
    `pause`, `step` bytes at a time `pause` s apart; or answer the HTTP error `status`. A request sets the event
    `asked`, and its answer waits for the event `hold`."""
    hits = []
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            if asked: asked.set()
            if hold: hold.wait(300)
            if status != 200: return self.send_error(status)
            self.send_response(200)
            self.send_header('Content-Length', str(len(body)))
            self.end_headers()
            data = body[:send]
            try:
                for i in range(0, len(data), step if pause else len(data) or 1):
                    self.wfile.write(data[i:i+step] if pause else data); self.wfile.flush(); time.sleep(pause)
            except (BrokenPipeError, ConnectionResetError): pass   # the client gave up
            self.close_connection = True
        def log_message(self, *args): pass
    srv = ThreadingHTTPServer(('127.0.0.1', 0), Handler)
    srv.daemon_threads = True
    t = threading.Thread(target=srv.serve_forever, args=(0.01,), daemon=True)   # shutdown() waits up to one poll interval
    t.start()
    try: yield f'http://127.0.0.1:{srv.server_port}/mnist.pkl.gz', hits
    finally: srv.shutdown(); srv.server_close(); t.join()

def dead_url():
    "A URL where nothing listens: a port that was free a moment ago"
    with serve(b'') as (url, _): pass
    return url

def download_cells():
    "Lesson 04's code cells, from the first up to the one that downloads MNIST."
    cells = [''.join(c['source']) for c in json.loads(nb04.read_text())['cells'] if c['cell_type'] == 'code']
    end = next(i for i,s in enumerate(cells) if 'download(MNIST_URL' in s)
    src = '\n'.join(cells[:end+1])
    assert not any(l.lstrip().startswith(('%', '!')) for l in src.splitlines()), "the cells should be plain Python"
    return src

RUNS = '''
import json, os, sys, traceback
code, errs = compile(open(sys.argv[1]).read(), sys.argv[1], 'exec'), []
for cwd, url in json.loads(sys.argv[2]):
    os.chdir(cwd)
    os.environ.pop('MINIAI_MNIST_URL', None)
    if url: os.environ['MINIAI_MNIST_URL'] = url
    try: exec(code, {'__name__': '__main__'}); errs.append('')
    except Exception: errs.append(traceback.format_exc())
print(json.dumps(errs))
'''

def run_lesson_download(*runs):
    """Run lesson 04's download cells once for each `(cwd, url)` in `runs`, fetching from `url` (through
    `MINIAI_MNIST_URL`) or, if `None`, the lesson's own URL; all in one fresh Python, which imports the lesson's
    packages once. Returns each run's traceback, or '' where the cells ran."""
    with tempfile.TemporaryDirectory() as d:   # files, not `-c`: cells may read their own source (show_doc)
        (cells := Path(d)/'lesson_04_download.py').write_text(download_cells())
        (script := Path(d)/'runs.py').write_text(RUNS)
        res = subprocess.run([sys.executable, script, cells, json.dumps([(str(c), u) for c,u in runs])], capture_output=True,
                             text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout.splitlines()[-1])

@pytest.fixture(scope='module')
def lesson(tmp_path_factory):
    """Lesson 04's download cells run in one fresh Python: offline; over a corrupt file it must not unpickle; and, if
    MNIST is here, twice from a server of it. Returns the folders they ran in, each run's traceback, the server's hits."""
    d = {k: tmp_path_factory.mktemp(k) for k in ('offline', 'corrupt', 'mnist')}
    (d['corrupt']/'data').mkdir()
    (d['corrupt']/'data'/'mnist.pkl.gz').write_bytes(b'truncated')   # as an older, interrupted run might have left it
    src = DATA['mnist'][0]
    with serve(src.read_bytes() if src.exists() else b'') as (url, hits):
        runs = [(d['offline'], dead_url()), (d['corrupt'], 'http://127.0.0.1:9/never-asked')] + [(d['mnist'], url)]*2*src.exists()
        errs = dict(zip(['offline', 'corrupt', 'mnist', 'again'], run_lesson_download(*runs)))
    return d, errs, hits

def md5(p): return hashlib.md5(Path(p).read_bytes()).hexdigest()

def start_download(url, dest):
    "`download(url, dest)` in a forked child of this process, which exits with code 0 once `dest` holds what it fetched"
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', DeprecationWarning)   # Python 3.12+: "fork() may deadlock" (this child only downloads)
        (p := multiprocessing.get_context('fork').Process(target=download, args=(url, dest, None, None, 300))).start()
    return p

def ended_pid():
    "The pid of a process that has ended"
    with subprocess.Popen([sys.executable, '-c', 'pass']) as p: p.wait()
    return p.pid

@pytest.mark.data('mnist')
def test_lesson_downloads_mnist_whole_and_checked(lesson):
    d, errs, hits = lesson
    if 'mnist' not in errs:   # online, and not here: the lesson's own URL fetches it (the first run), then it is served here
        assert run_lesson_download((root/'nbs', None)) == ['']
        with serve(DATA['mnist'][0].read_bytes()) as (url, hits):
            errs = dict(zip(['mnist', 'again'], run_lesson_download((d['mnist'], url), (d['mnist'], url))))
    assert errs['mnist'] == '' and md5(d['mnist']/'data'/'mnist.pkl.gz') == MNIST_MD5
    assert os.listdir(d['mnist']/'data') == ['mnist.pkl.gz'] and hits == ['/mnist.pkl.gz']
    assert errs['again'] == '' and len(hits) == 1   # there already: checked, not fetched

def test_lesson_offline_says_what_to_do(lesson):
    d, errs, _ = lesson
    assert 'ConnectionError: Could not download' in errs['offline'], errs['offline'][-3000:]
    assert 'If you are offline, put the file at data/mnist.pkl.gz yourself' in errs['offline']
    assert os.listdir(d['offline']/'data') == []

def test_corrupt_file_on_disk_is_never_unpickled(lesson):
    d, errs, _ = lesson
    assert 'RuntimeError' in errs['corrupt'], errs['corrupt'][-3000:]
    for s in (str(Path('data')/'mnist.pkl.gz'), MNIST_MD5, 'delete it and run this again'): assert s in errs['corrupt']
    assert (d['corrupt']/'data'/'mnist.pkl.gz').read_bytes() == b'truncated'

def test_interrupted_transfer_leaves_no_file(tmp_path):
    with serve(b'x'*300_000, send=100_000) as (url, hits):
        with pytest.raises(RuntimeError, match='broke off after 100,000 of 300,000 bytes'): download(url, tmp_path/'f.bin')
    assert hits and os.listdir(tmp_path) == []

def test_wrong_file_is_not_kept(tmp_path):
    with serve(b'not mnist') as (url, _):
        with pytest.raises(RuntimeError, match=f'downloaded from {url} has md5 .* but {MNIST_MD5} was expected'):
            download(url, tmp_path/'mnist.pkl.gz', md5=MNIST_MD5)
        with pytest.raises(RuntimeError, match='has sha256 .* but 0{64} was expected'):
            download(url, tmp_path/'mnist.pkl.gz', sha256='0'*64)
    assert os.listdir(tmp_path) == []

def test_unreachable_server_fails_fast_says_what_to_do_and_leaves_nothing(tmp_path):
    with pytest.raises(ConnectionError, match=r'Could not download .*If you are offline, put the file at .*f\.bin yourself'):
        download(dead_url(), tmp_path/'f.bin', timeout=5)
    assert os.listdir(tmp_path) == []

@pytest.mark.skipif(not Path('/proc/self/fd').is_dir(), reason="counts open files through /proc")
def test_failed_downloads_leak_no_file_descriptor(tmp_path):
    url, n = dead_url(), len(os.listdir('/proc/self/fd'))
    for _ in range(20):
        with pytest.raises(ConnectionError): download(url, tmp_path/'f.bin', timeout=5)
    assert len(os.listdir('/proc/self/fd')) == n

def test_checksums_in_any_case_with_spaces(tmp_path):
    f = tmp_path/'f.bin'
    f.write_bytes(b'abc')
    m, s = hashlib.md5(b'abc').hexdigest(), hashlib.sha256(b'abc').hexdigest()
    for k in (m, m.upper(), f' {m[:16]} {m[16:]}\n'): assert download('http://127.0.0.1:9/never-asked', f, md5=k) == f
    assert download('http://127.0.0.1:9/never-asked', f, md5=m, sha256=s.upper()) == f

M = hashlib.md5(b'abc').hexdigest()
@pytest.mark.parametrize('kw,exc,msg', [
    (dict(timeout=0), ValueError, 'timeout should be a positive number, but got timeout=0'),
    (dict(timeout=-1), ValueError, 'timeout should be a positive number, but got timeout=-1'),
    (dict(timeout=math.nan), ValueError, 'timeout should be a positive number, but got timeout=nan'),
    (dict(timeout='30'), TypeError, "timeout should be a positive number, but got timeout='30'"),
    (dict(md5=M[:-1]), ValueError, f"md5 should be 32 hexadecimal digits, but got md5='{M[:-1]}'"),
    (dict(md5=M+'0'), ValueError, 'md5 should be 32 hexadecimal digits, but got md5='),
    (dict(md5='x'*32), ValueError, 'md5 should be 32 hexadecimal digits, but got md5='),
    (dict(md5=123), TypeError, 'md5 should be a string of 32 hexadecimal digits, but got md5=123'),
    (dict(sha256=M), ValueError, f"sha256 should be 64 hexadecimal digits, but got sha256='{M}'"),
    (dict(dest='folder'), ValueError, "dest should be the path of a file, but got dest='.*folder', a folder"),
    (dict(dest='folder', md5=M), ValueError, "dest should be the path of a file, but got dest='.*folder', a folder")])
def test_bad_arguments(tmp_path, kw, exc, msg):
    (tmp_path/'folder').mkdir()
    kw = {'dest': tmp_path/'f.bin'} | kw | ({'dest': tmp_path/'folder'} if kw.get('dest') == 'folder' else {})
    with pytest.raises(exc, match=msg): download('http://127.0.0.1:9/never-asked', **kw)
    assert os.listdir(tmp_path) == ['folder']

def test_stale_parts_are_removed_and_live_ones_kept(tmp_path):
    dead = ended_pid()
    parts = [f'f.bin.{dead}.x1.part', f'f.bin.{os.getpid()}.x2.part', f'f.bin.{os.getppid()}.x3.part', 'f.bin.abc123.part',
             f'g.bin.{dead}.x4.part']   # a killed run's; this process's and its parent's, still running; others
    for p in parts: (tmp_path/p).write_bytes(b'partial')
    os.utime(tmp_path/parts[1], (time.time()-3600,)*2)   # however long a live run has waited for its server
    with serve(b'data') as (url, _): download(url, tmp_path/'f.bin', timeout=60)
    assert sorted(os.listdir(tmp_path)) == sorted(['f.bin'] + parts[1:])
    (tmp_path/f'f.bin.{dead}.x5.part').write_bytes(b'partial')
    download('http://127.0.0.1:9/never-asked', tmp_path/'f.bin')   # there already: checked, and the stale part removed
    assert sorted(os.listdir(tmp_path)) == sorted(['f.bin'] + parts[1:])

def test_a_killed_download_leaves_a_part_that_the_next_run_removes(tmp_path):
    asked, hold = threading.Event(), threading.Event()
    with serve(b'data', asked=asked, hold=hold) as (url, _):
        p = start_download(url, tmp_path/'f.bin')
        try: assert asked.wait(120)   # the part is made before the request is sent
        finally: p.kill(); p.join()   # killed mid-transfer, and waited for: its pid is free
        hold.set()
        (part,) = tmp_path.iterdir()
        assert part.name.startswith(f'f.bin.{p.pid}.') and part.name.endswith('.part')
        assert download(url, tmp_path/'f.bin', timeout=300).read_bytes() == b'data'
    assert os.listdir(tmp_path) == ['f.bin']

def test_a_quick_download_leaves_a_slow_ones_part_alone(tmp_path):
    asked, hold = threading.Event(), threading.Event()
    with serve(b'slow', asked=asked, hold=hold) as (slow, _), serve(b'quick') as (quick, _):
        p = start_download(slow, tmp_path/'f.bin')
        try:
            assert asked.wait(120)
            (part,) = tmp_path.iterdir()
            os.utime(part, (time.time()-3600,)*2)   # as if it had waited an hour for its server
            assert download(quick, tmp_path/'f.bin', timeout=300).read_bytes() == b'quick' and part.exists()
            hold.set()
            p.join(300)
        finally: p.kill(); p.join()
    assert p.exitcode == 0 and (tmp_path/'f.bin').read_bytes() == b'slow'   # the slow one finished, and replaced it
    assert os.listdir(tmp_path) == ['f.bin']

def test_timeout_bounds_the_whole_download(tmp_path):
    """A server that sends a byte every 0.1 s, each well within the time a read may take, and would need 100 s for the
    file: the download gives up at its timeout. Only the generous upper bound is timed."""
    with serve(b'x'*1000, step=1, pause=0.1) as (url, _):
        t0 = time.monotonic()
        with pytest.raises(TimeoutError, match=r'took longer than timeout=0.5 s \([\d,]+ bytes so far\)'):
            download(url, tmp_path/'f.bin', timeout=0.5)
        assert time.monotonic()-t0 < 60
    assert os.listdir(tmp_path) == []

def test_an_http_error_says_which(tmp_path):
    with serve(b'', status=404) as (url, _):
        with pytest.raises(RuntimeError, match=f'Could not download {re.escape(url)}: the server answered 404 Not Found') as e:
            download(url, tmp_path/'f.bin')
    assert 'offline' not in str(e.value) and os.listdir(tmp_path) == []

@pytest.mark.skipif(os.name == 'nt', reason="`~` is the folder HOME names")
def test_a_path_in_the_home_folder(tmp_path, monkeypatch):
    monkeypatch.setenv('HOME', str(tmp_path/'home'))
    monkeypatch.chdir(tmp_path)
    with serve(b'data') as (url, _): assert download(url, '~/data/f.bin') == tmp_path/'home'/'data'/'f.bin'
    assert (tmp_path/'home'/'data'/'f.bin').read_bytes() == b'data' and os.listdir(tmp_path) == ['home']

def test_download_returns_existing_file_without_fetching(tmp_path):
    f = tmp_path/'f.bin'
    f.write_bytes(b'abc')
    assert download('http://127.0.0.1:9/never-asked', f, md5=hashlib.md5(b'abc').hexdigest()) == f
