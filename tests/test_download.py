"""miniai.download, and lesson 04's download as the lesson runs it, against a small HTTP server on 127.0.0.1: the file
arrives whole and checked; a transfer that breaks off, a wrong file, a trickling server or no server leave nothing
behind, and say what to do."""
import hashlib, json, os, subprocess, sys, tempfile, threading, time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
import pytest
from helpers import DATA, root
from miniai.download import download

MNIST_MD5 = '98100ca27dc0e07ddd9f822cf9d244db'
nb04 = root/'nbs'/'04_minibatch_training.ipynb'

@contextmanager
def serve(body:bytes, send:int=None, pause:float=0):
    "Serve `body` at every path, announcing its full length but sending only its first `send` bytes, `pause` s apart."
    hits = []
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            self.send_response(200)
            self.send_header('Content-Length', str(len(body)))
            self.end_headers()
            try:
                for i in range(0, len(body[:send]), 1000 if pause else len(body) or 1):
                    self.wfile.write(body[i:i+1000] if pause else body[:send]); self.wfile.flush(); time.sleep(pause)
            except (BrokenPipeError, ConnectionResetError): pass   # the client gave up
            self.close_connection = True
        def log_message(self, *args): pass
    srv = ThreadingHTTPServer(('127.0.0.1', 0), Handler)
    srv.daemon_threads = True
    t = threading.Thread(target=srv.serve_forever, daemon=True)
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

def run_lesson_download(cwd, url=None):
    "Run lesson 04's download cells in `cwd`, fetching from `url` (through `MINIAI_MNIST_URL`), or the lesson's own URL."
    env = {k: v for k,v in os.environ.items() if k != 'MINIAI_MNIST_URL'} | ({'MINIAI_MNIST_URL': url} if url else {})
    with tempfile.TemporaryDirectory() as d:   # a file, not `-c`: cells may read their own source (show_doc)
        (script := Path(d)/'lesson_04_download.py').write_text(download_cells())
        return subprocess.run([sys.executable, script], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)

def md5(p): return hashlib.md5(Path(p).read_bytes()).hexdigest()

@pytest.mark.data('mnist')
def test_lesson_downloads_mnist_whole_and_checked(tmp_path):
    src = DATA['mnist'][0]
    if not src.exists(): assert run_lesson_download(root/'nbs').returncode == 0   # online, first run: the real URL
    with serve(src.read_bytes()) as (url, hits):
        res = run_lesson_download(tmp_path, url)
        assert res.returncode == 0, res.stderr[-3000:]
        assert md5(tmp_path/'data'/'mnist.pkl.gz') == MNIST_MD5
        assert os.listdir(tmp_path/'data') == ['mnist.pkl.gz'] and hits == ['/mnist.pkl.gz']
        assert run_lesson_download(tmp_path, url).returncode == 0 and len(hits) == 1   # there already: checked, not fetched

def test_lesson_offline_says_what_to_do(tmp_path):
    res = run_lesson_download(tmp_path, dead_url())
    assert res.returncode != 0 and 'ConnectionError: Could not download' in res.stderr, res.stderr[-3000:]
    assert 'If you are offline, put the file at data/mnist.pkl.gz yourself' in res.stderr
    assert os.listdir(tmp_path/'data') == []

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

def test_corrupt_file_on_disk_is_never_unpickled(tmp_path):
    bad = tmp_path/'data'/'mnist.pkl.gz'
    bad.parent.mkdir()
    bad.write_bytes(b'truncated')   # as an older, interrupted run might have left it
    res = run_lesson_download(tmp_path, 'http://127.0.0.1:9/never-asked')
    assert res.returncode != 0 and 'RuntimeError' in res.stderr, res.stderr[-3000:]
    for s in (str(Path('data')/'mnist.pkl.gz'), MNIST_MD5, 'delete it and run this again'): assert s in res.stderr
    assert bad.read_bytes() == b'truncated'

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
    for k,exc in ((m[:-1], ValueError), (m+'0', ValueError), ('x'*32, ValueError), (123, TypeError)):
        with pytest.raises(exc, match=r'md5 should be .*32 hexadecimal digits, but got md5='): download('http://127.0.0.1:9/', f, md5=k)
    with pytest.raises(ValueError, match='sha256 should be 64 hexadecimal digits'): download('http://127.0.0.1:9/', f, sha256=m)

def test_stale_partial_files_are_removed(tmp_path):
    old, recent = tmp_path/'f.bin.abc123.part', tmp_path/'f.bin.def456.part'
    for p in (old, recent): p.write_bytes(b'partial')
    os.utime(old, (time.time()-3600,)*2)   # left an hour ago by a run that was killed
    with serve(b'data') as (url, _): download(url, tmp_path/'f.bin', timeout=60)
    assert sorted(os.listdir(tmp_path)) == ['f.bin', recent.name]   # a part still being written may be another run's

def test_timeout_bounds_the_whole_download(tmp_path):
    with serve(b'x'*100_000, pause=0.05) as (url, _):   # 1,000 bytes every 0.05 s: 5 s for the whole file
        with pytest.raises(TimeoutError, match=r'took longer than timeout=0.5 s \([\d,]+ bytes so far\)'):
            download(url, tmp_path/'f.bin', timeout=0.5)
    assert os.listdir(tmp_path) == []

@pytest.mark.parametrize('t,exc', [(0, ValueError), (-1, ValueError), (float('nan'), ValueError), ('30', TypeError)])
def test_bad_timeout(tmp_path, t, exc):
    with pytest.raises(exc, match=f'timeout should be a positive number, but got timeout={t!r}'): download('http://127.0.0.1:9/', tmp_path/'f', timeout=t)

def test_download_returns_existing_file_without_fetching(tmp_path):
    f = tmp_path/'f.bin'
    f.write_bytes(b'abc')
    assert download('http://127.0.0.1:9/never-asked', f, md5=hashlib.md5(b'abc').hexdigest()) == f
