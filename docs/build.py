"""Build the docs site from the notebooks into settings.ini's `doc_path` (`_docs/`), offline, without Quarto.

    python docs/build.py [OUT]

nbdev's own notebook processing (front matter, hidden cells removed, `show_doc` added and run for every
export) -> a small conversion of Quarto's conventions to MyST-NB -> Sphinx with myst-nb and
sphinx-book-theme (math served locally), warnings as errors. Notebooks are not run: pages show the outputs
committed with them. Page order: the index (it includes README.md), the lessons by number, then module pages
(`00_*.ipynb`: a module's header, not a lesson).
"""
import ast, functools, importlib, inspect, os, re, shutil, sys, tempfile, time
from pathlib import Path
import yaml
from execnb.nbio import read_nb, write_nb, mk_cell as _mk_cell
from fastcore.basics import AttrDict
from fastcore.docments import docments, qual_name
from nbdev.config import get_config
from nbdev.doclinks import NbdevLookup, _nbpath2html
from nbdev.processors import FilterDefaults
import nbdev.showdoc

cfg = get_config()
root, lib = cfg.config_path, cfg.lib_name
site_url = f"{cfg.doc_host}{cfg.doc_baseurl}".rstrip('/') + '/'

@functools.cache
def _lookup(): return NbdevLookup()

def mk_cell(text, cell_type='code'): return _mk_cell(text, cell_type, metadata=AttrDict())

def _sig(sym):
    try: return inspect.signature(sym, eval_str=True)
    except NameError: return inspect.signature(sym)   # annotations naming what a library imports only to type-check
    except (ValueError, TypeError): return None

E = inspect.Parameter.empty
def _anno(a):   # our classes by name (nbdev links them); others in full, so that a `Module` is not taken for ours
    if isinstance(a, type) and a.__module__.split('.')[0] in (lib, '__main__'): return a.__qualname__
    return a if isinstance(a, str) else inspect.formatannotation(a)
def _name(p): return ('*' if p.kind == p.VAR_POSITIONAL else '**' if p.kind == p.VAR_KEYWORD else '') + p.name
def _default(d): return getattr(d, '__name__', None) or repr(d)
def _param(p): return _name(p) + (f":{_anno(p.annotation)}" if p.annotation is not E else '') + (f"={_default(p.default)}" if p.default is not E else '')
def _md_cell(s): return (s or '').replace('|', r'\|')
def _code(s): return '`' + str(s).replace('|', r'\|') + '`'

class ApiEntry:
    "`show_doc` as an API entry: heading, source link, signature, docstring, Type/Default/Details table from docments"
    def __init__(self, sym, name=None, title_level=3): self.sym, self.nm, self.level = sym, name or qual_name(sym), title_level
    def _repr_markdown_(self):
        sym, nm = self.sym, self.nm
        qid, md = nm.lower(), [f"{'#'*self.level} {nm}"]
        if re.sub(r'[^a-z0-9]+', '-', qid) != qid: md.append(f'<span id="{qid}"></span>')   # Quarto's anchor, used by nbdev's links
        if not (callable(sym) or inspect.isclass(sym)): return '\n\n'.join(md + [f"```python\n{nm} = {repr(sym)[:300]}\n```"])
        mod = getattr(sym, '__module__', None) or ''
        own = mod == '__main__' or mod.split('.')[0] == lib   # defined in the notebook being processed, or in our package
        src, doc = own and _lookup().code(qual_name(sym)), inspect.cleandoc(sym.__doc__ or '')
        if src: md.append(f"[source]({src}){{.api-source}}")
        elif not own: md.append(f"Re-exported from `{mod}`."); doc = doc.split('\n\n')[0]
        sig = _sig(sym)
        if sig is not None: md.append(f"```python\n{self._sig_str(sig)}\n```")
        if doc: md.append(doc)
        if sig is not None and own and (tbl := self._table(sig)): md.append(tbl)   # a library's own docs explain its parameters
        return '\n\n'.join(md)
    def _sig_str(self, sig):
        ps, ret = [_param(p) for p in sig.parameters.values()], sig.return_annotation
        ret = '' if ret is E or inspect.isclass(self.sym) else f" -> {_anno(ret)}"
        s = f"{self.nm}({', '.join(ps)}){ret}"
        if len(s) > 88: s = f"{self.nm}(\n" + ''.join(f"    {p},\n" for p in ps) + f"){ret}"
        return ('class ' if inspect.isclass(self.sym) else '') + s
    def _table(self, sig):
        try: dm = docments(self.sym, args_kwargs=True)
        except (OSError, TypeError, ValueError, SyntaxError): dm = {}
        rows = [[_code(_name(p)), _code(_anno(p.annotation)) if p.annotation is not E else '',
                 _code(_default(p.default)) if p.default is not E else '', _md_cell(dm.get(n))] for n, p in sig.parameters.items() if n != 'self']
        ret = sig.return_annotation
        if (ret is not E and not inspect.isclass(self.sym)) or dm.get('return'):
            rows.append(['**Returns**', _code(_anno(ret)) if ret is not E else '', '', _md_cell(dm.get('return'))])
        if not rows: return ''
        return '\n'.join('| ' + ' | '.join(r) + ' |' for r in [['', '**Type**', '**Default**', '**Details**'], ['--']*4, *rows])

def page_order(p):
    "index, then lessons by number, then module pages (00_*)"
    return (p.stem != 'index', p.name.startswith('00_'), p.name)

def notebooks(): return sorted((p for p in cfg.nbs_path.glob('*.ipynb') if not p.name.startswith(('_', '.'))), key=page_order)

def include_readme(nb):
    "Quarto's `{{< include ../README.md >}}`, done here: the README's title and `>` line become the page's front matter"
    for i, c in enumerate(nb.cells):
        m = c.cell_type == 'markdown' and re.search(r'\{\{<\s*include\s+(\S+)\s*>\}\}', c.source)
        if not m: continue
        text = (cfg.nbs_path/m[1]).read_text(encoding='utf-8')
        text = re.sub(r'\]\((?!\w+:|#)([^)\s]+)\)', lambda l: f"]({_readme_link(l[1])})", text)
        head, body = re.match(r'\s*(#\s[^\n]*\n(?:\s*\n)*(?:>[^\n]*\n)?)(.*)', text, re.S).groups()
        nb.cells[i:i+1] = [mk_cell(head, 'markdown'), mk_cell(c.source.replace(m[0], body), 'markdown')]
        return

def _readme_link(target):
    "README links are relative to the repo root: notebooks stay pages, other files go to the repository"
    nbs = cfg.nbs_path.name + '/'
    return target[len(nbs):] if target.startswith(nbs) else f"{cfg.git_url}/blob/{cfg.branch}/{target}"

def add_reexports(nb):
    "API entries for what a module exports but does not define with def/class (nbdev documents only those)"
    exp = next((re.match(r'#\|\s*default_exp\s+(\S+)', c.source) for c in nb.cells if c.cell_type == 'code' and 'default_exp' in c.source), None)
    if not exp: return
    mod = importlib.import_module(f"{lib}.{exp[1]}")
    defs = {o.name for o in ast.parse(Path(mod.__file__).read_text(encoding='utf-8')).body if isinstance(o, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
    nms = [n for n in getattr(mod, '__all__', []) if n not in defs]
    if not nms: return
    nb.cells += [mk_cell(f"## Also in `{mod.__name__}`\n\nWhat `{mod.__name__}` exports without defining it with `def` or "
                         f"`class`: constants, and other libraries' names, re-exported so that later lessons import "
                         f"them from one place.", 'markdown'),
                 mk_cell(f"#| hide\nimport {mod.__name__}")] + [mk_cell(f"show_doc({mod.__name__}.{n}, name='{n}')") for n in nms]
    # (qualified, so that nbdev still documents the notebook's own definitions of these names)

_directive = re.compile(r'^\s*#\|\s*([\w-]+)\s*:?\s*(.*?)\s*$')
def convert(nb, pages):
    "Quarto conventions -> MyST-NB: front matter -> title, `#|` options -> tags, show_doc output -> markdown"
    def md(s):
        s = s.replace('](' + site_url, '](')
        s = re.sub(r'\]\(([\w.-]+)\.ipynb(#[^)]*)?\)', lambda m: f"]({pages.get(m[1], m[1])}.html{m[2] or ''})", s)
        return re.sub(r'^(\s*):::+\s*\{\.callout-(\w+)[^}]*\}\s*$', r'\1:::{\2}', s, flags=re.M)
    cells = []
    for c in nb.cells:
        if c.cell_type == 'raw' and c.source.startswith('---'):
            fm = yaml.safe_load(c.source.strip().strip('-'))
            cells.append(mk_cell(f"# {fm['title']}" + (f"\n\n{{.lead}}\n{md(fm['description'])}" if fm.get('description') else ''), 'markdown'))
            continue
        if c.cell_type == 'markdown': c.source = md(c.source)
        if c.cell_type != 'code': cells.append(c); continue
        lines, opts = c.source.splitlines(), {}
        while lines and (m := _directive.match(lines[0])): opts[m[1]] = m[2].lower(); lines.pop(0)
        if opts.get('include') == 'false': continue
        if opts.get('output') == 'asis':   # show_doc: its markdown becomes part of the page, so entries are sections
            cells += [mk_cell(md(''.join(o['data']['text/markdown'])), 'markdown') for o in c.outputs if 'text/markdown' in o.get('data', {})]
            continue
        tags = [t for k, v, t in [('echo', 'false', 'remove-input'), ('output', 'false', 'remove-output'), ('code-fold', 'true', 'hide-input')] if opts.get(k) == v]
        c.source, c.metadata = '\n'.join(lines), ({'tags': tags} if tags else {})
        cells.append(c)
    nb.cells = cells
    nb.metadata = {'kernelspec': {'name': 'python3', 'display_name': 'Python 3', 'language': 'python'},
                   'language_info': {'name': 'python', 'pygments_lexer': 'ipython3'}}
    return nb

def build(out):
    from sphinx.cmd.build import build_main
    nbdev.showdoc.BasicMarkdownRenderer = ApiEntry   # the renderer nbdev's show_doc uses when settings.ini names none
    nbs = notebooks()
    pages = {p.stem: _nbpath2html(p).stem for p in nbs}
    toc = [('Lessons', [pages[p.stem] for p in nbs if p.stem != 'index' and not p.name.startswith('00_')]),
           ('Modules', [pages[p.stem] for p in nbs if p.name.startswith('00_')])]
    with tempfile.TemporaryDirectory() as tmp:
        src, cwd = Path(tmp)/'src', os.getcwd()
        src.mkdir()
        os.environ['IN_TEST'] = '1'; os.chdir(cfg.nbs_path)   # as nbdev's own processing runs them
        try:
            for p in nbs:
                nb = read_nb(p)
                include_readme(nb); add_reexports(nb)
                try: FilterDefaults()(nb)
                except Exception as e: raise SystemExit(f"{p.name}: {e}\nnbdev's processing runs export cells and every cell that imports "
                                                        "something (show_doc needs them): keep imports in cells of their own (nbdev's FAQ)") from e
                nb = convert(nb, pages)
                if p.stem == 'index': nb.cells += [mk_cell(f"```{{toctree}}\n:hidden:\n:caption: {cap}\n\n" + '\n'.join(ps) + "\n```", 'markdown')
                                                   for cap, ps in toc if ps]   # the sidebar, in page order
                write_nb(nb, src/f"{pages[p.stem]}.ipynb")
        finally: os.chdir(cwd); os.environ.pop('IN_TEST')
        rc = build_main(['-q', '-W', '--keep-going', '-b', 'html', '-c', str(root/'docs'), '-d', f"{tmp}/doctrees", str(src), f"{tmp}/html"])
        if rc: sys.exit(rc)
        shutil.rmtree(out, ignore_errors=True)
        shutil.move(f"{tmp}/html", out)   # myst-nb writes beside the output folder, so it is built in tmp

if __name__ == '__main__':
    t0, out = time.time(), Path(sys.argv[1] if len(sys.argv) > 1 else cfg.doc_path).resolve()
    build(out)
    print(f"docs built in {time.time()-t0:.1f} s: {out/'index.html'}")
