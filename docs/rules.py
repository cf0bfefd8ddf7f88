"""The docs site's rules, in one place for `docs/build.py`, `docs/conf.py` and `tests/test_docs.py`.

Everything here is derived from `settings.ini`, the notebooks and the package nbdev exports from them:
- the pages: which notebooks, in what order, their page names, lessons (numbered) and module pages (`00_*`);
- the API entries: each public definition of the package (read from its source), the notebook cell it comes from,
  and the page that documents it; names starting with `_` are private and get no entry and no link;
- how a signature reads: parameters named as Python writes them (`*args`, `**kwargs`), with annotations and defaults
  as the source writes them (`nn.Module`, `def_device`), not as the objects print;
- the links out: a definition's source on GitHub, and each lesson in Colab and Kaggle.
"""
import ast, functools, importlib, inspect, json, re, textwrap
from dataclasses import dataclass
from pathlib import Path
from nbdev.config import get_config

cfg = get_config(path=Path(__file__).resolve().parent.parent)
root, lib, nbs = cfg.config_path, cfg.lib_name, cfg.nbs_path
repo_path = re.match(r'https?://github\.com/([^/]+/[^/]+?)(?:\.git)?/?$', cfg.git_url)[1]   # user/repo

## Pages

def is_lesson(p): return bool(re.match(r'\d+[a-z]?_', p.name)) and not is_module_page(p)
def is_module_page(p): return p.name.startswith('00_')   # a module's header, its code written in a lesson
def page_order(p): return (p.stem != 'index', is_module_page(p), p.name)
def notebooks():
    "The notebooks that become pages: the index (it includes the README's part for learners), the lessons by number, then module pages"
    return sorted((p.resolve() for p in nbs.glob('*.ipynb') if not p.name.startswith(('_', '.'))), key=page_order)
def page(p): return re.sub(r'^\d+[a-zA-Z0-9]*_', '', Path(p).stem.lower())   # nbdev's page name: 04_minibatch_training -> minibatch_training

HOME_ENDS = "<!-- the docs site's home page ends here"
def home_readme():
    "The README's part for learners, which the docs site's home page includes: up to the comment that ends it"
    return (root/'README.md').read_text(encoding='utf-8').split(HOME_ENDS)[0]

def module_homes():
    "(module, notebook) for each module, in page order: the notebook that starts it with `#| default_exp` is its page"
    return [(m, p) for p in notebooks() if (m := default_exp(p))]

def cells(p): return json.loads(Path(p).read_text(encoding='utf-8'))['cells']
def src(c): return ''.join(c['source']) if isinstance(c['source'], list) else c['source']

def title(p):
    "A notebook's title: its first `# ` heading (the index takes it from the README it includes)"
    text = (root/'README.md').read_text(encoding='utf-8') if Path(p).stem == 'index' else '\n'.join(src(c) for c in cells(p) if c['cell_type'] == 'markdown')
    return re.search(r'^#\s+(.+?)\s*$', text, re.M)[1]

def default_exp(p):
    "The module a notebook starts with `#| default_exp` (its home page), or None"
    m = next((re.search(r'^#\|\s*default_exp\s+(\S+)', src(c), re.M) for c in cells(p) if c['cell_type'] == 'code' and 'default_exp' in src(c)), None)
    return m and f"{lib}.{m[1]}"

def colab_url(p): return f"https://colab.research.google.com/github/{repo_path}/blob/{cfg.branch}/{_repo_file(p)}"
def kaggle_url(p): return f"https://kaggle.com/kernels/welcome?src=https://github.com/{repo_path}/blob/{cfg.branch}/{_repo_file(p)}"
def _repo_file(p): return Path(p).resolve().relative_to(root).as_posix()

## Names

def is_private(name): return any(s.startswith('_') for s in name.split('.'))
def star_name(p): return ('*' if p.kind == p.VAR_POSITIONAL else '**' if p.kind == p.VAR_KEYWORD else '') + p.name

## API entries

@dataclass
class Entry:
    "A documented object: `module.name` (name is dotted for methods), where its code is, and the page documenting it"
    module: str
    name: str
    obj: object
    nb: Path = None      # the notebook whose page documents it
    cell: str = None     # the id of the notebook cell it is written in (None: shown where `show_doc` names it)
    line: int = None     # the line of its def or assignment in the module's file (None: re-exported from elsewhere)
    node: ast.AST = None # its def, class or assignment
    shown: bool = False  # documented where a `show_doc(name)` cell asks for it
    @property
    def fullname(self): return f"{self.module}.{self.name}"
    @property
    def kind(self):
        o = self.obj
        if inspect.isclass(o): return 'exception' if issubclass(o, BaseException) else 'class'
        if not callable(o): return 'data'
        return 'method' if '.' in self.name else 'function'
    @property
    def source_url(self):
        if self.line is None: return None
        return f"{cfg.git_url}/blob/{cfg.branch}/{Path(importlib.import_module(self.module).__file__).resolve().relative_to(root).as_posix()}#L{self.line}"

def modules():
    "The package's public modules"
    return [importlib.import_module(f"{lib}.{f.stem}") for f in sorted(cfg.lib_path.glob('*.py')) if not f.name.startswith('_')]

_cell_marker = re.compile(r'^# %% (\S+\.ipynb) #(\w+)')
def _patched_class(d):
    "`Learner` for a `@patch`ed `def fit(self:Learner, ...)`, else None"
    decos = [ast.unparse(o.func if isinstance(o, ast.Call) else o) for o in getattr(d, 'decorator_list', [])]
    if isinstance(d, ast.FunctionDef) and any(s.split('.')[-1] == 'patch' for s in decos) and d.args.args and d.args.args[0].annotation:
        return ast.unparse(d.args.args[0].annotation)

def definitions(mod):
    "Entries for what `mod` defines (public defs, classes, `@patch`ed methods, assignments in `__all__`) and re-exports"
    path = Path(mod.__file__)
    text = path.read_text(encoding='utf-8')
    marks = [(i+1, (path.parent/m[1]).resolve(), m[2]) for i, l in enumerate(text.splitlines()) if (m := _cell_marker.match(l))]
    def where(line): return next(((nb, cell) for l, nb, cell in reversed(marks) if l < line), (None, None))
    res, defined = [], set()
    for d in ast.parse(text).body:
        if isinstance(d, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)): names = [d.name]
        elif isinstance(d, (ast.Assign, ast.AnnAssign)): names = [t.id for t in getattr(d, 'targets', [getattr(d, 'target', None)]) if isinstance(t, ast.Name) and t.id in mod.__all__]
        else: continue
        cls = _patched_class(d)
        for n in names:
            if is_private(n): continue
            name, obj = (f"{cls}.{n}", getattr(getattr(mod, cls), n)) if cls else (n, getattr(mod, n))
            nb, cell = where(d.lineno)
            res.append(Entry(mod.__name__, name, obj, nb, cell, d.lineno, d))
            defined.add(n)
    home = next((p for p in notebooks() if default_exp(p) == mod.__name__), None)
    res += [Entry(mod.__name__, n, getattr(mod, n), home) for n in mod.__all__ if n not in defined and not is_private(n)]
    return res

_show_doc = re.compile(r'^\s*show_doc\(\s*([\w.]+)\s*(?:,[^)]*)?\)\s*$', re.M)
def shown_in(source): return _show_doc.findall(source)
def shown(p):
    "The public names a notebook documents explicitly with `show_doc(name)`, in order (a private one gets no entry)"
    return [n for c in cells(p) if c['cell_type'] == 'code' for n in shown_in(src(c)) if not is_private(n)]

def _method(cls_entry, name):
    "The entry of a method defined in a documented class's body, for `show_doc(Class.method)`"
    d = next((o for o in cls_entry.node.body if isinstance(o, (ast.FunctionDef, ast.AsyncFunctionDef)) and o.name == name), None)
    if d is None: return None
    return Entry(cls_entry.module, f"{cls_entry.name}.{name}", getattr(cls_entry.obj, name), cls_entry.nb, None, d.lineno, d)

@functools.cache
def entries():
    """Every API entry, each documented once: where a notebook calls `show_doc` on it, else right after the cell that
    defines it (nbdev's rule); a module's re-exports at the end of its home page. Dict of fullname -> Entry, page order"""
    defs = [e for m in modules() for e in definitions(m)]
    res = {}
    for p in notebooks():
        for n in shown(p):
            own = [e for e in defs if e.name == n or e.fullname == n]
            e = next((e for e in own if e.nb == p), own[0] if own else None)
            if e is None and '.' in n:
                cls = next((e for e in defs if e.name == n.rsplit('.', 1)[0] and e.kind in ('class', 'exception')), None)
                e = cls and _method(cls, n.rsplit('.', 1)[1])
            if e is None: raise ValueError(f"{p.name}: `show_doc({n})` names no public definition of {lib}: the docs show only "
                                           f"the package's own API (entries come from its source)")
            res.setdefault(e.fullname, Entry(e.module, e.name, e.obj, p, None, e.line, e.node, shown=True))
    for e in defs: res.setdefault(e.fullname, e)
    order = {p: i for i, p in enumerate(notebooks())}
    return dict(sorted(res.items(), key=lambda kv: order.get(kv[1].nb, len(order))))

def documented_on(p): return [e for e in entries().values() if e.nb == p]

@functools.cache
def namespace(p):
    "What the package's names mean in notebook `p`: its module's namespace, then what it imports from the package"
    ns = {}
    for c in cells(p):
        if c['cell_type'] != 'code': continue
        try: tree = ast.parse(src(c))
        except SyntaxError: continue   # a cell with IPython magics
        for o in ast.walk(tree):
            if isinstance(o, ast.ImportFrom) and o.module and o.module.split('.')[0] == lib:
                mod = importlib.import_module(o.module)
                for a in o.names:
                    if a.name == '*': ns.update({n: getattr(mod, n) for n in getattr(mod, '__all__', [])})
                    elif hasattr(mod, a.name): ns[a.asname or a.name] = getattr(mod, a.name)
    if m := default_exp(p): ns.update({n: o for n, o in vars(importlib.import_module(m)).items() if not n.startswith('_')})
    return ns

def resolve(name, mod):
    "The object a dotted `name` means in module `mod`, or None"
    return functools.reduce(lambda o, a: getattr(o, a, None), name.split('.'), mod) if mod else None

def by_object(o):
    "The entry documenting object `o`: its definition rather than a re-export; None if it has none"
    if o is None: return None
    return min((e for e in entries().values() if e.obj is o), key=lambda e: e.line is None, default=None)

def lookup(name, p=None):
    """The entry a code span `name` on notebook `p`'s page means (`fit`, `Learner.fit`, `training.fit` or `miniai.training.fit`):
    one the page documents (definitions before re-exports), else the object the name is bound to in the notebook's
    module and imports, else any entry of that name; None for names with no entry, such as private ones"""
    if is_private(name): return None
    es = [e for e in entries().values() if name in (e.name, e.fullname, e.fullname.removeprefix(f"{lib}."))]
    o = namespace(p).get(name) if p else None
    def rank(e): return (0, e.line is None) if e.nb == p else (1, e.obj is not o, e.line is None)
    return min(es, key=rank, default=None)

## Signatures, as the source writes them

class _Text:
    "An annotation or default that prints as the given source text"
    def __init__(self, s): self.s = s
    def __repr__(self): return self.s

def _fn_node(f):
    "The def of `f` (a class: its `__init__`) and the source it was parsed from, or (None, None) without source"
    if inspect.isclass(f): f = f.__init__
    try: text = textwrap.dedent(inspect.getsource(f)); d = ast.parse(text).body[0]
    except (OSError, TypeError, SyntaxError, IndexError): return None, None
    return (d, text) if isinstance(d, (ast.FunctionDef, ast.AsyncFunctionDef)) else (None, None)

def delegates_to(f):
    "What `f` passes its `**kwargs` on to, from its `@delegates(to)` decorator (fastcore's), or None"
    d, _ = _fn_node(f)
    for o in (d.decorator_list if d else []):
        if isinstance(o, ast.Call) and ast.unparse(o.func).split('.')[-1] == 'delegates' and o.args:
            return resolve(ast.unparse(o.args[0]), inspect.getmodule(f))

def _source_params(f):
    "name -> (annotation, default) as written in `f`'s source, and in the sources of what it delegates to"
    (d, text), res = _fn_node(f), {}
    if (to := delegates_to(f)) is not None: res.update(_source_params(to))
    if d is None: return res
    a, seg = d.args, lambda o: o and ast.get_source_segment(text, o)
    pos = a.posonlyargs + a.args
    pdefs = [None]*(len(pos)-len(a.defaults)) + a.defaults
    for arg, dflt in [*zip(pos, pdefs), *zip(a.kwonlyargs, a.kw_defaults), (a.vararg, None), (a.kwarg, None)]:
        if arg: res[arg.arg] = (seg(arg.annotation), seg(dflt))
    res['return'] = (seg(d.returns), None)
    return res

def public_module(o):
    "The shortest module `o` is imported from: `torch.nn` for `torch.nn.modules.module.Module`; its own module if none"
    mod, qn = getattr(o, '__module__', None), getattr(o, '__qualname__', None)
    if not (mod and qn): return mod
    parts = mod.split('.')
    for i in range(1, len(parts)+1):
        try: m = importlib.import_module('.'.join(parts[:i]))
        except ImportError: continue
        if resolve(qn, m) is o: return m.__name__
    return mod

def anno_text(a):
    "An annotation object as text, where the source gives none"
    if isinstance(a, str): return a
    if isinstance(a, type) or inspect.isroutine(a):
        return a.__qualname__ if a.__module__ in ('builtins', None) or a.__module__.split('.')[0] == lib else f"{public_module(a)}.{a.__qualname__}"
    return inspect.formatannotation(a)

def default_text(d):
    if inspect.isclass(d) or inspect.isfunction(d) or inspect.isbuiltin(d): return d.__name__
    return repr(d)

E = inspect.Parameter.empty
def signature(e):
    "The entry's signature with annotations and defaults as its source writes them; None when it has none"
    try: sig = inspect.signature(e.obj)
    except (ValueError, TypeError): return None
    srcp = _source_params(e.obj)
    ps = list(sig.parameters.values())
    if e.kind == 'method' and inspect.isfunction(e.obj) and ps: ps = ps[1:]   # `self`
    def fix(p):
        a, d = srcp.get(p.name, (None, None))
        return p.replace(annotation=_Text(a) if a else E if p.annotation is E else _Text(anno_text(p.annotation)),
                         default=E if p.default is E else _Text(d if d else default_text(p.default)))
    ret = srcp.get('return', (None,))[0]
    ret = E if e.kind in ('class', 'exception') else _Text(ret) if ret else E if sig.return_annotation is E else _Text(anno_text(sig.return_annotation))
    return sig.replace(parameters=[fix(p) for p in ps], return_annotation=ret)

def value_text(e):
    "A data entry's value as its source writes it, or its repr when re-exported"
    if isinstance(e.node, (ast.Assign, ast.AnnAssign)) and e.node.value is not None:
        return ast.get_source_segment(Path(importlib.import_module(e.module).__file__).read_text(encoding='utf-8'), e.node.value)
    return repr(e.obj)
