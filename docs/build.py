"""Build the docs site from the notebooks into settings.ini's `doc_path` (`_docs/`), offline, without Quarto.

    python docs/build.py [OUT]

nbdev's own notebook processing (front matter, hidden cells removed, `#|` options) -> a small conversion of Quarto's
conventions to MyST-NB -> Sphinx with myst-nb and sphinx-book-theme (math served locally), warnings as errors.
Notebooks are not run: pages show the outputs committed with them. API entries are Sphinx objects (`py:function`,
`py:class`, ...) rendered from the package's source where nbdev would put `show_doc`, so the index, the module
index, search and `objects.inv` list them. What is a page, an entry or a link is decided in `docs/rules.py`.
"""
import ast, html, importlib, inspect, json, os, re, shutil, sys, tempfile, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))   # the clone this file sits in, whatever miniai is installed
import yaml
from execnb.nbio import read_nb, write_nb, mk_cell as _mk_cell
from fastcore.basics import AttrDict
from fastcore.docments import docments
from nbdev.process import Processor
from nbdev import processors as nbp
import rules
from rules import cfg

site_url = f"{cfg.doc_host}{cfg.doc_baseurl}".rstrip('/') + '/'

def mk_cell(text, cell_type='code'):
    c = _mk_cell(text, cell_type, metadata=AttrDict())
    c.directives_ = {}
    return c

## API entries

def _md_cell(s): return (s or '').replace('|', r'\|').replace('\n', ' ')
def _code(s): return '``' + str(s).replace('|', r'\|') + '``'   # double backticks: the Type column is not linked
def _one_line(s): return re.sub(r'\s*\n\s*', ' ', str(s))

def _options(e):
    o = e.obj
    opts = [f":module: {e.module}"]
    if e.kind == 'method' and inspect.ismethod(o) and inspect.isclass(o.__self__): opts.append(':classmethod:')
    return opts

def entry_md(e):
    "An API entry as a Sphinx object: signature, where it comes from, docstring, and a Type/Default/Details table"
    own = e.line is not None
    doc = inspect.cleandoc(getattr(e.obj, '__doc__', None) or '') if e.kind != 'data' else ''
    if e.kind == 'data': head, opts = e.name, _options(e) + [f":value: {json.dumps(_one_line(rules.value_text(e)))}"]
    else:
        sig = rules.signature(e)
        head, opts = f"{e.name}{_one_line(sig) if sig is not None else ''}", _options(e)
    body = []
    if not own:   # a library's own docs explain its parameters: its first paragraph, and where it comes from
        body.append(f"Re-exported from `{rules.public_module(e.obj)}`." if rules.public_module(e.obj) else "Re-exported from another library.")
        doc = doc.split('\n\n')[0]
    if doc: body.append(doc)
    if own and e.kind != 'data' and (tbl := _table(e)): body.append(tbl)
    return '\n'.join([f"::::{{py:{e.kind}}} {head}", *opts, '', '\n\n'.join(body), '::::'])

def _table(e):
    sig = rules.signature(e)
    if sig is None: return ''
    try: dm = docments(e.obj, args_kwargs=True)
    except (OSError, TypeError, ValueError, SyntaxError): dm = {}
    E = inspect.Parameter.empty
    rows = [[_code(rules.star_name(p)), _code(p.annotation) if p.annotation is not E else '',
             _code(p.default) if p.default is not E else '', _md_cell(dm.get(n))] for n, p in sig.parameters.items()]
    if sig.return_annotation is not E or (dm.get('return') and e.kind not in ('class', 'exception')):
        rows.append(['**Returns**', _code(sig.return_annotation) if sig.return_annotation is not E else '', '', _md_cell(dm.get('return'))])
    if not rows: return ''
    return '\n'.join('| ' + ' | '.join(r) + ' |' for r in [['', '**Type**', '**Default**', '**Details**'], ['--']*4, *rows])

def _entry_cell(e):
    c = mk_cell(entry_md(e), 'markdown')
    c.has_sd = True   # nbdev's mark for a doc cell (`mv_exports` puts `#| exports` source after it)
    return c

class show_docs(Processor):
    "API entries where nbdev puts `show_doc`: in place of each `show_doc(name)` cell, else after the cell that defines them"
    def begin(self):
        p = Path(self.nb.path_).resolve()
        mine = rules.documented_on(p)
        cells = []
        for c in self.nb.cells:
            names = rules.shown_in(c.source) if c.cell_type == 'code' else []
            if names:
                cells += [_entry_cell(e) for n in names for e in mine if e.shown and n in (e.name, e.fullname)]   # (an entry another page shows already is left out)
                continue
            cells.append(c)
            cells += [_entry_cell(e) for e in mine if e.cell is not None and e.cell == c.get('id')]
        reexp = [e for e in mine if e.cell is None and not e.shown]
        if reexp:
            m = reexp[0].module
            cells.append(mk_cell(f"## Also in `{m}`\n\nWhat `{m}` exports without defining it: other libraries' names, "
                                 f"re-exported so that later lessons import them from one place.", 'markdown'))
            cells += [_entry_cell(e) for e in reexp]
        self.nb.cells = cells

## Links

_fence = re.compile(r'^\s*(```|~~~)')
_code_span = re.compile(r'\[[^\]]*\]\([^)]*\)|(?<![`\w])`([\w.]+?)(\(\))?`(?!`)')
class link_names(Processor):
    "Code spans naming an API entry (`fit`, `Learner.fit()`) become links to it; private names have no entry, so no link"
    def begin(self): self.p = Path(self.nb.path_).resolve()
    def link(self, md):
        def sub(m):
            e = m[1] and rules.lookup(m[1], self.p)
            return f"{{py:obj}}`{m[1]}{m[2] or ''} <{e.fullname}>`" if e else m[0]
        lines, fenced = md.splitlines(), False
        for i, l in enumerate(lines):
            if _fence.match(l): fenced = not fenced
            elif not fenced and not l.startswith('    '): lines[i] = _code_span.sub(sub, l)
        return '\n'.join(lines)
    def cell(self, c):
        if c.cell_type == 'markdown': c.source = self.link(c.source)
        for o in c.get('outputs', []):
            if 'text/markdown' in o.get('data', {}): o['data']['text/markdown'] = self.link(''.join(o['data']['text/markdown']))

class Procs(nbp.FilterDefaults):
    "nbdev's processing, with API entries and links from `rules` in place of nbdev's `show_doc` (run in a kernel) and links"
    def base_procs(self):
        swap = {nbp.add_show_docs: show_docs, nbp.add_links: link_names, nbp.exec_show_docs: None, nbp.insert_warning: None}
        return [swap.get(p, p) for p in super().base_procs() if swap.get(p, p) is not None]

## Pages

def include_readme(nb):
    """Quarto's `{{< include ../README.md >}}`, done here with the README's part for learners: its title and `>` line
    become the page's front matter, its introduction follows, then the index notebook's own cells (a first look), then
    the README's sections"""
    for i, c in enumerate(nb.cells):
        m = c.cell_type == 'markdown' and re.search(r'\{\{<\s*include\s+\S*README\.md\s*>\}\}', c.source)
        if not m: continue
        text = rules.home_readme()
        text = re.sub(r'\]\((?!\w+:|#)([^)\s]+)\)', lambda l: f"]({_readme_link(l[1])})", text)
        head, intro, rest = re.match(r'\s*(#\s[^\n]*\n(?:\s*\n)*(?:>[^\n]*\n)?)(.*?)(^##\s.*|)\Z', text, re.S | re.M).groups()
        before, after = c.source.split(m[0], 1)
        nb.cells[i:] = [mk_cell(head, 'markdown'), mk_cell(before + intro, 'markdown'), *nb.cells[i+1:], mk_cell(rest + after, 'markdown')]
        return

def _readme_link(target):
    "README links are relative to the repo root: notebooks stay pages, other files go to the repository"
    nbs = cfg.nbs_path.name + '/'
    return target[len(nbs):] if target.startswith(nbs) else f"{cfg.git_url}/blob/{cfg.branch}/{target}"

def module_header(p):
    "On a module's home page: the module as a Sphinx object, and links to its entries that other pages document"
    m = rules.default_exp(p)
    if not m: return [], []
    mod = importlib.import_module(m)
    synopsis = (mod.__doc__ or '').strip().split('\n')[0].replace('`', '')   # plain text in the module index
    head = [mk_cell(f"```{{py:module}} {m}\n" + (f":synopsis: {synopsis}\n" if synopsis else '') + "```", 'markdown')]
    away = [e for e in rules.entries().values() if e.module == m and e.nb != p]
    if not away: return head, []
    rows = [f"| {{py:obj}}`{e.name} <{e.fullname}>` | [{rules.title(e.nb)}]({rules.page(e.nb)}.html) | "
            f"{_md_cell(inspect.cleandoc(e.obj.__doc__ or '').split(chr(10)*2)[0])} |" for e in away]
    return head, [mk_cell(f"## What `{m}` exports\n\nWritten, and documented, in the lesson that builds each one:\n\n"
                          "| | Documented in | |\n|--|--|--|\n" + '\n'.join(rows), 'markdown')]

def open_in(p):
    "Links that open a lesson's notebook in Colab or Kaggle"
    return mk_cell(f"{{.open-in}}\n[Open in Colab]({rules.colab_url(p)}) [Open in Kaggle]({rules.kaggle_url(p)})", 'markdown')

_widget = 'application/vnd.jupyter.widget-view+json'
def static_widgets(nb):
    "Widgets as a still of what Jupyter shows after the notebook ran, from the widget state saved with it, and a note"
    state = (nb.metadata.get('widgets') or {}).get('application/vnd.jupyter.widget-state+json', {}).get('state', {})
    def still(o):
        m = state.get(o['data'][_widget]['model_id'], {})
        st = m.get('state', {})
        if m.get('model_name') == 'ButtonModel': return f'<button class="widget-still-button" disabled>{html.escape(st.get("description", ""))}</button>'
        if m.get('model_name') == 'OutputModel':
            text = ''.join(x.get('text', '') for x in st.get('outputs', []) if x.get('output_type') == 'stream')
            return f'<pre class="widget-still-output">{html.escape(text)}</pre>' if text else ''
        return f'<pre>{html.escape("".join(o["data"].get("text/plain", "")))}</pre>'
    for c in nb.cells:
        ws = [o for o in c.get('outputs', []) if _widget in o.get('data', {})]
        if not ws: continue
        note = ('<p class="widget-note">In Jupyter this cell shows a live widget: run the notebook to use it. Here is how it '
                'looks once the notebook has run.</p>')
        body = note + '<div class="widget-still">' + ''.join(still(o) for o in ws) + '</div>'
        c.outputs = [o for o in c.outputs if o not in ws] + [AttrDict(output_type='display_data', metadata={}, data={'text/html': body})]

_directive = re.compile(r'^\s*#\|\s*([\w-]+)\s*:?\s*(.*?)\s*$')
def alt_text(code, opts, intro):
    """A plot's alternative text: the cell's `#| fig-alt:` line (Quarto's option), else the last paragraph of the text
    that introduces it, else the statement that drew it"""
    if opts.get('fig-alt'): return opts['fig-alt']
    para = re.split(r'\n\s*\n', intro.strip())[-1] if intro.strip() else ''
    para = re.sub(r'\{py:\w+\}`([^`<]*?)\s*(?:<[^>]*>)?`', r'\1', para)          # our links to API entries
    text = ' '.join(re.sub(r'\[([^\]]*)\]\([^)]*\)|[`*]|^#+\s', lambda m: m[1] or '', para, flags=re.M).split())
    if not text:
        try: text = 'A figure drawn by ' + ' '.join(ast.get_source_segment(code, ast.parse(code).body[-1]).split()).rstrip(';')
        except (SyntaxError, IndexError): text = 'A figure'   # IPython magics
    sents = re.split(r'(?<=[.:?!])\s+(?=[A-Z(])', text)   # a long paragraph: its last sentences, where the picture comes in
    while len(sents) > 1 and len(' '.join(sents)) > 200: sents.pop(0)
    text = ' '.join(sents)
    return text if len(text) <= 200 else text[:200].rsplit(' ', 1)[0] + '…'

def convert(nb, pages, p):
    "Quarto conventions -> MyST-NB: front matter -> title, `#|` options -> tags, `output: asis` -> markdown"
    def md(s):
        s = s.replace('](' + site_url, '](')
        s = re.sub(r'\]\(([\w.-]+)\.ipynb(#[^)]*)?\)', lambda m: f"]({pages.get(m[1], m[1])}.html{m[2] or ''})", s)
        return re.sub(r'^(\s*):::+\s*\{\.callout-(\w+)[^}]*\}\s*$', r'\1:::{\2}', s, flags=re.M)
    static_widgets(nb)
    head, tail = module_header(p)
    cells, intro = [], ''
    for c in nb.cells:
        if c.cell_type == 'markdown' and not c.get('has_sd'): intro = c.source   # (an API entry is no introduction)
        if c.cell_type == 'raw' and c.source.startswith('---'):
            fm = yaml.safe_load(c.source.strip().strip('-'))
            cells.append(mk_cell(f"# {fm['title']}" + (f"\n\n{{.lead}}\n{md(fm['description'])}" if fm.get('description') else ''), 'markdown'))
            if rules.is_lesson(p): cells.append(open_in(p))
            cells += head
            continue
        if c.cell_type == 'markdown': c.source = md(c.source)
        if c.cell_type != 'code': cells.append(c); continue
        lines, opts = c.source.splitlines(), {}
        while lines and (m := _directive.match(lines[0])): opts[m[1]] = m[2] if m[1] == 'fig-alt' else m[2].lower(); lines.pop(0)
        if opts.get('include') == 'false': continue
        if opts.get('output') == 'asis':
            cells += [mk_cell(md(''.join(o['data']['text/markdown'])), 'markdown') for o in c.outputs if 'text/markdown' in o.get('data', {})]
            continue
        tags = [t for k, v, t in [('echo', 'false', 'remove-input'), ('output', 'false', 'remove-output'), ('code-fold', 'true', 'hide-input')] if opts.get(k) == v]
        c.source, c.metadata = '\n'.join(lines), ({'tags': tags} if tags else {})
        if any(k.startswith('image/') for o in c.outputs for k in o.get('data', {})): c.metadata['mystnb'] = {'image': {'alt': alt_text(c.source, opts, intro)}}
        cells.append(c)
    nb.cells = cells + tail
    nb.metadata = {'kernelspec': {'name': 'python3', 'display_name': 'Python 3', 'language': 'python'},
                   'language_info': {'name': 'python', 'pygments_lexer': 'ipython3'}}
    return nb

def build(out):
    from sphinx.cmd.build import build_main
    out = Path(out).resolve()
    os.chdir(rules.root)   # nbdev reads settings.ini from the working folder (its skip_procs among them)
    nbs = rules.notebooks()
    pages = {p.stem: rules.page(p) for p in nbs}
    toc = [('Lessons', [pages[p.stem] for p in nbs if rules.is_lesson(p)]),
           ('Modules', [f"{m} <{pages[p.stem]}>" for m, p in rules.module_homes()] + ['All modules <modindex>', 'Index <genindex>'])]
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp)/'src'
        src.mkdir()
        for p in nbs:
            nb = read_nb(p)
            include_readme(nb)
            Procs()(nb)
            nb = convert(nb, pages, p)
            if p.stem == 'index': nb.cells += [mk_cell(f"```{{toctree}}\n:hidden:\n:caption: {cap}\n\n" + '\n'.join(ps) + "\n```", 'markdown')
                                               for cap, ps in toc if ps]   # the sidebar, in page order
            write_nb(nb, src/f"{pages[p.stem]}.ipynb")
        rc = build_main(['-q', '-W', '--keep-going', '-b', 'html', '-c', str(rules.root/'docs'), '-d', f"{tmp}/doctrees", str(src), f"{tmp}/html"])
        if rc: sys.exit(rc)
        shutil.rmtree(out, ignore_errors=True)
        shutil.move(f"{tmp}/html", out)   # myst-nb writes beside the output folder, so it is built in tmp

if __name__ == '__main__':
    t0, out = time.time(), Path(sys.argv[1] if len(sys.argv) > 1 else cfg.doc_path).resolve()
    build(out)
    print(f"docs built in {time.time()-t0:.1f} s: {out/'index.html'}")
