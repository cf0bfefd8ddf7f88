"""miniai.claims: reports that say what was found, and a time limit that holds. On Linux the claims run in a forked child,
ended by its pid when the time is up, so that even one long call into C is stopped, and nothing is left running; on
other systems a trace function stops Python between two steps, and the report says so. Only the hang tests look at the
clock, and only for a generous upper bound."""
import itertools, math, multiprocessing.connection, os, re, signal, sys, threading, time
import pytest, torch
import miniai.claims as C
from miniai.claims import Case, Claim, Finding, composite, expect, hp, run_claims, st

T = 300  # seconds for a check that should finish: only a hang would use them all
BUDGET = 0.25  # seconds for a check that hangs: the hanging claim comes first, so how busy the machine is can't change the report
BOUND = 60  # seconds such a check may take, however busy the machine

@composite
def ints(draw):
    x = draw(st.integers(-10, 10))
    return Case(f"`x = {x}`", x=x)

def holds(c): expect(abs(c.x) >= 0, f"got {abs(c.x)}")
def fails(c): expect(c.x > 0, f"got {c.x}")

def swallowing(c):  # endless loops that catch whatever is raised in them
    while True:
        try:
            while True: pass
        except BaseException: pass

def sleeping(c): time.sleep(100)
def summing(c): sum(itertools.repeat(1, 10**12))  # one call into C, holding Python for hours
def powering(c): torch.matrix_power(torch.rand(2000, 2000), 10**9)  # another, in PyTorch
def looping(c):
    while True: pass

def check(*tests, timeout=T, **kwargs):
    "`run_claims` on one claim per test, each tried on `ints()`, named by the test"
    return run_claims('check_x(f)', [Claim(t.__name__, ints(), t) for t in tests], timeout, **kwargs)

def oks(res): return [f.ok for f in res.findings]

@pytest.fixture
def forks(monkeypatch):
    "The pids of the children the check forks"
    pids, fork = [], os.fork
    def record():
        pid = fork()
        if pid: pids.append(pid)
        return pid
    monkeypatch.setattr(os, 'fork', record)
    return pids

def reaped(pid):
    "Whether `pid`, a child of this process, has ended and been waited for"
    try: os.waitpid(pid, os.WNOHANG)
    except ChildProcessError: return True
    return False

@pytest.mark.timeout(120, method='thread')  # a timer that the `except`s in `swallowing` can't catch
@pytest.mark.parametrize('test', [swallowing, sleeping, summing, powering])
def test_a_hang_becomes_a_report_in_time_and_leaves_nothing_running(test, forks):
    t0 = time.monotonic()
    res = check(test, holds, timeout=BUDGET)
    assert time.monotonic()-t0 < BOUND
    assert oks(res) == [False, None] and not res, res
    assert "still running when the check's time ran out" in res.findings[0].detail
    assert res.findings[1].detail == 'not checked: the time ran out'
    assert forks and all(map(reaped, forks))

def test_a_process_that_dies_is_reported_and_the_rest_not_checked(forks):
    def crashing(c): os.kill(os.getpid(), signal.SIGKILL)  # as the system does to a process out of memory
    def exiting(c): os._exit(3)
    res = check(holds, crashing, holds)
    assert oks(res) == [True, False, None], res
    assert re.fullmatch(r"with `x = -?\d+`: the process trying it ended \(killed by SIGKILL\)", res.findings[1].detail)
    assert res.findings[2].detail == "not checked: the check's process ended"
    assert check(exiting).findings[0].detail.endswith('ended (exit code 3)')
    assert all(map(reaped, forks))

@pytest.mark.timeout(120)  # a hang fails the test: the child would wait for the thread below, and the check for the child
def test_the_child_ends_once_done_whatever_threads_the_code_started(forks):
    def starts_a_thread(c): threading.Thread(target=threading.Event().wait).start()   # never ends, and isn't a daemon
    assert oks(check(starts_a_thread, holds, timeout=math.inf)) == [True, True] and all(map(reaped, forks))

def test_an_interrupted_check_leaves_no_child(forks, monkeypatch):
    def interrupt(self, timeout=0.0): raise KeyboardInterrupt  # as Ctrl-C would, while the check waits for its child
    monkeypatch.setattr(multiprocessing.connection.Connection, 'poll', interrupt)
    with pytest.raises(KeyboardInterrupt): check(looping)
    assert len(forks) == 1 and reaped(forks[0])

def test_signal_handlers_trace_and_an_outer_timer_are_left_alone():
    fired = []
    old = signal.signal(signal.SIGALRM, lambda *_: fired.append(1))
    signal.setitimer(signal.ITIMER_REAL, 100)
    before = {s: signal.getsignal(s) for s in signal.valid_signals()}, sys.gettrace(), sys.getprofile()
    try:
        check(looping, timeout=BUDGET)
        left = signal.getitimer(signal.ITIMER_REAL)[0]
        assert 100-BOUND < left <= 100 and not fired
        assert ({s: signal.getsignal(s) for s in signal.valid_signals()}, sys.gettrace(), sys.getprofile()) == before
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)

@pytest.mark.timeout(120, method='thread')
def test_a_check_runs_in_any_thread_within_its_time():
    out = {}
    t = threading.Thread(target=lambda: out.update(res=check(summing, timeout=BUDGET)), daemon=True)
    t.start(); t.join(BOUND)
    assert not t.is_alive() and oks(out['res']) == [False]

@pytest.mark.parametrize('fork', [True, False], ids=['forked', 'here'])
def test_random_state_and_threads_left_alone_and_reports_reproducible(fork, monkeypatch):
    monkeypatch.setattr(C, '_fork', fork)
    torch.manual_seed(3)
    state, n = torch.get_rng_state(), torch.get_num_threads()
    def draws(c): expect(torch.rand(1).item() > 0.5, "drew less")  # seeded for each case: the same draw each time
    a, b = check(holds, fails, draws), check(holds, fails, draws)
    assert repr(a) == repr(b) and oks(a) == [True, False, False]
    assert ('its time limit holds only between steps of Python here' in repr(a)) == (not fork)
    assert torch.equal(torch.get_rng_state(), state) and torch.get_num_threads() == n

def test_what_the_code_prints_is_dropped_and_hypothesis_prints_nothing(capfd):
    def printing(c): print('noise'); print('noise', file=sys.stderr); fails(c)
    assert oks(check(printing)) == [False]
    assert capfd.readouterr() == ('', '')

@pytest.mark.timeout(120)  # a hang fails the test
def test_without_fork_an_endless_loop_of_python_is_stopped_and_the_report_says_how(monkeypatch, forks):
    monkeypatch.setattr(C, '_fork', False)
    trace, t0 = sys.gettrace(), time.monotonic()
    res = check(looping, holds, timeout=BUDGET)
    assert time.monotonic()-t0 < BOUND and not forks and sys.gettrace() is trace
    assert oks(res) == [False, None] and "still running when the check's time ran out" in res.findings[0].detail
    assert repr(res).startswith('check_x(f): 0 of 2 claims hold (its time limit holds only between steps of Python here)')

def test_an_error_is_reported_with_its_traceback_kept_aside():
    def raising(c): raise ZeroDivisionError('boom')
    res = check(raising, holds)
    assert res.findings[0].detail == 'with `x = 0`: your code raised `ZeroDivisionError: boom`' and oks(res) == [False, True]
    assert 'Traceback' in res.traceback and 'raising' in res.traceback
    assert check(holds).traceback == 'Your code raised no errors.'

def test_a_broken_strategy_is_reported_as_the_checks_own_error():
    res = run_claims('check_x(f)', [Claim('broken', st.integers(5, 1), holds), Claim('holds', ints(), holds)], T)
    assert oks(res) == [False, True] and res.findings[0].detail.startswith('the check raised `InvalidArgument')
    assert 'InvalidArgument' in res.traceback

def test_first_findings_and_skip():
    first = [Finding('can be called', False, 'it cannot')]
    res = check(holds, fails, first=first, skip='fix the signature first')
    assert res.findings[0] == first[0] and oks(res) == [False, None, None]
    assert {f.detail for f in res.findings[1:]} == {'not checked: fix the signature first'}
    assert oks(check(holds, first=[Finding('can be called', True)])) == [True, True]

@pytest.mark.parametrize('timeout,exc', [(0, ValueError), (-1, ValueError), (float('nan'), ValueError), (True, TypeError),
                                         ('10', TypeError), (None, TypeError)])
def test_a_bad_timeout_is_refused(timeout, exc):
    with pytest.raises(exc, match=re.escape(f"timeout should be a positive number, but got timeout={timeout!r}")):
        check(holds, timeout=timeout)

def test_an_endless_timeout_is_no_time_limit():
    assert oks(check(holds, fails, timeout=math.inf)) == [True, False]

def test_hypothesis_stands_in_until_used():
    assert st.integers is sys.modules['hypothesis.strategies'].integers and hp.given is sys.modules['hypothesis'].given
