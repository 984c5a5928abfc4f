#!/usr/bin/env python3
"""faults_watchdog.py MPIEXEC SOFTREC_BIN WORKDIR [TRIALS]: faults end cleanly.

1. TRIALS (default 20) times one rank of a 2-rank training run (ML-100K-sized
   synthetic data) is frozen with SIGSTOP: at a random moment (the test
   sends SIGSTOP), inside a checkpoint save (SOFTREC_FAULT=ckpt_write or
   ckpt_before_commit with SOFTREC_FAULT_ACTION=stop: the rank stops itself
   in the middle of a table or before the commit) or in an evaluation
   (SOFTREC_FAULT=eval); once more each in start-up (SOFTREC_FAULT=start:
   before the dataset is read, the peer waits in its collectives) and in
   the finish (SOFTREC_FAULT=finish, a 1-epoch run: after the test
   evaluation, the peer waits in the run's last collective). Every time the job must end with the watchdog's
   exit code 10 within the limit its watchdog line states, max(5 x the
   median of the phase's earlier durations, train.watchdog_min_seconds = 2 s)
   (2 s for steps here, more for a save on a loaded machine), plus the 0.1 s
   tick and the launcher's teardown (SLACK_S), and no process of the job may
   be left afterwards.
   Where the victim was is shown by its heartbeat record (frozen with it)
   and the peer's watchdog line ("stuck in checkpoint save", ...).
2. KILLS (20) times kill -9 one rank at a random moment: the job ends non-zero
   within KILL_S and nothing is left.
Prints stop-to-end times (min / median / max) for docs/reliability.md.
"""
import os
import random
import re
import signal
import statistics
import struct
import subprocess
import sys
import time

mpiexec, binary, work = sys.argv[1], sys.argv[2], sys.argv[3]
trials = int(sys.argv[4]) if len(sys.argv) > 4 else 20
KILLS = 20
LIMIT_S = 2.0   # train.watchdog_min_seconds; 10 x the median step (ms) is below it
SLACK_S = 5.0   # tick, launcher teardown (SIGCONT, TERM, 1 s, KILL) on a busy 2-core box
KILL_S = 5.0
PHASES = {0: "start", 1: "step", 2: "after step", 3: "checkpoint save", 4: "model save", 5: "evaluation",
          6: "start-up", 7: "finish"}
# Where a fault stops the victim (its heartbeat) and the peer's watchdog line;
# in start-up no heartbeat is published yet (run.dir's records start in fit).
EXPECT = {"ckpt_write": ("checkpoint save", None), "ckpt_before_commit": ("checkpoint save", None),
          "eval": ("evaluation", None), "start": ("?", "start-up"), "finish": ("finish", "finish")}
HB = struct.Struct("<IiQqiidQd8x")  # guard.c's hb_rec

os.makedirs(work, exist_ok=True)
os.chdir(work)
env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
           OPENBLAS_NUM_THREADS="1", SOFTREC_LOG="warn")
for k in ("SOFTREC_FAULT", "SOFTREC_FAULT_ACTION"):
    env.pop(k, None)
rng = random.Random(1234)
failures = []


def fail(msg):
    print("FAIL: " + msg, flush=True)
    failures.append(msg)


if not os.path.exists("data.h5"):
    subprocess.run([binary, "data", "synth", "--users", "943", "--items", "1682", "--interactions", "100000",
                    "--topics", "16", "--progress", "0", "--force", "--output", "data.h5"],
                   check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

COMMON = ["--set", "data.path=data.h5", "--set", "model.dim=16", "--set", "train.epochs=40",
          "--set", "train.batch_size=256", "--set", "loss.name=ssm", "--set", "loss.negatives=64",
          "--set", "train.checkpoint_every=100", "--set", "run.progress_every=1000",
          "--set", "train.watchdog_min_seconds=%g" % LIMIT_S, "--set", "train.watchdog_factor=5"]


def rank_pids(job):
    """{rank: pid} of the job's softrec processes (mpirun's children)."""
    out = {}
    try:
        kids = subprocess.run(["pgrep", "-P", str(job.pid)], capture_output=True, text=True).stdout.split()
    except OSError:
        return out
    for p in kids:
        try:
            envs = open("/proc/%s/environ" % p, "rb").read().split(b"\0")
        except OSError:
            continue
        for e in envs:
            if e.startswith(b"OMPI_COMM_WORLD_RANK="):
                out[int(e.split(b"=")[1])] = int(p)
    return out


def state(pid):
    """'R', 'S', 'T', 'Z', ... or None when gone."""
    try:
        s = open("/proc/%d/stat" % pid).read()
        return s[s.rindex(")") + 2]
    except (OSError, ValueError):
        return None


def heartbeat(rundir, rank):
    try:
        with open("%s/.heartbeat.%d" % (rundir, rank), "rb") as f:
            r = HB.unpack(f.read(HB.size))
        return {"rank": r[1], "step": r[3], "phase": r[4]}
    except (OSError, struct.error):
        return None


def alive(pids):
    return [p for p in pids if state(p) not in (None, "Z")]


def leftovers(pids, marker):
    """Live processes of this job: its ranks, or any softrec naming its run dir."""
    left = set(alive(pids))
    out = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True).stdout.split()
    left |= {int(p) for p in out if state(int(p)) not in (None, "Z") and int(p) != os.getpid()}
    return sorted(left)


def start(name, fault=None, extra=()):
    rundir = "run-" + name
    subprocess.run(["rm", "-rf", rundir])
    e = dict(env)
    if fault:
        e["SOFTREC_FAULT"], e["SOFTREC_FAULT_ACTION"] = fault, "stop"
    err = open(name + ".err", "w")
    job = subprocess.Popen([mpiexec, "-n", "2", "--oversubscribe", binary, "train"] + COMMON + list(extra) +
                           ["--set", "run.dir=" + rundir], env=e, stdout=subprocess.DEVNULL, stderr=err)
    # Training has begun once both ranks' heartbeat left the start phase.
    pids = {}
    t0 = time.time()
    while time.time() - t0 < 60:
        pids = rank_pids(job) if len(pids) < 2 else pids
        hb = [heartbeat(rundir, r) for r in (0, 1)]
        if len(pids) == 2 and (all(h and h["phase"] > 0 for h in hb) or (fault or "").startswith("start")):
            break
        if job.poll() is not None:
            break
        time.sleep(0.01)
    return job, pids, rundir


def finish(job, pids, marker, t_event, budget):
    """Wait for the job (at most budget s after t_event); its rc, time, leftovers."""
    try:
        rc = job.wait(timeout=max(1.0, t_event + budget + 30 - time.time()))
    except subprocess.TimeoutExpired:
        for p in pids.values():
            os.kill(p, signal.SIGKILL)
        job.kill()
        job.wait()
        return None, time.time() - t_event, [], time.time() - t_event
    t_end = time.time() - t_event
    left = []
    for _ in range(50):  # a few seconds for the launcher's last SIGKILL to land
        left = leftovers(pids.values(), marker)
        if not left:
            break
        time.sleep(0.1)
    t_clean = time.time() - t_event
    for p in left:
        try:
            os.kill(p, signal.SIGKILL)
        except OSError:
            pass
    return rc, t_end, left if not left else [(p, state(p)) for p in left], t_clean


# --- 1. SIGSTOP -----------------------------------------------------------------
plan = []
for i in range(trials):
    kind = ["random", "ckpt_write", "random", "eval", "random", "ckpt_before_commit"][i % 6]
    plan.append(kind)
plan += ["start", "finish"]
times, limits, where = [], [], {}
for i, kind in enumerate(plan):
    victim = rng.randrange(2)
    name = "stop%02d" % i
    fault = None
    if kind == "ckpt_write":
        fault = "ckpt_write@%d#%d" % (victim, 1 + rng.randrange(12))
    elif kind == "ckpt_before_commit":
        fault = "ckpt_before_commit@%d#%d" % (victim, 1 + rng.randrange(4))
    elif kind == "eval":
        fault = "eval@%d#%d" % (victim, 1 + rng.randrange(3))
    elif kind in ("start", "finish"):
        fault = "%s@%d" % (kind, victim)
    job, pids, rundir = start(name, fault, ["--set", "train.epochs=1"] if kind == "finish" else [])
    if len(pids) < 2:
        fail("%s: the ranks never started (rc %s)" % (name, job.poll()))
        job.kill()
        continue
    if fault:
        # the rank stops itself: the moment it shows as stopped
        t_stop = None
        t0 = time.time()
        while time.time() - t0 < 60 and job.poll() is None:
            if state(pids[victim]) == "T":
                t_stop = time.time()
                break
            time.sleep(0.005)
        if t_stop is None:
            fail("%s: %s never fired (rc %s)" % (name, fault, job.poll()))
            job.kill()
            continue
    else:
        time.sleep(rng.uniform(0.05, 2.5))
        t_stop = time.time()
        os.kill(pids[victim], signal.SIGSTOP)
    time.sleep(0.05)
    hb = heartbeat(rundir, victim)
    phase = PHASES.get(hb["phase"], "?") if hb else "?"
    rc, t_end, left, t_clean = finish(job, pids, rundir, t_stop, LIMIT_S + SLACK_S)
    errtext = open(name + ".err").read()
    line = next((ln for ln in errtext.splitlines() if ln.startswith("softrec: watchdog: rank %d " % (1 - victim))), "")
    m = re.match(r"softrec: watchdog: rank \d stuck (in )?(.*?)( \(after step \d+\)| \d+)? for ", line)
    peer_in = m.group(2) if m else "-"
    m = re.search(r" for ([0-9.]+) s \(limit ([0-9.]+) s\)", line)
    limit = float(m.group(2)) if m else LIMIT_S
    print("%s: %-19s rank %d stopped in %-15s (step %s); peer: %-15s (limit %.1f s) -> exit %s after %.2f s, "
          "clean after %.2f s%s" % (name, kind, victim, phase, hb["step"] if hb else "?", peer_in, limit, rc, t_end,
                                    t_clean, "" if not left else ", LEFT %s" % left), flush=True)
    where[phase] = where.get(phase, 0) + 1
    if rc != 10:
        fail("%s: exit %s, expected 10 (watchdog); stderr tail: %s" % (name, rc, errtext[-600:]))
    elif t_end > limit + SLACK_S:
        fail("%s: the job ended %.2f s after the stop (limit %.1f + %.1f s)" % (name, t_end, limit, SLACK_S))
    if m and (limit < LIMIT_S or float(m.group(1)) > limit + 0.5):
        fail("%s: the watchdog fired at %s s under limit %.1f s (min %.1f s)" % (name, m.group(1), limit, LIMIT_S))
    if not line:
        fail("%s: no watchdog line from rank %d naming the stop" % (name, 1 - victim))
    elif kind != "start" and not re.search(r"rank %d (is not responding|has not reached)" % victim, line):
        fail("%s: the watchdog line does not name rank %d: %s" % (name, victim, line))
    if left:
        fail("%s: processes left after the job: %s" % (name, left))
    if kind != "random" and phase != EXPECT[kind][0]:
        fail("%s: %s stopped the rank in '%s'" % (name, kind, phase))
    if kind != "random" and EXPECT[kind][1] and peer_in != EXPECT[kind][1]:
        fail("%s: %s: the peer's watchdog was in '%s', expected '%s'" % (name, kind, peer_in, EXPECT[kind][1]))
    if rc == 10:
        times.append(t_end)
        limits.append(limit)

for need in ("checkpoint save", "evaluation", "step"):
    if trials >= 6 and not where.get(need) and not (need == "step" and where.get("after step")):
        fail("no stop landed in %s (%s)" % (need, where))
if times:
    print("SIGSTOP: %d trials, job end after the stop: min %.2f s, median %.2f s, max %.2f s (limits %.1f-%.1f s); "
          "stopped in: %s" % (len(times), min(times), statistics.median(times), max(times), min(limits),
                              max(limits), ", ".join("%s %d" % kv for kv in sorted(where.items()))), flush=True)

# --- 2. kill -9 -------------------------------------------------------------------
ktimes = []
for i in range(KILLS):
    name = "kill%02d" % i
    victim = rng.randrange(2)
    job, pids, rundir = start(name)
    if len(pids) < 2:
        fail("%s: the ranks never started" % name)
        job.kill()
        continue
    time.sleep(rng.uniform(0.05, 2.0))
    t_kill = time.time()
    os.kill(pids[victim], signal.SIGKILL)
    rc, t_end, left, t_clean = finish(job, pids, rundir, t_kill, KILL_S)
    print("%s: rank %d killed -> exit %s after %.2f s, clean after %.2f s%s"
          % (name, victim, rc, t_end, t_clean, "" if not left else ", LEFT %s" % left), flush=True)
    if rc in (None, 0):
        fail("%s: exit %s after kill -9 of rank %d" % (name, rc, victim))
    elif t_end > KILL_S:
        fail("%s: the job ended %.2f s after the kill (limit %.1f s)" % (name, t_end, KILL_S))
    if left:
        fail("%s: processes left: %s" % (name, left))
    ktimes.append(t_end)
if ktimes:
    print("kill -9: %d trials, job end after the kill: min %.2f s, median %.2f s, max %.2f s"
          % (len(ktimes), min(ktimes), statistics.median(ktimes), max(ktimes)), flush=True)

if failures:
    print("FAILED: %d problem(s)" % len(failures))
    sys.exit(1)
print("PASS")
