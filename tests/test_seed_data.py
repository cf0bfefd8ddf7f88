"tools/seed_data.py: data linked where the notebooks look, or, where the system allows no symbolic link, hard-linked or copied."
import os
from pathlib import Path
import pytest
import seed_data

@pytest.fixture
def folders(tmp_path, monkeypatch):
    src, nbs = tmp_path/'data', tmp_path/'repo'/'nbs'
    (src/'fashion_mnist'/'data').mkdir(parents=True)
    (src/'mnist.pkl.gz').write_bytes(b'mnist')
    (src/'fashion_mnist'/'data'/'train.parquet').write_bytes(b'fashion')
    monkeypatch.setattr(seed_data, 'targets', {'mnist.pkl.gz': nbs/'data'/'mnist.pkl.gz', 'fashion_mnist': nbs/'fashion_mnist'})
    return src, nbs

def contents(nbs): return (nbs/'data'/'mnist.pkl.gz').read_bytes(), (nbs/'fashion_mnist'/'data'/'train.parquet').read_bytes()

def test_links(folders):
    src, nbs = folders
    assert [how for _,how in seed_data.seed(src)] == ['linked', 'linked']
    assert (nbs/'fashion_mnist').is_symlink() and contents(nbs) == (b'mnist', b'fashion')
    assert seed_data.seed(src) == []   # there already

def no_symlinks(*args, **kwargs): raise OSError(1314, 'A required privilege is not held by the client')   # Windows' refusal

def test_without_symlinks_hard_links_or_copies(folders, monkeypatch):
    src, nbs = folders
    monkeypatch.setattr(Path, 'symlink_to', no_symlinks)
    assert [how for _,how in seed_data.seed(src)] == ['hard-linked', 'copied']
    assert not (nbs/'fashion_mnist').is_symlink() and contents(nbs) == (b'mnist', b'fashion')

def test_without_any_links_copies(folders, monkeypatch):
    src, nbs = folders
    monkeypatch.setattr(Path, 'symlink_to', no_symlinks)
    monkeypatch.setattr(os, 'link', no_symlinks)
    assert [how for _,how in seed_data.seed(src)] == ['copied', 'copied']
    assert contents(nbs) == (b'mnist', b'fashion')
