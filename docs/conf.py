"Sphinx configuration for the docs site built by docs/build.py; the project's facts come from settings.ini, via docs/rules.py."
import inspect, sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).parent))
import rules
c = rules.cfg

project, author, copyright, release = c.title, c.author, c.copyright, c.version
extensions = ['myst_nb', 'sphinx-mathjax-offline', 'sphinx.ext.linkcode']   # MathJax from the site itself, not a CDN
nb_execution_mode = 'off'                           # pages show the outputs committed with the notebooks
nb_ipywidgets_js = {}                               # no widget scripts from a CDN (build.py shows widgets as stills)
nb_render_markdown_format = 'myst'
nb_merge_streams = True                             # a cell's prints in one block, as in Jupyter
myst_enable_extensions = ['dollarmath', 'amsmath', 'colon_fence', 'attrs_inline', 'attrs_block']
myst_all_links_external = True                      # links stay as written: minibatch_training.html#section
add_module_names = False                            # `fit(...)`, not `miniai.training.fit(...)`
python_maximum_signature_line_length = 88           # longer signatures get a parameter per line
modindex_common_prefix = [f"{c.lib_name}."]
toc_object_entries_show_parents = 'hide'           # `from_dd()` in the page's contents, not `DataLoaders.from_dd()`

def linkcode_resolve(domain, info):
    "The [source] link of an API entry: the line of its definition on GitHub (none for re-exported names)"
    e = rules.entries().get(f"{info['module']}.{info['fullname']}")
    return e and e.source_url

def _types_as_python_reads_them(app, doctree):
    """A type in a signature links to the entry of the object that name means where the code is written (`DataLoader`
    in miniai.datasets is PyTorch's, re-exported by miniai.training; `Dataset` in PyTorch's own code is PyTorch's), and to
    nothing when that object has no entry; Sphinx alone would link any entry whose name ends the same way"""
    from sphinx import addnodes
    for sig in doctree.findall(addnodes.desc_signature):
        e = rules.entries().get(f"{sig.get('module')}.{sig.get('fullname')}")
        for x in list(sig.findall(addnodes.pending_xref)):
            t = e and rules.by_object(rules.resolve(x['reftarget'], inspect.getmodule(e.obj)))
            if t: x['reftarget'] = t.fullname; x.attributes.pop('refspecific', None)
            else: x.replace_self(x.children)

def setup(app): app.connect('doctree-read', _types_as_python_reads_them)

html_theme = 'sphinx_book_theme'
html_title = c.title
html_static_path = [str(c.nbs_path/'styles.css')]
html_css_files = ['styles.css']
html_sidebars = {'**': ['navbar-logo.html', 'search-button-field.html', 'sbt-sidebar-nav.html']}
html_theme_options = dict(repository_url=c.git_url, repository_branch=c.branch, use_repository_button=True,
                          show_toc_level=2, home_page_in_toc=True, navbar_persistent=[])   # one search box: the sidebar's
