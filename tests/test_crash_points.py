"""Kills at chosen moments of a run: no completed frame may be lost, and a resumed run must
be bit-identical to one that was never interrupted.

Two levels, both deterministic (a random SIGKILL finds a narrow window only by luck):

* named crash points (:mod:`hnnsim.crashpoints`): the writer process ends itself with
  ``os._exit`` at each write and flush point of a block, the first time (the initial frame
  and checkpoint) and in the middle of a run;
* every write system call: an ``LD_PRELOAD`` shim (``tests/faults/killwrite.c``, built here
  with the C compiler) ends the process just before the n-th write to the file, for every n
  over a stretch of blocks, so every moment between two system calls is a crash point.

After each kill the file must open, hold a prefix of the uninterrupted run's frames
(bit-identical), hold at least every block the run had handed out, carry a checkpoint that is
the exact state at its step, and resume to the uninterrupted run's file bit for bit.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import integrators
import systems
from hnnsim import Simulator, crashpoints, open_trajectory

pytestmark = pytest.mark.skipif(not hasattr(os, "fork") or not sys.platform.startswith("linux"),
                                reason="the fork server and the LD_PRELOAD shim need Linux")

ROOT = Path(__file__).resolve().parent.parent
#: HNNSIM_RELIABILITY_LONG=1 sweeps five times as many crash points (minutes, not seconds)
LONG = os.environ.get("HNNSIM_RELIABILITY_LONG") == "1"
SCALE = 5 if LONG else 1
TOTAL = 20_000
EVERY = 10

# The writer, as a fork server: it compiles once, then forks one writer per case, so a case
# costs milliseconds instead of the seconds numba needs to compile in a fresh process. Each
# child streams a pendulum run in many small blocks, logging the last step of every block it
# was handed (what the run had completed), armed to die at a crash point or before a write.
_SERVER = textwrap.dedent("""
    import ctypes, json, os, sys, traceback
    import integrators, systems
    from hnnsim import Simulator, crashpoints

    def run(path, log, arm_write=None, mode="new", block={block}):
        with open(log, "w") as out:
            if mode == "resume":
                sim = Simulator.resume(path)
                frames_of = sim.irun({total} - sim.step, block_seconds=block)
            else:
                sim = Simulator(systems.Pendulum(), integrators.Leapfrog(dt=0.01), q0=[1.0], p0=[0.0])
                frames_of = sim.irun({total}, every={every}, out=path, block_seconds=block, overwrite=mode == "overwrite")
            for frames in frames_of:
                if arm_write:
                    arm_write()
                    arm_write = None
                if len(frames):
                    out.write(f"{{int(frames.step[-1])}}\\n")
                    out.flush()

    run(sys.argv[2] + ".warmup.h5", sys.argv[2] + ".warmup.log")
    codes = []
    for case in json.loads(open(sys.argv[1]).read()):
        pid = os.fork()
        if pid == 0:
            try:
                arm_write = None
                if case.get("point"):
                    crashpoints.arm(case["point"], case["nth"])
                if case.get("write"):
                    lib = ctypes.CDLL(None)
                    # the shim matches the file, its hidden partial and recovery copies
                    stem = os.path.basename(case["path"])
                    arm_write = lambda: lib.killwrite_arm(stem.encode(), ctypes.c_long(case["write"]))
                    if case.get("arm") == "start":
                        arm_write()
                        arm_write = None
                run(case["path"], case["log"], arm_write, case.get("mode", "new"), case.get("block", {block}))
            except BaseException:
                traceback.print_exc()
                os._exit(3)
            os._exit(0)
        codes.append(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
    print(json.dumps(codes))
""").format(total=TOTAL, every=EVERY, block=1e-6 if LONG else 2e-4)  # long: many more, smaller blocks


def run_writers(tmp_path, cases, env=None, prepare=None):
    """Run each case (``point``/``nth`` or ``write``; ``mode`` new, resume or overwrite;
    ``arm`` at the first block or at the start) in a forked writer; return, per case, its
    exit status and the last step it had been handed (None if none). ``prepare(path)``
    writes each case's file first (for resume and overwrite)."""
    for k, case in enumerate(cases):
        case["path"] = str(tmp_path / f"case{k:03d}.h5")
        case["log"] = str(tmp_path / f"case{k:03d}.log")
        if prepare is not None:
            prepare(case["path"])
    spec = tmp_path / "cases.json"
    spec.write_text(json.dumps(cases))
    res = subprocess.run([sys.executable, "-c", _SERVER, str(spec), str(tmp_path / "server")],
                         env={**os.environ, **(env or {})}, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    codes = json.loads(res.stdout.split("\n")[-2])
    out = []
    for case, code in zip(cases, codes):
        steps = open(case["log"]).read().split()
        out.append((case, code, int(steps[-1]) if steps else None))
    return out


def sim():
    return Simulator(systems.Pendulum(), integrators.Leapfrog(dt=0.01), q0=[1.0], p0=[0.0])


@pytest.fixture(scope="module")
def reference():
    """The uninterrupted run, in memory."""
    return sim().run(TOTAL, every=EVERY)


def state_at(step):
    s = sim()
    s.run(step, every=max(step, 1))
    return s.q.reshape(-1), s.p.reshape(-1)


def check_survivor(path, handed_out, reference, where, at_least=0):
    """The file a killed writer left: readable, a bit-identical prefix holding every block
    handed out (and the ``at_least`` frames it held before), an exact checkpoint, and a
    resume that completes the uninterrupted run. A new file that never got its first
    block may not exist at all, but then nothing was handed out."""
    if not os.path.exists(path):
        assert handed_out is None and at_least == 0, f"killed {where}: the file is gone"
        return
    traj = open_trajectory(path)
    F = len(traj)
    np.testing.assert_array_equal(traj.step, reference.step[:F])
    np.testing.assert_array_equal(traj.q, reference.q[:F])
    np.testing.assert_array_equal(traj.p, reference.p[:F])
    np.testing.assert_array_equal(traj.energy, reference.energy[:F])
    assert F >= at_least, f"killed {where}: the file held {at_least} frames before, {F} now"
    if handed_out is not None:
        assert F and int(traj.step[-1]) >= handed_out, \
            f"killed {where}: the run had handed out frames up to step {handed_out}; the file holds {F} frames"
    ck = traj.checkpoint
    if ck is None:
        assert F == 0, f"killed {where}: frames on disk without a checkpoint"
        return
    q, p = state_at(ck["step"])
    assert np.array_equal(ck["q"], q) and np.array_equal(ck["p"], p), \
        f"killed {where}: the checkpoint at step {ck['step']} is not the state at that step"
    resumed = Simulator.resume(path)
    resumed.run(TOTAL - resumed.step)
    final = open_trajectory(path)
    np.testing.assert_array_equal(final.step, reference.step)
    np.testing.assert_array_equal(final.q, reference.q)
    np.testing.assert_array_equal(final.p, reference.p)
    np.testing.assert_array_equal(final.energy, reference.energy)


# -- named crash points ----------------------------------------------------------------

def test_kill_at_each_crash_point_loses_nothing(tmp_path, reference):
    """For every point of :data:`hnnsim.crashpoints.POINTS`: end the writer there on its
    first visit (the initial checkpoint and frame), its second and its fifth (mid-run)."""
    visits = (1, 2, 3, 5, 8, 13, 21) if LONG else (1, 2, 5)
    cases = [{"point": point, "nth": nth} for nth in visits for point in crashpoints.POINTS
             if nth == 1 or point not in crashpoints.ONCE]
    for case, code, handed_out in run_writers(tmp_path, cases):
        where = f"{case['point']} (visit {case['nth']})"
        assert code == crashpoints.EXIT_CODE, f"{where} was never reached: exit {code}"
        check_survivor(case["path"], handed_out, reference, where)


def test_crash_point_spec_is_validated():
    assert crashpoints._parse("append:values:2") == ("append:values", 2)
    for bad in ("append:values", "nowhere:1", "append:values:0", "append:values:x"):
        with pytest.raises(ValueError, match=r"HNNSIM_CRASH_AT must be '<point>:<n>'"):
            crashpoints._parse(bad)


# -- every write system call --------------------------------------------------------------

@pytest.fixture(scope="module")
def killwrite(tmp_path_factory):
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler to build the LD_PRELOAD fault injector (tests/faults/killwrite.c)")
    lib = tmp_path_factory.mktemp("killwrite") / "killwrite.so"
    subprocess.run([cc, "-O1", "-shared", "-fPIC", "-o", str(lib), str(ROOT / "tests/faults/killwrite.c"), "-ldl"],
                   check=True)
    return str(lib)


#: write system calls swept after the first block (a block with its checkpoint makes about 20)
SWEEP = 60 * SCALE


def test_kill_before_every_write_syscall_of_a_run(tmp_path, reference, killwrite):
    """Once the file is laid out and has its first block, end the writer just before its
    n-th write system call to the file, for every n up to :data:`SWEEP`: every moment
    between two system calls of several blocks, checkpoints included."""
    cases = [{"write": n} for n in range(1, SWEEP + 1)]
    for case, code, handed_out in run_writers(tmp_path, cases, {"LD_PRELOAD": killwrite}):
        where = f"before write {case['write']}"
        assert code == crashpoints.EXIT_CODE, f"{where} was never reached: exit {code}"
        check_survivor(case["path"], handed_out, reference, where)


#: write system calls swept from the start of a writer (creation, or reopening to resume)
SWEEP_START = 70 * SCALE
PREFIX = 1000


def test_kill_before_every_write_syscall_while_creating(tmp_path, reference, killwrite):
    """From the very first write of a new file (layout, SWMR switch, first block, rename):
    the path holds nothing or a readable file, never an unreadable one."""
    cases = [{"write": n, "arm": "start"} for n in range(1, SWEEP_START + 1)]
    for case, code, handed_out in run_writers(tmp_path, cases, {"LD_PRELOAD": killwrite}):
        where = f"before write {case['write']} of a new file"
        assert code == crashpoints.EXIT_CODE, f"{where} was never reached: exit {code}"
        check_survivor(case["path"], handed_out, reference, where)


def test_kill_before_every_write_syscall_while_resuming(tmp_path, reference, killwrite):
    """Resuming a finished file (reopen, truncate, first new block): the frames it held
    before stay readable at every moment (the kill a few windows used to make fatal)."""
    def prepare(path):
        sim().run(PREFIX, every=EVERY, out=path)

    cases = [{"write": n, "arm": "start", "mode": "resume"} for n in range(1, SWEEP_START + 1)]
    for case, code, handed_out in run_writers(tmp_path, cases, {"LD_PRELOAD": killwrite}, prepare):
        where = f"before write {case['write']} of a resume"
        assert code == crashpoints.EXIT_CODE, f"{where} was never reached: exit {code}"
        check_survivor(case["path"], handed_out, reference, where, at_least=PREFIX // EVERY + 1)


def test_kill_during_overwrite_keeps_the_old_file_until_the_new_one_has_a_block(tmp_path, reference, killwrite):
    old_q0 = 0.5

    def prepare(path):
        Simulator(systems.Pendulum(), integrators.Leapfrog(dt=0.01), q0=[old_q0], p0=[0.0]).run(300, every=EVERY,
                                                                                                 out=path)

    cases = [{"write": n, "arm": "start", "mode": "overwrite"} for n in range(1, 40 * SCALE)]
    for case, code, handed_out in run_writers(tmp_path, cases, {"LD_PRELOAD": killwrite}, prepare):
        where = f"before write {case['write']} of an overwrite"
        assert code == crashpoints.EXIT_CODE, f"{where} was never reached: exit {code}"
        traj = open_trajectory(case["path"])
        if traj.q[0, 0, 0] == old_q0:  # still the old file, whole
            assert handed_out is None and len(traj) == 31, where
        else:
            check_survivor(case["path"], handed_out, reference, where)


def test_a_second_writer_is_refused_while_the_first_lives(tmp_path):
    """A live writer holds the file: resume, a second run and an overwrite are refused with
    a clear error, the live writer's later frames are not lost, and once it is gone the
    file resumes."""
    path = str(tmp_path / "live.h5")
    writer = sim()
    frames = writer.irun(TOTAL, every=EVERY, out=path, block_seconds=1e-4)
    next(frames)
    next(frames)
    child = subprocess.run([sys.executable, "-c", textwrap.dedent(f"""
        import sys
        import integrators, systems
        from hnnsim import Simulator, TrajectoryError
        for attempt in ("resume", "overwrite"):
            try:
                if attempt == "resume":
                    Simulator.resume({path!r}).run(100)
                else:
                    Simulator(systems.Pendulum(), integrators.Leapfrog(dt=0.01)).run(100, every=10, out={path!r},
                                                                                        overwrite=True)
            except TrajectoryError as exc:
                print(attempt, "refused:", exc)
            else:
                print(attempt, "ran")
    """)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert child.returncode == 0, child.stderr
    assert child.stdout.count("refused: ") == 2, child.stdout
    assert "is being written by another process" in child.stdout
    for _ in frames:  # the live writer finishes its run, nothing of it lost
        pass
    traj = open_trajectory(path)
    np.testing.assert_array_equal(traj.step, np.arange(0, TOTAL + 1, EVERY))
    Simulator.resume(path).run(100)  # the lock went with the writer
    assert len(open_trajectory(path)) == TOTAL // EVERY + 11


def test_resume_continues_from_the_last_frame_not_a_stale_checkpoint(tmp_path, reference):
    """Killed between a block's frames and its checkpoint: the frames past the checkpoint
    are complete, and leapfrog's whole state is (q, p), so resume continues from the last
    frame: nothing is dropped, and `steps` counts from there."""
    runs = run_writers(tmp_path, [{"point": "checkpoint:start", "nth": nth, "block": 2e-4} for nth in (5, 6, 7, 8)])
    assert all(code == crashpoints.EXIT_CODE for _, code, _ in runs)
    # a block may hold no frame (blocks need not span `every` steps): take a kill that left
    # frames past the checkpoint
    for case, _, _ in runs:
        traj = open_trajectory(case["path"])
        last = int(traj.step[-1])
        if traj.checkpoint["step"] < last:
            break
    else:
        pytest.fail("no kill between a block's frames and its checkpoint left frames past the checkpoint")
    frames_before = len(traj)
    resumed = Simulator.resume(case["path"])
    assert resumed.step == last
    resumed.run(100)
    after = open_trajectory(case["path"])
    assert len(after) == frames_before + 10
    np.testing.assert_array_equal(after.q, reference.q[:len(after)])
