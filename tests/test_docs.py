"""The docs site as a reader uses it: `python docs/build.py` (Sphinx warnings are errors) into a temp folder,
served on 127.0.0.1 and read in headless Chromium. The lessons come from nbs/, so the checks grow with them.
Screenshots go to `$ARTIFACTS` (default `artifacts/`)."""
import ast, functools, importlib, importlib.util, inspect, json, os, pkgutil, re, subprocess, sys, threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlparse
import pytest
from nbdev.config import get_config
from nbdev.doclinks import _nbpath2html

root = Path(__file__).resolve().parent.parent
cfg = get_config(path=root)
nbs = root/'nbs'
from helpers import CHROMIUM, CHROMIUM_ARGS, ARTIFACTS as artifacts

_missing = [m for m in ('sphinx', 'myst_nb', 'sphinx_book_theme') if importlib.util.find_spec(m) is None]
_missing += [] if Path(CHROMIUM).exists() else [CHROMIUM]
if _missing and not os.environ.get('CI'):   # CI installs both, so there a missing one fails the tests
    pytest.skip(f"docs site needs {', '.join(_missing)}: `pip install -e '.[dev,docs]'`, `apt-get install chromium`", allow_module_level=True)

def _cells(p): return json.loads(p.read_text(encoding='utf-8'))['cells']
def _src(c): return ''.join(c['source'])
def _title(p):
    "A notebook's title: its first `# ` heading (the index takes it from the README it includes)"
    text = '\n'.join(_src(c) for c in _cells(p) if c['cell_type'] == 'markdown')
    if p.stem == 'index': text = (root/'README.md').read_text(encoding='utf-8')
    return re.search(r'^#\s+(.+?)\s*$', text, re.M)[1]
def _page(p): return _nbpath2html(p).name
def _shown(c):
    "A code cell whose outputs the page shows"
    s = _src(c)
    return c['cell_type'] == 'code' and c.get('outputs') and not s.startswith('show_doc(') and not re.search(r'^#\|\s*(hide|output:\s*false|include:\s*false)\b', s, re.M)
def _has_math(p):
    "Markdown with `$...$` outside code spans"
    return any(re.search(r'\$[^$\s][^$]*\$', re.sub(r'`[^`]*`', '', _src(c))) for c in _cells(p) if c['cell_type'] == 'markdown')

notebooks = sorted(p for p in nbs.glob('*.ipynb') if not p.name.startswith(('_', '.')))
lessons = [p for p in notebooks if re.match(r'\d+[a-z]?_', p.name) and not p.name.startswith('00_')]
with_plots = [p for p in lessons if any(_shown(c) and any('image/png' in o.get('data', {}) for o in c['outputs']) for c in _cells(p))]
datasets_nb = nbs/'05_datasets.ipynb'
pytestmark = [pytest.mark.slow, pytest.mark.browser]

@pytest.fixture(scope='module')
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp('docs')/'site'
    res = subprocess.run([sys.executable, root/'docs'/'build.py', out], cwd=root, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, f"python docs/build.py failed (Sphinx warnings count as errors):\n{res.stdout[-3000:]}\n{res.stderr[-8000:]}"
    return out

@pytest.fixture(scope='module')
def base(site):
    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args): pass
    srv = ThreadingHTTPServer(('127.0.0.1', 0), functools.partial(Quiet, directory=str(site)))
    t = threading.Thread(target=srv.serve_forever, daemon=True); t.start()
    yield f"http://127.0.0.1:{srv.server_port}/"
    srv.shutdown(); srv.server_close(); t.join()

outside = []   # every request for something not on 127.0.0.1; each page test asserts there were none

@pytest.fixture(scope='module')
def browser():
    from playwright.sync_api import sync_playwright
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try: yield b
        finally: b.close()

def _route(r):
    u = urlparse(r.request.url)
    if u.scheme in ('data', 'blob') or u.hostname == '127.0.0.1': return r.continue_()
    outside.append(r.request.url); r.abort()

def _new_page(browser, base):
    ctx = browser.new_context(viewport={'width': 1280, 'height': 900})
    ctx.route('**/*', _route)
    pg = ctx.new_page()
    pg.base = base
    return ctx, pg

@pytest.fixture
def page(browser, base):
    ctx, pg = _new_page(browser, base)
    yield pg
    ctx.close()

def visit(page, path):
    page.goto(page.base + path, wait_until='networkidle')
    assert not outside, f"requests left 127.0.0.1: {outside}"
    return page

def h1(page): return page.locator('article h1').first.evaluate("e => { e = e.cloneNode(true); e.querySelectorAll('.headerlink').forEach(a => a.remove()); return e.textContent.trim() }")

def screenshot(page, name, capsys, full_page=True):
    artifacts.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=artifacts/name, full_page=full_page)
    with capsys.disabled(): print(f"\nscreenshot: {artifacts/name}")

def test_home_lists_every_lesson(page, capsys):
    visit(page, 'index.html')
    assert h1(page) == _title(nbs/'index.ipynb')
    screenshot(page, 'docs_home.png', capsys)
    links = page.locator('article a').evaluate_all("as => as.map(a => a.getAttribute('href'))")
    for p in lessons:
        href = next((h for h in links if h and h.split('#')[0] == _page(p)), None)
        assert href, f"the home page has no link to {p.name} ({_page(p)}): add it to the README's lessons table"
        visit(page, 'index.html').locator(f'article a[href="{href}"]').first.click()
        page.wait_for_load_state('networkidle')
        assert page.url.split('#')[0].endswith(_page(p)) and h1(page) == _title(p), p.name
    assert not outside, outside

@pytest.mark.parametrize('nb', notebooks, ids=lambda p: p.name)
def test_page(page, nb, capsys):
    "Title, no `#|` lines, every output learners saw, rendered math"
    visit(page, _page(nb))
    if nb == (with_plots or lessons or [None])[0]:   # the screenshot of a lesson: at its widest plot, if it has one
        page.evaluate("(is => is.length && is.reduce((a, b) => b.naturalWidth > a.naturalWidth ? b : a).scrollIntoView({block: 'center'}))"
                      "([...document.querySelectorAll('article .cell_output img')])")
        screenshot(page, 'docs_lesson.png', capsys, full_page=False)
    assert h1(page) == _title(nb)
    code = page.locator('article pre').all_inner_texts()
    assert not [l for t in code for l in t.splitlines() if l.lstrip().startswith('#|')], f"`#|` lines shown on {_page(nb)}"
    assert page.locator('article .cell_output').count() == sum(1 for c in _cells(nb) if _shown(c))
    if _has_math(nb): assert page.locator('article .math').count(), f"no math on {_page(nb)}"
    if page.locator('article .math').count():   # MathJax, served by the site itself, typesets every formula
        page.wait_for_function("[...document.querySelectorAll('article .math')].every(m => m.querySelector('mjx-container'))", timeout=20_000)

def test_plots_load(page):
    if not with_plots: pytest.skip("no lesson has a plot yet")
    for p in with_plots:
        visit(page, _page(p))
        widths = page.locator('article .cell_output img').evaluate_all("is => is.map(i => i.complete ? i.naturalWidth : 0)")
        assert widths and all(widths), f"{_page(p)}: plot images {widths}"

def _entries(page, path):
    "The API entries (h3 sections) of a page: heading, source links, signature, table rows, text"
    visit(page, path)
    return page.locator('article section:has(> h3)').evaluate_all("""ss => ss.map(s => ({
        page: location.pathname, name: s.querySelector('h3').firstChild.textContent.trim(),
        sources: [...s.querySelectorAll('a')].filter(a => a.textContent.trim() == 'source').map(a => a.href),
        sig: s.querySelector('pre') ? s.querySelector('pre').innerText : '',
        rows: [...(s.querySelector('table')?.querySelectorAll('tbody tr') ?? [])].map(r => [...r.cells].map(c => c.innerText.trim())),
        text: s.innerText.replace(/\\s+/g, ' ')}))""")

def _modules():
    pkg = importlib.import_module(cfg.lib_name)
    return [importlib.import_module(f"{cfg.lib_name}.{m.name}") for m in pkgutil.iter_modules(pkg.__path__) if not m.name.startswith('_')]

def _expected(mod):
    "(name, object, line of its def in the module or None) for each name in `__all__`"
    tree = ast.parse(Path(mod.__file__).read_text(encoding='utf-8'))
    defs = {o.name: o.lineno for o in tree.body if isinstance(o, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
    for n in mod.__all__:
        o = getattr(mod, n)
        if o is None and n in defs:   # `@patch`ed onto a class: documented as `Class.name`
            o = next(getattr(c, n) for c in vars(mod).values() if inspect.isclass(c) and n in vars(c))
        yield n, o, defs.get(n)

def _words(s): return re.sub(r'\W+', ' ', s).strip()
def _docline(o): return _words(inspect.cleandoc(o.__doc__ or '').split('\n\n')[0])

@pytest.fixture(scope='module')
def entries(browser, base):
    ctx, pg = _new_page(browser, base)
    try: return [dict(e, text=_words(e['text'])) for p in notebooks for e in _entries(pg, _page(p))]
    finally: ctx.close()

def test_every_export_has_an_api_entry(entries):
    "Every name in each module's `__all__`: heading, signature, docstring, a row per parameter, source link at its def"
    missing = []
    for mod in _modules():
        rel = Path(mod.__file__).resolve().relative_to(root).as_posix()
        for n, o, line in _expected(mod):
            found = [e for e in entries if e['name'] == n or e['name'].endswith('.' + n)]
            if line:   # defined here: nbdev's entry, linked to the line of its def
                src = f"{cfg.git_url}/blob/{cfg.branch}/{rel}#L{line}"
                found = [e for e in found if src in e['sources']]
                if not found: missing.append(f"{mod.__name__}.{n}: no entry with a source link to {src}"); continue
                e, doc = found[0], _docline(o)
                if not doc: missing.append(f"{mod.__name__}.{n}: no docstring")
                elif doc not in e['text']: missing.append(f"{mod.__name__}.{n}: docstring not shown")
                try: sig = inspect.signature(o)
                except ValueError: continue   # no signature to show, e.g. an exception class without an `__init__` of its own
                if n + '(' not in e['sig']: missing.append(f"{mod.__name__}.{n}: no signature")
                params = [('*' if p.kind == p.VAR_POSITIONAL else '**' if p.kind == p.VAR_KEYWORD else '') + p.name
                          for p in sig.parameters.values() if p.name != 'self']
                if [r[0] for r in e['rows'] if r[0] != 'Returns'] != params: missing.append(f"{mod.__name__}.{n}: table rows {e['rows']}, parameters {params}")
            elif not [e for e in found if _docline(o)[:60] in e['text'] or f"{n} = " in e['sig']]:
                missing.append(f"{mod.__name__}.{n}: no entry for the object it exports ({getattr(o, '__module__', type(o))})")
    assert not missing, '\n'.join(missing)

def test_every_parameter_has_docments(entries):
    "The Details column is filled for each parameter an export declares itself (delegated ones are documented where they come from)"
    empty = []
    for mod in _modules():
        rel, tree = Path(mod.__file__).resolve().relative_to(root).as_posix(), ast.parse(Path(mod.__file__).read_text(encoding='utf-8'))
        for d in (o for o in tree.body if isinstance(o, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and o.name in mod.__all__):
            f = next((o for o in d.body if isinstance(o, ast.FunctionDef) and o.name == '__init__'), None) if isinstance(d, ast.ClassDef) else d
            if f is None: continue
            a = f.args
            own = [p.arg for p in a.posonlyargs + a.args + a.kwonlyargs] + ([f"*{a.vararg.arg}"] if a.vararg else []) + ([f"**{a.kwarg.arg}"] if a.kwarg else [])
            for e in (e for e in entries if (e['name'] == d.name or e['name'].endswith('.' + d.name)) and f"/{rel}#L{d.lineno}" in ' '.join(e['sources'])):
                empty += [f"{mod.__name__}.{d.name}: {r[0]}" for r in e['rows'] if r[0] in own and not r[-1]]
    assert not empty, "parameters without docments:\n" + '\n'.join(sorted(set(empty)))

@pytest.mark.skipif(not datasets_nb.exists(), reason="lesson 05 has not landed")
def test_show_images_has_titles_row(entries):
    e = [e for e in entries if e['name'] == 'show_images' and e['page'].endswith(_page(datasets_nb))]
    assert e and 'titles' in [r[0] for r in e[0]['rows']], e

@pytest.mark.skipif(not datasets_nb.exists(), reason="lesson 05 has not landed")
def test_search_finds_collate_dict(page):
    visit(page, 'search.html?q=collate_dict')
    page.wait_for_selector('#search-results ul.search li a', timeout=20_000)
    hits = page.locator('#search-results ul.search li a').evaluate_all("as => as.map(a => a.getAttribute('href'))")
    assert any(h.split('?')[0].split('#')[0] == _page(datasets_nb) for h in hits), hits
    assert not outside, outside
