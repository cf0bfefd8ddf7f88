"Every export of the modules a learner reads has a docstring, and a docment for each of its parameters (what the docs site shows)."
import importlib, inspect
import pytest
from fastcore.docments import docments

mods = ['learner', 'activations', 'init', 'sgd', 'resnet', 'augment', 'scratch', 'check', 'validate', 'download']
exports = [(m, nm) for m in mods for nm in importlib.import_module(f'miniai.{m}').__all__]

def undocumented(f): return [k for k,v in docments(f, full=True, args_kwargs=True).items() if k not in ('self', 'return') and not v['docment']]

@pytest.mark.parametrize('m,nm', exports, ids=[f'{m}.{nm}' for m,nm in exports])
def test_docments_on_exports(m, nm):
    o = getattr(importlib.import_module(f'miniai.{m}'), nm)
    assert inspect.getdoc(o)
    if isinstance(o, type) and (issubclass(o, Exception) or o.__init__ is object.__init__): return
    assert not undocumented(o.__init__ if isinstance(o, type) else o)

def test_docments_on_learner_methods():
    from miniai.learner import Learner, Metric
    for f in (Learner.fit, Learner.one_epoch, Learner.callback, Learner.lr_find, Metric.update):
        assert inspect.getdoc(f) and not undocumented(f), f
