"""Link pre-downloaded data where the notebooks' download steps look first, so nothing is fetched.

    python tools/seed_data.py [DIR]    # DIR defaults to $MINIAI_DATA, then ../shared/data

DIR holds any of `mnist.pkl.gz` (lesson 04 looks in `nbs/data/`) and `fashion_mnist/`
(lesson 05's `load_dataset("fashion_mnist")` finds `nbs/fashion_mnist/` before the Hub).
"""
import os, sys
from pathlib import Path

root = Path(__file__).resolve().parent.parent
targets = {'mnist.pkl.gz': root/'nbs'/'data'/'mnist.pkl.gz', 'fashion_mnist': root/'nbs'/'fashion_mnist'}

def seed(src=None):
    "Symlink each file of `src` that a notebook downloads to where that notebook looks; return what was linked."
    src = Path(src or os.environ.get('MINIAI_DATA') or root.parent/'shared'/'data').resolve()
    if not src.is_dir(): raise FileNotFoundError(f"data folder {str(src)!r} does not exist (set MINIAI_DATA or pass a folder)")
    linked = []
    for name,dst in targets.items():
        if not (src/name).exists() or dst.exists(): continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        if dst.is_symlink(): dst.unlink()  # a dangling link left from another checkout
        dst.symlink_to(src/name)
        linked.append(dst)
    return linked

if __name__ == '__main__':
    for p in seed(*sys.argv[1:2]): print(f'linked {p.relative_to(root)}')
