"""The committed notebooks keep what a learner should see: every cell that draws stores its picture. A notebook
executed with a non-interactive matplotlib backend (`MPLBACKEND=Agg`) stores a figure as the bare text
'<Figure size 600x400 with 1 Axes>', or nothing at all, and the docs site then shows no plot."""
import json, re
from pathlib import Path
import pytest

nbs = Path(__file__).resolve().parent.parent/'nbs'
lessons = sorted(p for p in nbs.glob('[01]*.ipynb'))
DRAWS = re.compile(r'^(?!\s*(def |#)).*\b(show_images?|imshow|plt\.plot|plot_func|color_dim|dead_chart|plot_stats|show_image_batch|lr_find)\(', re.M)

def code(c): return re.sub(r"'[^'\n]*'|\"[^\"\n]*\"", "''", ''.join(c['source']))   # string literals draw nothing
def code_cells(p): return [c for c in json.loads(p.read_text(encoding='utf-8'))['cells'] if c['cell_type'] == 'code']
def has_image(c): return any('image/png' in o.get('data', {}) for o in c.get('outputs', []))

@pytest.mark.parametrize('p', lessons, ids=lambda p: p.stem)
def test_every_drawing_cell_stores_its_picture(p):
    draws = lambda c: DRAWS.search(code(c)) and not code(c).startswith('#| export')
    bare = lambda c: any(''.join(o.get('data', {}).get('text/plain', '')).startswith('<Figure size') for o in c.get('outputs', []))
    missing = [''.join(c['source'])[:80] for c in code_cells(p) if (draws(c) or bare(c)) and not has_image(c)]
    assert not missing, f"{p.name}: cells that draw but store no picture (run the notebook with matplotlib's inline backend): {missing}"
