"""Put pre-downloaded data where the notebooks' download steps look first, so nothing is fetched.

    python tools/seed_data.py [DIR]    # DIR defaults to $MINIAI_DATA, then ../shared/data

DIR holds any of `mnist.pkl.gz` (lesson 04 looks in `nbs/data/`) and `fashion_mnist/` (lesson 05's
`load_dataset("fashion_mnist")` finds `nbs/fashion_mnist/` before the Hub). Each is linked with a symbolic link where
the system allows one (Windows does only in developer mode), else a file is hard-linked, else copied; each line of
output says which.
"""
import os, shutil, sys
from pathlib import Path

root = Path(__file__).resolve().parent.parent
targets = {'mnist.pkl.gz': root/'nbs'/'data'/'mnist.pkl.gz', 'fashion_mnist': root/'nbs'/'fashion_mnist'}

def data_folder(src=None):
    "The folder to seed from: `src`, else $MINIAI_DATA, else ../shared/data if it exists; `None` when there is none."
    src = src or os.environ.get('MINIAI_DATA')
    if not src: return p if (p := root.parent/'shared'/'data').is_dir() else None
    if not Path(src).is_dir(): raise FileNotFoundError(f"data folder {str(src)!r} (from MINIAI_DATA or the command line) does not exist")
    return Path(src).resolve()

def place(src, dst):
    "Make `dst` show `src`: a symbolic link, else a hard link (files only), else a copy; return which it made"
    try: dst.symlink_to(src, target_is_directory=src.is_dir()); return 'linked'
    except OSError: pass
    if src.is_file():
        try: os.link(src, dst); return 'hard-linked'
        except OSError: pass
    (shutil.copytree if src.is_dir() else shutil.copy2)(src, dst)
    return 'copied'

def seed(src):
    "Put each file of the folder `src` that a notebook downloads where that notebook looks; return `[(path, how)]`."
    done = []
    for name,dst in targets.items():
        if not (Path(src)/name).exists() or dst.exists(): continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        if dst.is_symlink(): dst.unlink()  # a dangling link left from another checkout
        done.append((dst, place(Path(src)/name, dst)))
    return done

if __name__ == '__main__':
    src = data_folder(*sys.argv[1:2])
    if src is None: sys.exit("no data folder: pass one, or set MINIAI_DATA")
    for p,how in seed(src): print(f'{how} {p.relative_to(root)}')
