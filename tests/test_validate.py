"""miniai.validate: the one rule for arguments (TypeError for the wrong kind of value, ValueError for a value out of
range, the message naming both), and `check_workers`, which finds before any worker starts what spawned workers
couldn't import. Each call site's own use of the rule is tested beside its module's other tests."""
import math, multiprocessing, re, sys, types
import numpy as np, pytest, torch
from hypothesis import given, strategies as st
from torch.utils.data import TensorDataset
from miniai.validate import check_bool, check_int, check_real, check_workers
from helpers import run_as_notebook

def raises(exc, name, v): return pytest.raises(exc, match=re.escape(f'but got {name}={v!r}'))

@given(v=st.integers(-3, 3), lo=st.integers(-1, 2), kind=st.sampled_from([int, np.int16, np.int64, np.uint8]))
def test_check_int_takes_any_integral_type_from_lo(v, lo, kind):
    if kind is np.uint8 and v < 0: return
    if v >= lo: check_int('x', kind(v), lo)
    else:
        with raises(ValueError, 'x', kind(v)): check_int('x', kind(v), lo)

@pytest.mark.parametrize('v,lo,exc,msg', [
    (0, 1, ValueError, 'bs should be a positive integer value, but got bs=0'),
    (-1, 0, ValueError, 'bs should be a non-negative integer value, but got bs=-1'),
    (1, 2, ValueError, 'bs should be an integer of at least 2, but got bs=1'),
    *((v, 1, TypeError, f'bs should be a positive integer value, but got bs={v!r}')
      for v in (True, False, 2.5, np.float64(2.0), '4', None, torch.tensor(3)))])
def test_check_int_refuses(v, lo, exc, msg):
    with pytest.raises(exc, match=f'^{re.escape(msg)}$'): check_int('bs', v, lo)

@given(v=st.floats(allow_nan=True) | st.integers())
def test_check_real_positive(v):
    if v > 0: check_real('lr', v, gt=0)
    else:
        with pytest.raises(ValueError, match=re.escape(f'lr should be a positive number, but got lr={v!r}')): check_real('lr', v, gt=0)

@given(v=st.floats(-2, 3, allow_nan=False))
def test_check_real_bounds(v):
    if 0 <= v < 1: check_real('mom', v, ge=0, lt=1)
    else:
        with pytest.raises(ValueError, match=r'mom should be a number at least 0 and less than 1, but got'): check_real('mom', v, ge=0, lt=1)

@pytest.mark.parametrize('v,bounds', [(1, dict(gt=0)), (0.5, dict(gt=0)), (np.float32(0.5), dict(gt=0)), (np.int64(1), dict(gt=0)),
                                      (math.inf, dict(gt=0)), (float('nan'), {}), (-5, {})])   # no bounds: any number, nan too
def test_check_real_takes(v, bounds): check_real('x', v, **bounds)

@pytest.mark.parametrize('v,bounds,exc,msg', [
    *((v, dict(gt=0), TypeError, f'x should be a positive number, but got x={v!r}')
      for v in (True, '0.1', None, torch.tensor(0.1), [0.1])),
    (1, dict(gt=1), ValueError, 'x should be a number larger than 1, but got x=1'),
    (2, dict(ge=3), ValueError, 'x should be a number at least 3, but got x=2'),
    (1, dict(ge=0, lt=1), ValueError, 'x should be a number at least 0 and less than 1, but got x=1'),
    (float('nan'), dict(lt=1), ValueError, 'x should be a number less than 1, but got x=nan')])
def test_check_real_refuses(v, bounds, exc, msg):
    with pytest.raises(exc, match=f'^{re.escape(msg)}$'): check_real('x', v, **bounds)

@pytest.mark.parametrize('v', [True, False, 'no', 'False', 0, 1, None, np.bool_(True)])
def test_check_bool(v):
    if type(v) is bool: check_bool('shuffle', v)
    else:
        with pytest.raises(TypeError, match=f'^shuffle should be True or False, but got shuffle={re.escape(repr(v))}$'): check_bool('shuffle', v)

# check_workers. Pytest's `__main__` is a file (a script, which spawned workers run again); a notebook's has none. A
# module without a file stands in for it here; the slow test below runs a real one, in a fresh `python -c`.

class Items(TensorDataset): "A dataset class from an importable module."

def test_check_workers_passes_what_workers_can_import():
    for m in ('fork', 'spawn', 'forkserver', multiprocessing.get_context('spawn'), None):
        check_workers(2, m, dataset=Items(torch.zeros(3, 2)), collate_fn=torch.utils.data.default_collate, other=None)

def test_check_workers_refuses_what_cannot_be_pickled():
    gen = (i for i in range(3))
    with pytest.raises(ValueError, match=r"dataset \(a generator\) can't be sent to worker processes: pickling it raised"):
        check_workers(1, 'spawn', dataset=gen)
    check_workers(1, 'fork', dataset=gen)      # forked workers receive nothing pickled
    check_workers(0, 'spawn', dataset=gen)     # no workers at all

@pytest.fixture
def notebook(monkeypatch):
    "A `__main__` without a file, as a notebook's, holding a dataset class and a function defined there"
    main = types.ModuleType('__main__')
    exec("from torch.utils.data import TensorDataset\nclass Local(TensorDataset): pass\ndef tfm(b): return b", vars(main))
    monkeypatch.setitem(sys.modules, '__main__', main)
    return main

@pytest.mark.parametrize('method', ['spawn', 'forkserver'])
@pytest.mark.parametrize('kw,start', [(lambda nb: dict(dataset=nb.Local(torch.zeros(100_000, 10))), 'dataset (a Local) needs Local,'),
                                      (lambda nb: dict(collate_fn=nb.tfm), 'collate_fn (tfm) needs tfm,'),
                                      (lambda nb: dict(dataset=[nb.Local(torch.zeros(2))]), 'dataset (a list) needs Local,')],
                         ids=['dataset', 'function', 'inside'])
def test_check_workers_names_a_notebook_class_and_the_ways_out(notebook, method, kw, start):
    with pytest.raises(ValueError) as e: check_workers(2, method, **kw(notebook))
    msg = str(e.value)
    assert msg.startswith(start) and 'defined in this notebook or session (the module __main__)' in msg, msg
    assert f"started by {method!r} can't import" in msg and 'Define it in a module and import it from there' in msg and 'num_workers=0' in msg
    check_workers(2, 'fork', **kw(notebook))   # forked workers are copies of this process: nothing to check

def test_check_workers_lets_a_scripts_classes_through(notebook):
    notebook.__file__ = 'script.py'   # a script's workers run it again, and find its classes
    check_workers(2, 'spawn', dataset=notebook.Local(torch.zeros(2)), collate_fn=notebook.tfm)

@pytest.mark.slow
def test_check_workers_in_a_real_notebook_like_main():
    res = run_as_notebook('''
        import torch
        from torch.utils.data import TensorDataset
        from miniai.validate import check_workers
        class Local(TensorDataset): pass
        try: check_workers(2, 'spawn', dataset=Local(torch.zeros(3)))
        except ValueError as e: print(e)
        check_workers(2, 'fork', dataset=Local(torch.zeros(3)))
    ''')
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("dataset (a Local) needs Local, defined in this notebook or session (the module __main__), "
                                 "which worker processes started by 'spawn' can't import."), res.stdout
