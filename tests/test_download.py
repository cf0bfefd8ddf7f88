"""Lesson 04's download, as the lesson runs it, against a small HTTP server on 127.0.0.1: the file arrives whole and
checked, and a transfer that breaks off, a wrong file or an unreachable server leave nothing behind."""
import hashlib, json, os, subprocess, sys, tempfile, threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
import pytest
from helpers import DATA, root
from miniai.training import download

MNIST_MD5 = '98100ca27dc0e07ddd9f822cf9d244db'
nb04 = root/'nbs'/'04_minibatch_training.ipynb'

@contextmanager
def serve(body:bytes, send:int=None):
    "Serve `body` at every path, announcing its full length but sending only its first `send` bytes; yield (url, hits)."
    hits = []
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            self.send_response(200)
            self.send_header('Content-Length', str(len(body)))
            self.end_headers()
            self.wfile.write(body[:send])
            self.close_connection = True
        def log_message(self, *args): pass
    srv = ThreadingHTTPServer(('127.0.0.1', 0), Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try: yield f'http://127.0.0.1:{srv.server_port}/mnist.pkl.gz', hits
    finally: srv.shutdown(); srv.server_close(); t.join()

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
    with tempfile.TemporaryDirectory() as d:   # a file, not `-c`: the cells read their own source (show_doc)
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

def test_interrupted_transfer_leaves_no_file(tmp_path):
    with serve(b'x'*300_000, send=100_000) as (url, hits):
        res = run_lesson_download(tmp_path, url)
    assert res.returncode != 0 and 'broke off after 100,000 of 300,000 bytes' in res.stderr, res.stderr[-3000:]
    assert hits and os.listdir(tmp_path/'data') == []

def test_wrong_file_is_not_kept(tmp_path):
    with serve(b'not mnist') as (url, _):
        with pytest.raises(RuntimeError, match=f'downloaded from {url} has md5 .* but {MNIST_MD5} was expected'):
            download(url, tmp_path/'mnist.pkl.gz', md5=MNIST_MD5)
    assert os.listdir(tmp_path) == []

def test_corrupt_file_on_disk_is_never_unpickled(tmp_path):
    bad = tmp_path/'data'/'mnist.pkl.gz'
    bad.parent.mkdir()
    bad.write_bytes(b'truncated')   # as an older, interrupted run might have left it
    res = run_lesson_download(tmp_path, 'http://127.0.0.1:9/never-asked')
    assert res.returncode != 0 and 'RuntimeError' in res.stderr, res.stderr[-3000:]
    for s in (str(Path('data')/'mnist.pkl.gz'), MNIST_MD5, 'delete it and run this again'): assert s in res.stderr
    assert bad.read_bytes() == b'truncated'

def test_unreachable_server_fails_fast_and_leaves_nothing(tmp_path):
    with serve(b'') as (url, _): pass   # the port is free again: nothing listens there
    with pytest.raises(OSError): download(url, tmp_path/'f.bin', timeout=5)
    assert os.listdir(tmp_path) == []

def test_download_returns_existing_file_without_fetching(tmp_path):
    f = tmp_path/'f.bin'
    f.write_bytes(b'abc')
    assert download('http://127.0.0.1:9/never-asked', f, md5=hashlib.md5(b'abc').hexdigest()) == f
