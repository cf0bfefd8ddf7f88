"Sphinx configuration for the docs site built by docs/build.py; the project's facts come from settings.ini."
from nbdev.config import get_config
c = get_config()

project, author, copyright, release = c.title, c.author, c.copyright, c.version
extensions = ['myst_nb', 'sphinx-mathjax-offline']   # MathJax from the site itself, not a CDN
nb_execution_mode = 'off'                           # pages show the outputs committed with the notebooks
nb_ipywidgets_js = {}                               # no widget scripts from a CDN
nb_render_markdown_format = 'myst'
myst_enable_extensions = ['dollarmath', 'amsmath', 'colon_fence', 'attrs_inline', 'attrs_block']
myst_all_links_external = True                      # links stay as nbdev writes them: minibatch_training.html#fit
suppress_warnings = ['myst.header']                 # show_doc entries are h3 wherever they fall
html_theme = 'sphinx_book_theme'
html_title = c.title
html_theme_options = dict(repository_url=c.git_url, repository_branch=c.branch, use_repository_button=True,
                          show_toc_level=2, home_page_in_toc=True)
nb_merge_streams = True                             # a cell's prints in one block, as in Jupyter
