"""The docs site as a reader uses it: `python docs/build.py` (Sphinx warnings are errors) into a temp folder,
served on 127.0.0.1 and read in headless Chromium. Which notebooks are pages, and what their names, entries and
links are, comes from `docs/rules.py`, the rules the build follows; what each page should show comes from the
notebooks and the package. Screenshots go to `$ARTIFACTS` (default `artifacts/`)."""
import functools, importlib.util, inspect, json, os, posixpath, re, subprocess, sys, threading
from html.parser import HTMLParser
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urljoin, urlparse
from urllib.request import ProxyHandler, build_opener
import pytest
from helpers import CHROMIUM, CHROMIUM_ARGS, ARTIFACTS as artifacts

root = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(root/'docs'))
import rules
from rules import cfg, cells, src, page, title

_missing = [m for m in ('sphinx', 'myst_nb', 'sphinx_book_theme') if importlib.util.find_spec(m) is None]
_missing += [] if Path(CHROMIUM).exists() else [CHROMIUM]
if _missing and not os.environ.get('CI'):   # CI installs both, so there a missing one fails the tests
    pytest.skip(f"docs site needs {', '.join(_missing)}: `pip install -e '.[dev,docs]'`, `apt-get install chromium`", allow_module_level=True)

def html(p): return page(p) + '.html'
def _shown(c):
    "A code cell whose outputs the page shows"
    s = src(c)
    return c['cell_type'] == 'code' and c.get('outputs') and not rules.shown_in(s) and not re.search(r'^#\|\s*(hide|output:\s*false|include:\s*false)\b', s, re.M)
def _has_math(p):
    "Markdown with `$...$` outside code spans"
    return any(re.search(r'\$[^$\s][^$]*\$', re.sub(r'`[^`]*`', '', src(c))) for c in cells(p) if c['cell_type'] == 'markdown')
WIDGET = 'application/vnd.jupyter.widget-view+json'

notebooks = rules.notebooks()
lessons = [p for p in notebooks if rules.is_lesson(p)]
with_plots = [p for p in lessons if any(_shown(c) and any('image/png' in o.get('data', {}) for o in c['outputs']) for c in cells(p))]
with_widgets = [p for p in notebooks if any(WIDGET in o.get('data', {}) for c in cells(p) for o in c.get('outputs', []))]
datasets_nb = cfg.nbs_path/'05_datasets.ipynb'
pytestmark = [pytest.mark.slow, pytest.mark.browser]

@pytest.fixture(scope='module')
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp('docs')/'site'
    decoy = tmp_path_factory.mktemp('decoy')   # another miniai first on the path: the build documents its own clone
    (decoy/'miniai').mkdir()
    (decoy/'miniai'/'__init__.py').write_text("raise ImportError('the docs build imported a miniai other than the clone it builds')")
    env = os.environ | {'PYTHONPATH': os.pathsep.join([str(decoy), *filter(None, [os.environ.get('PYTHONPATH')])])}
    res = subprocess.run([sys.executable, root/'docs'/'build.py', out], cwd=decoy, env=env, capture_output=True, text=True, timeout=600)
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
def page_(browser, base):
    ctx, pg = _new_page(browser, base)
    yield pg
    ctx.close()

def visit(pg, path):
    pg.goto(pg.base + path, wait_until='networkidle')
    assert not outside, f"requests left 127.0.0.1: {outside}"
    return pg

def h1(pg): return pg.locator('article h1').first.evaluate("e => { e = e.cloneNode(true); e.querySelectorAll('.headerlink').forEach(a => a.remove()); return e.textContent.trim() }")
def h2s(pg): return pg.locator('article h2').evaluate_all("hs => hs.map(h => { h = h.cloneNode(true); h.querySelectorAll('.headerlink').forEach(a => a.remove()); return h.textContent.trim() })")

def screenshot(pg, name, capsys, full_page=True):
    artifacts.mkdir(parents=True, exist_ok=True)
    pg.screenshot(path=artifacts/name, full_page=full_page)
    with capsys.disabled(): print(f"\nscreenshot: {artifacts/name}")

## Pages

def test_home_lists_every_lesson(page_, capsys):
    visit(page_, 'index.html')
    assert h1(page_) == title(cfg.nbs_path/'index.ipynb')
    screenshot(page_, 'docs_home.png', capsys)
    links = page_.locator('article a').evaluate_all("as => as.map(a => a.getAttribute('href'))")
    for p in lessons:
        href = next((h for h in links if h and h.split('#')[0] == html(p)), None)
        assert href, f"the home page has no link to {p.name} ({html(p)}): add it to the README's lessons table"
        visit(page_, 'index.html').locator(f'article a[href="{href}"]').first.click()
        page_.wait_for_load_state('networkidle')
        assert page_.url.split('#')[0].endswith(html(p)) and h1(page_) == title(p), p.name
    assert not outside, outside

def _headings(text): return [re.sub(r'`', '', h) for h in re.findall(r'^##\s+(.+?)\s*$', text, re.M)]

def test_home_first_look_before_readme_sections(page_):
    "The index notebook's own sections (a first look) follow the README's introduction, before its sections"
    own = _headings('\n'.join(src(c) for c in cells(cfg.nbs_path/'index.ipynb') if c['cell_type'] == 'markdown' and '{{<' not in src(c)))
    readme = _headings(rules.home_readme())
    if not own: pytest.skip("the index notebook has no sections of its own")
    assert h2s(visit(page_, 'index.html')) == own + readme

def test_home_is_for_learners(page_):
    "The home page shows the README up to the comment that ends the learner's part: no developer material"
    readme = (root/'README.md').read_text(encoding='utf-8')
    assert rules.HOME_ENDS in readme and _headings(readme.split(rules.HOME_ENDS)[1]), "the README marks where the learner's part ends"
    text = visit(page_, 'index.html').locator('article').inner_text()
    assert not [h for h in _headings(readme.split(rules.HOME_ENDS)[1]) if h in h2s(page_)]
    assert not [w for w in ('nbdev_export', 'localhost', 'pytest', 'assert ') if w in text], text

def test_sidebar_names_every_module(page_):
    "The sidebar's Modules list names each module and opens its page (the notebook that starts it)"
    visit(page_, 'index.html')
    listed = page_.locator('nav.bd-docs-nav p.caption:has-text("Modules") + ul a').evaluate_all("as => as.map(a => [a.innerText.trim(), a.getAttribute('href')])")
    want = [[m, html(p)] for m, p in rules.module_homes()]
    assert [l for l in listed if l[0].startswith(f"{cfg.lib_name}.")] == want
    assert sorted(m for m, _ in want) == sorted(mod.__name__ for mod in rules.modules())

@pytest.mark.parametrize('nb', notebooks, ids=lambda p: p.name)
def test_page(page_, nb, capsys):
    "Title, no `#|` lines, every output learners saw, rendered math"
    visit(page_, html(nb))
    if nb == (with_plots or lessons or [None])[0]:   # the screenshot of a lesson: at its widest plot, if it has one
        page_.evaluate("(is => is.length && is.reduce((a, b) => b.naturalWidth > a.naturalWidth ? b : a).scrollIntoView({block: 'center'}))"
                      "([...document.querySelectorAll('article .cell_output img')])")
        screenshot(page_, 'docs_lesson.png', capsys, full_page=False)
    assert h1(page_) == title(nb)
    code = page_.locator('article pre').all_inner_texts()
    assert not [l for t in code for l in t.splitlines() if l.lstrip().startswith('#|')], f"`#|` lines shown on {html(nb)}"
    assert page_.locator('article .cell_output').count() == sum(1 for c in cells(nb) if _shown(c))
    if _has_math(nb): assert page_.locator('article .math').count(), f"no math on {html(nb)}"
    if page_.locator('article .math').count():   # MathJax, served by the site itself, typesets every formula
        page_.wait_for_function("[...document.querySelectorAll('article .math')].every(m => m.querySelector('mjx-container'))", timeout=20_000)

def test_plots_load(page_):
    if not with_plots: pytest.skip("no lesson has a plot yet")
    for p in with_plots:
        visit(page_, html(p))
        widths = page_.locator('article .cell_output img').evaluate_all("is => is.map(i => i.complete ? i.naturalWidth : 0)")
        assert widths and all(widths), f"{html(p)}: plot images {widths}"

def _fig_alt(c): return (m := re.search(r'^#\|\s*fig-alt:\s*(.+?)\s*$', src(c), re.M)) and m[1]

def test_plots_have_alt_texts(page_):
    "Each plot's alternative text is the cell's `#| fig-alt:` line, else the words that introduce it: never a file's hash"
    for p in with_plots:
        visit(page_, html(p))
        alts = page_.locator('article .cell_output img').evaluate_all("is => is.map(i => i.getAttribute('alt'))")
        want = [_fig_alt(c) for c in cells(p) if _shown(c) for o in c['outputs'] if 'image/png' in o.get('data', {})]
        assert len(alts) == len(want), (alts, want)
        for a, w in zip(alts, want):
            assert a == w if w else a and not re.search(r'[0-9a-f]{32}|\.png|\{py:', a), f"{html(p)}: alt {a!r}"

@pytest.mark.parametrize('nb', lessons, ids=lambda p: p.name)
def test_lesson_opens_in_colab_and_kaggle(page_, nb):
    "Links at the top of each lesson open its notebook, from the repository and branch in settings.ini"
    visit(page_, html(nb))
    user_repo, path = urlparse(cfg.git_url).path.strip('/'), nb.relative_to(root).as_posix()
    want = {'Open in Colab': f"https://colab.research.google.com/github/{user_repo}/blob/{cfg.branch}/{path}",
            'Open in Kaggle': f"https://kaggle.com/kernels/welcome?src=https://github.com/{user_repo}/blob/{cfg.branch}/{path}"}
    for text, url in want.items():
        a = page_.locator('article a', has_text=text)
        assert a.count() == 1 and a.get_attribute('href') == url, f"{html(nb)}: {text} -> {a.all() and a.first.get_attribute('href')}, want {url}"
        above = a.evaluate("a => { const f = document.querySelector('article h2, article .cell'); return !f || !!(a.compareDocumentPosition(f) & Node.DOCUMENT_POSITION_FOLLOWING) }")
        assert above, f"{html(nb)}: {text} is not at the top of the page"
    assert (root/path).exists()

def test_widgets_shown_as_they_look(page_, capsys):
    "A widget output is a still of what Jupyter shows once the notebook ran (from its saved state), and says it is live there"
    if not with_widgets: pytest.skip("no notebook shows a widget")
    for p in with_widgets:
        state = json.loads(p.read_text(encoding='utf-8'))['metadata']['widgets']['application/vnd.jupyter.widget-state+json']['state']
        visit(page_, html(p))
        outs = page_.locator('article .cell_output').evaluate_all("os => os.map(o => o.innerText)")
        stills = [o for o in outs if 'Jupyter' in o]
        want = [[state[o['data'][WIDGET]['model_id']] for o in c['outputs'] if WIDGET in o.get('data', {})] for c in cells(p) if _shown(c)]
        want = [ws for ws in want if ws]
        assert len(stills) == len(want), f"{html(p)}: {len(want)} cells show widgets, {len(stills)} stills: {outs}"
        for text, ws in zip(stills, want):
            for w in ws:
                st = w['state']
                shows = st.get('description') or ''.join(o.get('text', '') for o in st.get('outputs', [])).strip()
                assert shows in text, f"{html(p)}: {w['model_name']} should show {shows!r}: {text!r}"
        page_.locator('.widget-still').first.scroll_into_view_if_needed()
        screenshot(page_, 'docs_widget.png', capsys, full_page=False)

def test_one_search_box(page_):
    visit(page_, html(lessons[0] if lessons else notebooks[0]))
    boxes = page_.locator('.search-button-field, .search-button, input[type=search]').evaluate_all(
        "es => es.filter(e => e.checkVisibility()).map(e => e.outerHTML.slice(0, 80))")
    assert len(boxes) == 1, boxes

@pytest.mark.skipif(not datasets_nb.exists(), reason="lesson 05 has not landed")
def test_search_finds_collate_dict(page_):
    visit(page_, 'search.html?q=collate_dict')
    page_.wait_for_selector('#search-results ul.search li a', timeout=20_000)
    hits = page_.locator('#search-results ul.search li a').evaluate_all("as => as.map(a => a.getAttribute('href'))")
    assert any(h.split('?')[0].split('#')[0] == html(datasets_nb) for h in hits), hits
    assert not outside, outside

## Links

class _Links(HTMLParser):
    "A page's ids, and where its links and resources point"
    def __init__(self, text):
        super().__init__(); self.ids, self.links = set(), []
        self.feed(text)
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if a.get('id'): self.ids.add(a['id'])
        if tag == 'a' and a.get('name'): self.ids.add(a['name'])
        for k in ('href', 'src'):
            if a.get(k) is not None and tag in ('a', 'link', 'img', 'script'): self.links.append((tag, a[k]))

@pytest.fixture(scope='module')
def crawl(site, base):
    "Every page of the site, fetched from the server: from index.html, following links, and every page in the folder"
    todo, seen, pages, missing = ['index.html'] + [f.name for f in site.glob('*.html')], set(), {}, []
    urlopen = build_opener(ProxyHandler({})).open   # straight to 127.0.0.1, whatever proxy the environment names
    while todo:
        u = todo.pop()
        if u in seen: continue
        seen.add(u)
        try: body = urlopen(base + u).read()
        except OSError as e: missing.append(f"{u}: {e}"); continue
        if not u.endswith('.html'): continue
        pages[u] = _Links(body.decode())
        for tag, l in pages[u].links:
            t = urlparse(urljoin(base + u, l))
            if t.scheme in ('http', 'https') and f"{t.scheme}://{t.netloc}/" == base: todo.append(unquote(t.path.lstrip('/')) or 'index.html')
    return pages, missing

def test_every_link_reaches_its_target(crawl, base):
    "Each link on each page goes to a page or file of the site and, with a #fragment, to an element with that id"
    pages, missing = crawl
    assert not missing, missing
    bad = []
    for u, pg in pages.items():
        for tag, l in pg.links:
            t = urlparse(urljoin(base + u, l))
            if f"{t.scheme}://{t.netloc}/" != base or not t.fragment: continue
            target = unquote(t.path.lstrip('/')) or 'index.html'
            if unquote(t.fragment) not in pages[target].ids: bad.append(f"{u}: {l}")
    assert not bad, f"{len(bad)} links to a missing anchor:\n" + '\n'.join(bad)

def test_no_link_to_a_private_name(crawl, base):
    "Private helpers (names starting with `_`) have no entry, so nothing links to one"
    pages, _ = crawl
    bad = [f"{u}: {l}" for u, pg in pages.items() for tag, l in pg.links if rules.is_private(unquote(urlparse(l).fragment))]
    assert not bad, bad

## API entries

def _entries(pg, path):
    "The API entries of a page (Sphinx's `dl.py` objects): id, name, source links, signature, table rows, text"
    visit(pg, path)
    return pg.locator('article dl.py').evaluate_all("""ds => ds.map(d => {
        const dt = d.querySelector(':scope > dt'), dd = d.querySelector(':scope > dd');
        return {page: location.pathname.slice(1), id: dt.id, kind: d.classList[1],
          name: (dt.querySelector('.sig-prename')?.textContent ?? '') + dt.querySelector('.sig-name').textContent,
          sources: [...dt.querySelectorAll('a')].filter(a => a.textContent.trim() == '[source]').map(a => a.href),
          sig: dt.innerText,
          rows: [...(dd.querySelector('table')?.querySelectorAll('tbody tr') ?? [])].map(r => [...r.cells].map(c => c.innerText.trim())),
          text: dd.innerText.replace(/\\s+/g, ' ')}})""")

def _words(s): return re.sub(r'\W+', ' ', s).strip()
def _docline(o): return _words(inspect.cleandoc(o.__doc__ or '').split('\n\n')[0])

def _expected(mod):
    "(documented name, object, line of its def or None): each name in `__all__`, and each `@patch`ed method"
    defs = {e.name: e for e in rules.definitions(mod) if e.line}
    return [(n, getattr(mod, n), defs[n].line if n in defs else None) for n in mod.__all__] + \
           [(e.name, e.obj, e.line) for e in defs.values() if '.' in e.name]

@pytest.fixture(scope='module')
def entries(browser, base):
    ctx, pg = _new_page(browser, base)
    try: return [dict(e, text=_words(e['text'])) for p in notebooks for e in _entries(pg, html(p))]
    finally: ctx.close()

def test_every_export_has_an_api_entry(entries):
    "Every name in each module's `__all__`: signature, docstring, a row per parameter, source link at its def"
    missing = []
    for mod in rules.modules():
        rel = Path(mod.__file__).resolve().relative_to(root).as_posix()
        for n, o, line in _expected(mod):
            found = [e for e in entries if e['id'] == f"{mod.__name__}.{n}"]
            if not found: missing.append(f"{mod.__name__}.{n}: no entry"); continue
            e = found[0]
            if line:   # defined here: linked to the line of its def
                if (src_ := f"{cfg.git_url}/blob/{cfg.branch}/{rel}#L{line}") not in e['sources']: missing.append(f"{mod.__name__}.{n}: no source link to {src_}")
                if not callable(o): continue
                if not (doc := _docline(o)): missing.append(f"{mod.__name__}.{n}: no docstring")
                elif doc not in e['text']: missing.append(f"{mod.__name__}.{n}: docstring not shown")
                try: sig = inspect.signature(o)
                except ValueError: continue   # no signature to show, e.g. an exception class without an `__init__` of its own
                params = [rules.star_name(p) for p in sig.parameters.values() if p.name != 'self']
                if n.split('.')[-1] + ('(' if params else '') not in e['sig']: missing.append(f"{mod.__name__}.{n}: no signature")
                if [r[0] for r in e['rows'] if r[0] != 'Returns'] != params: missing.append(f"{mod.__name__}.{n}: table rows {e['rows']}, parameters {params}")
            elif callable(o) and _docline(o)[:60] not in e['text']: missing.append(f"{mod.__name__}.{n}: no entry for the object it exports ({o.__module__})")
    assert not missing, '\n'.join(missing)

def test_private_names_have_no_entry(entries):
    assert not [e['id'] for e in entries if rules.is_private(e['id'])]

def test_every_parameter_has_docments(entries):
    "The Details column is filled for each parameter an export declares itself (delegated ones are documented where they come from)"
    empty = []
    for e in (e for e in entries if e['sources']):
        d = rules.entries()[e['id']].node
        f = next((o for o in d.body if getattr(o, 'name', None) == '__init__'), None) if d.__class__.__name__ == 'ClassDef' else d
        if f is None or not hasattr(f, 'args'): continue
        a = f.args
        own = [p.arg for p in a.posonlyargs + a.args + a.kwonlyargs] + ([f"*{a.vararg.arg}"] if a.vararg else []) + ([f"**{a.kwarg.arg}"] if a.kwarg else [])
        empty += [f"{e['id']}: {r[0]}" for r in e['rows'] if r[0] in own and not r[-1]]
    assert not empty, "parameters without docments:\n" + '\n'.join(sorted(set(empty)))

def _code(o):
    "The source of `o`'s module and of what `o` delegates its `**kwargs` to (fastcore's `delegates`), without spaces"
    srcs = [inspect.getsource(inspect.getmodule(o))]
    while (o := rules.delegates_to(o)) is not None: srcs.append(inspect.getsource(o))
    return re.sub(r'\s+', '', ''.join(srcs))

def test_types_read_as_the_source_writes_them(entries):
    "Each type in an entry's table is written as in the code it documents (`nn.Module`, not `torch.nn.modules.module.Module`)"
    bad = []
    for e in (e for e in entries if e['rows']):
        code = _code(rules.entries()[e['id']].obj)
        bad += [f"{e['id']}: {r[0]}: {r[1]}" for r in e['rows'] if r[1] and re.sub(r'\s+', '', r[1]) not in code]
    assert not bad, '\n'.join(bad)

@pytest.mark.skipif(not datasets_nb.exists(), reason="lesson 05 has not landed")
def test_show_images_has_titles_row(entries):
    e = [e for e in entries if e['name'] == 'show_images' and e['page'] == html(datasets_nb)]
    assert e and 'titles' in [r[0] for r in e[0]['rows']], e

def test_index_and_inventory_list_every_export(site, page_):
    "Sphinx's objects.inv (for other projects' docs to link to) and the index page list each export, at its entry"
    from sphinx.util.inventory import InventoryFile
    with open(site/'objects.inv', 'rb') as f: inv = InventoryFile.load(f, '', posixpath.join)
    objs = {n: o.uri for kind, d in inv.items() if kind.startswith('py:') for n, o in d.items()}
    want = [f"{mod.__name__}.{n}" for mod in rules.modules() for n, *_ in _expected(mod)]
    assert not [n for n in want if n not in objs], f"not in objects.inv: {[n for n in want if n not in objs]}"
    assert not [n for n in objs if rules.is_private(n)]
    visit(page_, 'genindex.html')
    listed = set(page_.locator('article a').evaluate_all("as => as.map(a => a.getAttribute('href'))"))
    assert not [n for n in want if objs[n] not in listed], f"not in the index: {[n for n in want if objs[n] not in listed]}"

def test_each_module_page_reaches_every_export(page_, capsys):
    """The module index links each module to its page (the notebook that starts it), and that page shows or links to
    every export, wherever the code is written (`miniai.scratch`'s is in lesson 04)"""
    visit(page_, 'py-modindex.html')
    mods = dict(page_.locator('article table a').evaluate_all("as => as.map(a => [a.innerText.trim(), a.getAttribute('href')])"))
    for mod in rules.modules():
        home = next(p for p in notebooks if rules.default_exp(p) == mod.__name__)
        assert mods.get(mod.__name__, '').split('#')[0] == html(home), f"module index: {mod.__name__} -> {mods.get(mod.__name__)}"
        visit(page_, html(home))
        here = set(page_.locator('article dl.py > dt').evaluate_all("ds => ds.map(d => d.id)"))
        linked = {h.split('#')[-1] for h in page_.locator('article a').evaluate_all("as => as.map(a => a.getAttribute('href'))") if h and '#' in h}
        lost = [n for n, *_ in _expected(mod) if f"{mod.__name__}.{n}" not in here | linked]
        assert not lost, f"{html(home)} neither shows nor links to {lost}"
        if rules.is_module_page(home) and not here: screenshot(page_, 'docs_module.png', capsys)
