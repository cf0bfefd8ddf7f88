"""miniai.validate: the one rule for arguments (TypeError for the wrong kind of value, ValueError for a value out of
range, the message naming both), and `check_workers`, which finds before any worker starts what spawned workers
couldn't import. Each call site's own use of the rule is tested beside its module's other tests."""
import math, multiprocessing, re, subprocess, sys, textwrap
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

@pytest.mark.parametrize('v', [True, False, 2.5, np.float64(2.0), '4', None, torch.tensor(3)])
def test_check_int_refuses_other_kinds_with_type_error(v):
    with raises(TypeError, 'bs', v): check_int('bs', v)

def test_check_int_messages():
    with pytest.raises(ValueError, match=r'^bs should be a positive integer value, but got bs=0$'): check_int('bs', 0)
    with pytest.raises(ValueError, match='epochs should be a non-negative integer value, but got epochs=-1'): check_int('epochs', -1, lo=0)
    with pytest.raises(ValueError, match='n should be an integer of at least 2, but got n=1'): check_int('n', 1, lo=2)

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

def test_check_real_kinds():
    for v in (1, 0.5, np.float32(0.5), np.int64(1), math.inf): check_real('x', v, gt=0)
    check_real('x', float('nan'))   # no bounds: any number, nan too
    for v in (True, '0.1', None, torch.tensor(0.1), [0.1]):
        with raises(TypeError, 'x', v): check_real('x', v, gt=0)
    with pytest.raises(ValueError, match='gamma should be a number larger than 1, but got gamma=1'): check_real('gamma', 1, gt=1)

def test_check_bool():
    check_bool('shuffle', True); check_bool('shuffle', False)
    for v in ('no', 'False', 0, 1, None, np.bool_(True)):
        with raises(TypeError, 'shuffle', v): check_bool('shuffle', v)

# check_workers, in this process: pytest's `__main__` is a file (a script, which spawned workers run again), so a
# notebook's `__main__` is made in a fresh `python -c`, whose `__main__` has no file, as a notebook's has none.

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

def test_check_workers_names_a_notebook_class_and_the_ways_out():
    res = run_as_notebook('''
        import torch
        from torch.utils.data import TensorDataset
        from miniai.validate import check_workers
        class Local(TensorDataset): pass
        def tfm(b): return b
        ds = Local(torch.zeros(100_000, 10))
        for m in ('spawn', 'forkserver'):
            for kw in (dict(dataset=ds), dict(collate_fn=tfm), dict(dataset=[ds])):
                try: check_workers(2, m, **kw)
                except ValueError as e: print(e)
                else: print('no error')
        check_workers(2, 'fork', dataset=ds, collate_fn=tfm)
        print('fork: fine')
    ''')
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert len(lines) == 7 and lines[-1] == 'fork: fine', res.stdout
    for l,m in zip(lines, ['spawn']*3 + ['forkserver']*3):
        assert 'defined in this notebook or session (the module __main__)' in l and f"started by {m!r} can't import" in l
        assert 'Define it in a module and import it from there' in l and 'num_workers=0' in l
    assert lines[0].startswith('dataset (a Local) needs Local,') and lines[1].startswith('collate_fn (tfm) needs tfm,')
    assert lines[2].startswith('dataset (a list) needs Local,')
