"""allo_ext.compress.hpo: a real Optuna study on tiny data (SQLite round trip, CLI resume after a
SIGKILL, two workers on one study in a real local PostgreSQL server)."""
from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import optuna
import pytest

from allo_ext.compress.data import load_jets
from allo_ext.compress.hpo import HPOConfig, run_hpo, trial_rows
from allo_ext.compress.hpo_report import hypervolume_history, references
from allo_ext.data import make_jets_array, write
from allo_ext.models import JetFormer, count

REPO = Path(__file__).resolve().parent.parent
PT_REL = 6
# A tiny search space keeps each trial to a second or two.
SMALL_SPACE = {"n_blocks": [1, 2], "dim_heads": [[8, 2], [16, 2]], "dropout": [0.0, 0.05]}


def write_jets(path: Path, n: int, n_part: int = 8, seed: int = 0) -> Path:
    g = np.random.default_rng(seed)
    y = g.integers(0, 5, size=n)
    cons = g.normal(size=(n, n_part, 16)).astype(np.float32)
    cons[:, :, PT_REL] += 0.8 * y[:, None]  # learnable, not trivially
    write(path, cons, make_jets_array(y))
    return path


@pytest.fixture(scope="module")
def jets_file(tmp_path_factory):
    return write_jets(tmp_path_factory.mktemp("hpo") / "jets.h5", 400)


def _dominates(a, b):
    return a[0] >= b[0] and a[1] <= b[1] and (a[0] > b[0] or a[1] < b[1])


def test_sqlite_round_trip_constraint_and_front(jets_file, tmp_path):
    data = load_jets(jets_file)
    db = tmp_path / "hpo.db"
    cfg = HPOConfig(storage=f"sqlite:///{db}", study_name="t", n_trials=3, epochs=1, patience=None,
                    min_accuracy=0.3, search_space=SMALL_SPACE, sampler="random")
    run_hpo(cfg, data, progress=False)
    # A fresh load from the file sees every trial, with its metrics.
    study = optuna.load_study(study_name="t", storage=f"sqlite:///{db}")
    rows = trial_rows(study)
    assert len(rows) == 3
    for r in rows:
        m = JetFormer.tiny(n_blocks=r["n_blocks"], dim=r["dim"], n_heads=r["n_heads"])
        assert r["flops"] == count(m, 8, 3)["flops"]
        assert 0.0 <= r["accuracy"] <= 1.0
        assert r["feasible"] == (r["accuracy"] >= 0.3)
    # The front Optuna reports equals a brute-force front over the feasible trials only.
    pts = {r["number"]: (r["accuracy"], r["flops"]) for r in rows if r["accuracy"] >= 0.3}
    front = {n for n, p in pts.items() if not any(_dominates(q, p) for q in pts.values())}
    assert {t.number for t in study.best_trials} == front
    # Asking for more trials continues the same study.
    cfg.n_trials = 4
    run_hpo(cfg, data, progress=False)
    assert len(trial_rows(optuna.load_study(study_name="t", storage=f"sqlite:///{db}"))) == 4


def test_infeasible_trials_never_on_front_and_add_no_hypervolume(jets_file, tmp_path):
    data = load_jets(jets_file)
    cfg = HPOConfig(storage=f"sqlite:///{tmp_path / 'h.db'}", study_name="hard", n_trials=2, epochs=1,
                    patience=None, min_accuracy=0.99, search_space=SMALL_SPACE)
    study = run_hpo(cfg, data, progress=False)
    rows = trial_rows(study)
    assert all(r["accuracy"] < 0.99 for r in rows)
    assert study.best_trials == []
    refs = references(rows, cfg, 8, 3)
    assert hypervolume_history(rows, cfg, refs) == {1: 0.0, 2: 0.0}


def test_hypervolume_by_hand():
    cfg = HPOConfig(min_accuracy=0.5, search_space=SMALL_SPACE)
    rows = [{"number": 0, "accuracy": 0.7, "flops": 50.0}, {"number": 1, "accuracy": 0.4, "flops": 1.0},
            {"number": 2, "accuracy": 0.6, "flops": 20.0}]
    hv = hypervolume_history(rows, cfg, {"flops": 100.0})
    # Losses (1 - acc, flops / 100) against the reference (0.5, 1): the box of trial 0 is
    # (0.5 - 0.3) x (1 - 0.5) = 0.1; trial 1 is infeasible; trial 2 adds (0.4 - 0.3) x (0.5 - 0.2).
    assert hv[1] == pytest.approx(0.1)
    assert hv[2] == pytest.approx(0.1)
    assert hv[3] == pytest.approx(0.1 + 0.1 * 0.3)


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "allo_ext.cli", "hpo", *args]


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}


def _completed(storage: str, study: str) -> list:
    if storage.startswith("sqlite:///") and not Path(storage[len("sqlite:///"):]).exists():
        return []  # the worker has not created it yet
    import sqlalchemy.exc

    try:
        s = optuna.load_study(study_name=study, storage=storage)
    except KeyError:
        return []
    except (sqlalchemy.exc.OperationalError, sqlalchemy.exc.IntegrityError):
        # the worker is creating the schema right now, and opening the storage here creates it too: both
        # stamp its version (IntegrityError on the second stamp, seen in CI), or one finds it half made
        return []
    return [t for t in s.trials if t.state == optuna.trial.TrialState.COMPLETE]


def test_cli_resumes_after_sigkill_without_losing_trials(jets_file, tmp_path):
    # The first run asks for far more trials than it can finish before the kill (a 4-trial study
    # finished before a poller slowed by machine load saw its first trial); the resumed run then asks
    # for two more than survived, since --trials counts the study's completed trials.
    out = tmp_path / "run"
    storage = f"sqlite:///{out / 'hpo.db'}"

    def args(trials):
        return _cli("--data", str(jets_file), "--out", str(out), "--study", "k", "--trials", str(trials),
                    "--epochs", "1", "--min-accuracy", "0.2", "--sampler", "random", "--no-progress")

    proc = subprocess.Popen(args(200), env=_env(), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.time() + 600
    while len(_completed(storage, "k")) < 1 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.1)
    assert proc.poll() is None, f"the study ended before it could be killed:\n{proc.stdout.read().decode()}"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = {t.number: t.values for t in _completed(storage, "k")}
    assert 1 <= len(before) < 200
    want = len(before) + 2
    r = subprocess.run(args(want), env=_env(), cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"{len(before)} completed trial(s) found, continuing" in r.stdout
    after = {t.number: t.values for t in _completed(storage, "k")}
    assert len(after) == want
    for n, values in before.items():
        assert after[n] == values
    for name in ("pareto.png", "best_trials.csv", "hypervolume.png", "hpo_summary.json"):
        assert (out / name).stat().st_size > 0


# ------------------------------------------------------------------------------ PostgreSQL
def _pg_bin(name: str) -> str:
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))), None)
    if found is None:
        pytest.fail(f"PostgreSQL's {name} is missing: install Debian's postgresql package (make apt)")
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def postgres():
    """A real PostgreSQL server on a temporary data directory, as a non-root user when we are root
    (the server refuses to run as root)."""
    run_as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    root = Path(tempfile.mkdtemp(prefix="allo-pg-"))
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    if os.geteuid() == 0:
        import pwd

        pw = pwd.getpwnam("postgres")
        os.chmod(root, 0o755)
        for p in (root, sock):
            os.chown(p, pw.pw_uid, pw.pw_gid)
    port = _free_port()
    log = root / "server.log"
    try:
        subprocess.run(run_as + [_pg_bin("initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
                                 "-E", "UTF8"], check=True, capture_output=True, timeout=120)
        subprocess.run(run_as + [_pg_bin("pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "60",
                                 "-o", f"-p {port} -k {sock} -c listen_addresses=127.0.0.1", "start"],
                       check=True, capture_output=True, timeout=120)
        import psycopg2

        conn = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres")
        conn.autocommit = True
        conn.cursor().execute("CREATE DATABASE hpo")
        conn.close()
        yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/hpo"
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run(run_as + [_pg_bin("pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                           capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)


def test_two_workers_share_one_study_in_postgresql(postgres, jets_file, tmp_path):
    procs = [subprocess.Popen(_cli("--data", str(jets_file), "--out", str(tmp_path / f"w{i}"),
                                   "--storage", postgres, "--study", "shared", "--trials", "4", "--epochs", "1",
                                   "--min-accuracy", "0.2", "--no-progress"),
                              env=_env(), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for i in range(2)]
    outs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], "\n".join(outs)
    done = _completed(postgres, "shared")
    # The budget is the study's: both stop at 4, give or take the trial the other had running.
    assert 4 <= len(done) <= 5
    workers = {t.user_attrs["worker"] for t in done}
    assert len(workers) == 2, f"one worker ran every trial: {workers}"
    assert len({t.number for t in done}) == len(done)
