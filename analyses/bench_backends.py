"""Benchmark: per-participant fits of 200 synthetic players, LocalExecutor(2) vs RayExecutor(num_cpus=2).

Generates 200 small synthetic Ebb and Flow players (+1 for the warm-up; seeded; written under
analyses/out/bench_backends/, never committed), then fits them per participant with short chains (default
2 chains x 100 draws + 100 tuning) with the same `fit()` the CLI runs, once with each backend, each time in a
fresh output folder (no unit is reused):

- ``descriptive`` (the cheapest model) on all players;
- ``nta-small`` (the flexible NTA model on a 4 x 3 grid, 2 histories, short tutorial and practice, so
  that its network tables, mode search and sampling all run but stay small) on the first
  ``--nta-players`` players.

Every participant's PyMC model holds that participant's data, so PyTensor compiles (numba) and caches on
disk functions per participant. Each timed phase therefore runs in its own process with its own copy of a
compile cache warmed on the extra player only (``PYTENSOR_FLAGS=base_compiledir=...``): both backends pay
the per-participant compilation, as a new dataset would, and neither reuses the other's.

Reported per phase: wall time (the ``fit()`` call, and end to end with creating and closing the
executor), per-participant cost (wall x workers / participants), the per-unit seconds that the fit
records (``tree.attrs["seconds"]`` and ``.units/<model>/manifest.json``), the time the driver spends
saving units, CPU seconds of the whole process tree, peak memory of the process tree (sampled from /proc
by a monitor process: sum of PSS, and the largest single process's RSS), the compile cache it wrote and the
load average (the machine is shared). Separately: Ray start-up (``ray.init``, first tasks on cold workers,
importing the fitting stack in a worker, shutdown), repeated ``--ray-starts`` times (medians). Finally
checks that both backends give bit-identical posteriors, sample stats and pointwise log-likelihoods.

    ./run python analyses/bench_backends.py [--players 200] [--nta-players 20] [--draws 100] [--tune 100]
    ./run python analyses/bench_backends.py --phases descriptive:local   # rerun one phase of the last run
    /usr/bin/time -v ./run python analyses/bench_backends.py      # + peak RSS of the whole run

Writes analyses/out/bench_backends/bench_backends.json (and a copy at analyses/out/bench_backends.json).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from _common import ROOT, out_dir

import cogflex as cf
from cogflex import __version__
from cogflex.executors import LocalExecutor, RayExecutor
from cogflex.fit.fitting import FitOptions, FitWarning, fit, load_fit
from cogflex.fit.simulate import Design, design_trials, draw_parameters, simulate_trials, to_ebb_and_flow
from cogflex.fit.models import load_model, model_from_dict
from cogflex.resources import preset_path
from cogflex.io import write_json
from cogflex.typed_config import read_toml

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--players", type=int, default=200, help="synthetic players (default 200)")
parser.add_argument("--nta-players", type=int, default=20,
                    help="players fitted with the small-grid NTA model (default 20; 0 skips it)")
parser.add_argument("--sessions", type=int, default=4, help="games per player (default 4)")
parser.add_argument("--trials-per-session", type=int, default=50, help="trials per game (default 50)")
parser.add_argument("--draws", type=int, default=100)
parser.add_argument("--tune", type=int, default=100)
parser.add_argument("--chains", type=int, default=2)
parser.add_argument("--workers", type=int, default=2, help="LocalExecutor workers and Ray CPUs (default 2)")
parser.add_argument("--ray-starts", type=int, default=3, help="repetitions of the Ray start-up probe (default 3)")
parser.add_argument("--seed", type=int, default=2025)
parser.add_argument("--warm-up", action="store_true", help=argparse.SUPPRESS)  # internal: child process
parser.add_argument("--phase", metavar="MODEL:BACKEND", help=argparse.SUPPRESS)  # internal: child process
parser.add_argument("--phases", nargs="+", metavar="MODEL:BACKEND",
                    help="rerun only these timed phases (e.g. descriptive:local) on the data and warm-up compile "
                    "cache of an earlier run with the same --name; the other phases' results are reused")
parser.add_argument("--name", default="bench_backends",
                    help="output folder analyses/out/NAME/ (default bench_backends; only the default run also writes "
                    "analyses/out/bench_backends.json)")
args = parser.parse_args()

OUT = out_dir(args.name)
RUNS = OUT / "runs"

# -- memory monitor: a separate process (no threads in the driver, which forks pool workers) ---------------------

MONITOR = r"""
import os, sys, time
root, path, interval = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
me = os.getpid()
page_kb = os.sysconf("SC_PAGE_SIZE") // 1024

def tree():
    parent = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as fh:
                    text = fh.read()
                parent[int(name)] = int(text[text.rindex(")") + 2:].split()[1])
            except (OSError, ValueError, IndexError):
                pass
    keep = {root}
    changed = True
    while changed:
        changed = False
        for pid, ppid in parent.items():
            if ppid in keep and pid not in keep and pid != me:
                keep.add(pid)
                changed = True
    return keep

tick = os.sysconf("SC_CLK_TCK")
cpu = {}  # (pid, start time) -> utime + stime ticks, last seen: CPU of every descendant, exited ones included
with open(path, "w", buffering=1) as out:
    while os.path.exists(f"/proc/{root}"):
        pss = rss_sum = rss_max = 0
        procs = 0
        for pid in tree():
            try:
                with open(f"/proc/{pid}/stat") as fh:
                    text = fh.read()
                fields = text[text.rindex(")") + 2:].split()
                with open(f"/proc/{pid}/statm") as fh:
                    rss = int(fh.read().split()[1]) * page_kb
                with open(f"/proc/{pid}/smaps_rollup") as fh:
                    p = next((int(line.split()[1]) for line in fh if line.startswith("Pss:")), rss)
            except (OSError, ValueError, IndexError):
                continue
            cpu[(pid, fields[19])] = int(fields[11]) + int(fields[12])
            procs += 1
            pss += p
            rss_sum += rss
            rss_max = max(rss_max, rss)
        out.write(f"{time.time():.3f} {pss} {rss_sum} {rss_max} {procs} {sum(cpu.values()) / tick:.2f}\n")
        time.sleep(interval)
"""


def start_monitor(path: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", MONITOR, str(os.getpid()), str(path), "0.5"])


def memory_between(path: Path, start: float, end: float) -> dict:
    """Peak memory of the driver's process tree (MiB) between two time.time() stamps."""
    rows = []
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) == 6 and start <= float(parts[0]) <= end:
            rows.append([float(x) for x in parts])
    if not rows:
        return {"samples": 0}
    a = np.array(rows)
    return {"samples": len(a), "peak_pss_total_mib": a[:, 1].max() / 1024, "peak_rss_sum_mib": a[:, 2].max() / 1024,
            "peak_rss_one_process_mib": a[:, 3].max() / 1024, "max_processes": int(a[:, 4].max()),
            "cpu_seconds_process_tree": a[-1, 5] - a[0, 5]}


def children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def self_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


# -- executors ------------------------------------------------------------------------------------------------


class Timed:
    """Wraps an executor: times ``run``, each result's arrival and the driver's ``on_done`` (unit saving)."""

    def __init__(self, inner):
        self.inner = inner
        self.run_seconds = 0.0
        self.arrivals: list[float] = []
        self.on_done_seconds = 0.0

    def run(self, function, jobs, on_done=None):
        t0 = time.perf_counter()

        def done(i, result):
            self.arrivals.append(time.perf_counter() - t0)
            t = time.perf_counter()
            if on_done is not None:
                on_done(i, result)
            self.on_done_seconds += time.perf_counter() - t

        try:
            return self.inner.run(function, jobs, done)
        finally:
            self.run_seconds = time.perf_counter() - t0

    def map(self, function, jobs):
        return self.run(function, jobs)

    def close(self):
        self.inner.close()


def make(backend: str):
    if backend == "local":
        return LocalExecutor(args.workers)
    return RayExecutor(num_cpus=args.workers)


def _noop(i: int) -> int:
    return os.getpid()


def _import_stack() -> tuple[int, float, str | None]:
    """Import what a fit job needs, in a fresh worker; returns (pid, seconds, OMP_NUM_THREADS there)."""
    t = time.perf_counter()
    import nutpie  # noqa: F401
    import pymc  # noqa: F401

    import cogflex.fit.fitting  # noqa: F401
    return os.getpid(), time.perf_counter() - t, os.environ.get("OMP_NUM_THREADS")


def ray_startup_probe() -> dict:
    """One fresh local Ray instance: init, first trivial tasks (cold workers), fit-stack import, shutdown."""
    t0 = time.perf_counter()
    executor = RayExecutor(num_cpus=args.workers)
    t_init = time.perf_counter() - t0
    t = time.perf_counter()
    pids = executor.run(_noop, [(i,) for i in range(args.workers)])
    t_first = time.perf_counter() - t
    t = time.perf_counter()
    executor.run(_noop, [(i,) for i in range(args.workers)])
    t_warm = time.perf_counter() - t
    t = time.perf_counter()
    imports = executor.run(_import_stack, [() for _ in range(args.workers)])
    t_imports = time.perf_counter() - t
    t = time.perf_counter()
    executor.close()
    t_close = time.perf_counter() - t
    return {"init": t_init, "first_tasks": t_first, "warm_tasks": t_warm, "import_fit_stack_wall": t_imports,
            "import_fit_stack_in_worker": [s for _, s, _ in imports], "workers_used": len(set(pids)),
            "omp_num_threads_in_worker": imports[0][2],
            "shutdown": t_close, "total": time.perf_counter() - t0}


def local_startup_probe() -> dict:
    """A LocalExecutor pool starts inside ``run``: the cost of one run of trivial jobs (forked workers)."""
    t = time.perf_counter()
    LocalExecutor(args.workers).run(_noop, [(i,) for i in range(args.workers)])
    # (forked workers inherit the driver's imported fitting stack: no import cost; importing new C extensions in
    # a worker forked after Ray ran in this process can kill it, so nothing is imported here)
    return {"pool_run_trivial": time.perf_counter() - t}


# -- data and models ---------------------------------------------------------------------------------------------


def make_players() -> tuple[Path, dict]:
    """``--players`` small players (+1 for the warm-up) simulated from the descriptive model, prior draws."""
    spec = load_model("descriptive")
    design = Design(participants=args.players + 1, sessions=args.sessions, trials_per_session=args.trials_per_session,
                    first_session=args.sessions + 1, seed=args.seed)
    trials = design_trials(design)
    rng = np.random.default_rng(args.seed)
    params: dict = {}
    for pid in trials.participants:
        for k, v in draw_parameters(spec, rng).items():
            params.setdefault(k, {})[str(pid)] = v
    sim = simulate_trials(spec, params, trials, seed=args.seed)
    path = OUT / "players.csv.gz"
    to_ebb_and_flow(sim).to_csv(path, index=False, float_format="%.6g", compression="gzip")
    write_json(OUT / "players.params.json", {"model": "descriptive", "seed": args.seed,
                                             "design": design.__dict__, "parameters": params})
    return path, {"players": args.players, "trials": len(sim.trials), "design": design.__dict__}


def small_nta():
    """The flexible model on a 4 x 3 grid with a short tutorial/practice and 2 histories."""
    d = read_toml(preset_path("fitting", "flexible"))
    d["name"] = "nta-small"
    d["parameters"]["gate_timescale"]["points"] = 4
    d["parameters"]["weight_timescale"]["points"] = 3
    d["network"].update(tutorial_blocks=2, tutorial_block_trials=100, max_practice_trials=200, histories=2)
    return model_from_dict(d)


# -- one timed phase (run in its own process, with its own compile cache) -----------------------------------------


def phase(data, spec, players: list[str], backend: str) -> dict:
    folder = RUNS / f"{spec.name}-{backend}"
    shutil.rmtree(folder, ignore_errors=True)  # fresh: no unit is reused
    options = FitOptions(draws=args.draws, tune=args.tune, chains=args.chains, seed=1, progress=False)
    load0 = os.getloadavg()
    cpu0 = children_cpu()
    self0 = self_cpu()
    stamp0 = time.time()
    t0 = time.perf_counter()
    inner = make(backend)
    t_make = time.perf_counter() - t0
    executor = Timed(inner)
    t1 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FitWarning)  # short chains: low ESS is expected
        result = fit(data, spec, options=options, participants=players, out=folder, executor=executor)
    t_fit = time.perf_counter() - t1
    t2 = time.perf_counter()
    executor.close()
    t_close = time.perf_counter() - t2
    wall = time.perf_counter() - t0
    stamp1 = time.time()
    n = len(players)
    seconds = json.loads(result.tree.attrs["seconds"])
    manifest_path = folder / ".units" / spec.name / "manifest.json"
    manifest = json.loads(manifest_path.read_text())["units"]
    unit_seconds = [float(u["seconds"]) for u in manifest.values()]
    w = args.workers
    return {
        "model": spec.name, "backend": backend, "participants": n, "trials": int(result.tree.attrs["n_trials"]),
        "workers": w, "executor_start": t_make, "fit_wall": t_fit, "executor_close": t_close, "wall": wall,
        "executor_run": executor.run_seconds, "first_result_after": executor.arrivals[0] if executor.arrivals else None,
        "driver_after_run": t_fit - executor.run_seconds,
        "driver_on_done_total": executor.on_done_seconds,
        "per_participant_cost_fit": t_fit * w / n, "per_participant_cost_wall": wall * w / n,
        "fit_recorded_seconds": seconds, "fit_recorded_total_per_unit": seconds["total"] / n,
        "manifest_units": len(unit_seconds), "manifest_seconds_median": statistics.median(unit_seconds),
        "manifest_seconds_mean": statistics.fmean(unit_seconds), "manifest_seconds_min": min(unit_seconds),
        "manifest_seconds_max": max(unit_seconds), "manifest_seconds_sum": sum(unit_seconds),
        "manifest_seconds_first_half_median": statistics.median(
            [float(u["seconds"]) for u in sorted(manifest.values(), key=lambda u: u["finished"])][: n // 2]),
        "manifest_seconds_second_half_median": statistics.median(
            [float(u["seconds"]) for u in sorted(manifest.values(), key=lambda u: u["finished"])][n // 2:]),
        "manifest_bytes": manifest_path.stat().st_size,
        "unit_files_bytes": sum(f.stat().st_size for f in manifest_path.parent.glob("*.unit")),
        "utilisation": sum(unit_seconds) / (executor.run_seconds * w),
        "children_cpu_seconds": children_cpu() - cpu0, "driver_cpu_seconds": self_cpu() - self0,
        "loadavg_before": load0, "loadavg_after": os.getloadavg(),
        "fit_file": str(result.path), "fit_file_bytes": result.path.stat().st_size,
        "stamps": [stamp0, stamp1],
    }


def identical(a, b) -> dict:
    """Bit-identical posterior, sample stats and pointwise log-likelihood?"""
    out = {}
    for group in ("posterior", "sample_stats", "log_likelihood"):
        da, db = a[group].to_dataset(), b[group].to_dataset()
        same = sorted(da.data_vars) == sorted(db.data_vars)
        diff = 0.0
        for name in da.data_vars:
            x, y = np.asarray(da[name].values), np.asarray(db[name].values)
            if x.shape != y.shape:
                same = False
                continue
            eq = np.array_equal(x, y, equal_nan=x.dtype.kind == "f")
            same = same and eq
            if not eq and x.dtype.kind == "f":
                diff = max(diff, float(np.nanmax(np.abs(x - y))))
        out[group] = {"identical": bool(same), "max_abs_difference": diff}
    out["identical"] = all(v["identical"] for v in out.values() if isinstance(v, dict))
    return out


# -- the driver: data, warm-up, start-up probes, one process per phase -------------------------------------------


def numba_cache(base: Path) -> dict:
    """Files and bytes of PyTensor's numba cache under ``base`` (``base_compiledir``)."""
    files = [f for f in (base / "numba").glob("*") if f.is_file()] if (base / "numba").exists() else []
    return {"files": len(files), "bytes": sum(f.stat().st_size for f in files)}


def child(mode: str, cache: Path, extra: list[str]) -> None:
    """Run this script in ``mode`` in a fresh process whose PyTensor compile cache is ``cache``.

    Every participant's model graph holds its data, so PyTensor compiles (numba) and caches functions per
    participant; with one shared cache the second backend would reuse the first one's compiled code.
    """
    flags = os.environ.get("PYTENSOR_FLAGS")
    env = {**os.environ, "PYTENSOR_FLAGS": f"{flags + ',' if flags else ''}base_compiledir={cache}"}
    forward = ["--players", str(args.players), "--nta-players", str(args.nta_players), "--sessions",
               str(args.sessions), "--trials-per-session", str(args.trials_per_session), "--draws", str(args.draws),
               "--tune", str(args.tune), "--chains", str(args.chains), "--workers", str(args.workers),
               "--seed", str(args.seed), "--name", args.name]
    subprocess.run([sys.executable, __file__, mode, *extra, *forward], env=env, check=True)


def run_child_mode() -> None:
    """``--warm-up`` or ``--phase MODEL:BACKEND``, in the process :func:`child` started."""
    data = cf.load_trials(OUT / "players.csv.gz")
    players = [str(p) for p in data.participants]
    specs = {"descriptive": load_model("descriptive"), "nta-small": small_nta()}
    if args.warm_up:
        # The extra last player only: compiles what every participant shares (untimed).
        options = FitOptions(draws=25, tune=20, chains=1, seed=1, progress=False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FitWarning)
            for name in ("descriptive", "nta-small") if args.nta_players else ("descriptive",):
                fit(data, specs[name], options=options, participants=players[-1:], out=None)
        return
    name, backend = args.phase.split(":")
    who = players[:args.players] if name == "descriptive" else players[:args.nta_players]
    row = phase(data, specs[name], who, backend)
    write_json(OUT / "phases" / f"{name}-{backend}.json", row)


def main() -> dict:
    started = time.perf_counter()
    monitor_path = OUT / "memory_samples.txt"
    monitor = start_monitor(monitor_path)
    default_cache = Path.home() / ".pytensor"
    report: dict = {"cogflex_version": __version__, "python": sys.version.split()[0], "cpus": os.cpu_count(),
                    "shared_machine": "yes: other sessions used the same 2 cores (see loadavg per phase)",
                    "settings": {"draws": args.draws, "tune": args.tune, "chains": args.chains,
                                 "workers": args.workers, "sampler": FitOptions().resolved_sampler()},
                    "argv": sys.argv[1:],
                    "environment": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "PYTENSOR_FLAGS")}}
    try:
        import ray

        report["ray_version"] = ray.__version__
        caches = OUT / "compile"
        base = caches / "base"
        previous = json.loads((OUT / "bench_backends.json").read_text()) if args.phases else None
        if previous is not None:
            if previous["settings"] != report["settings"] or not base.exists():
                raise SystemExit(f"--phases needs an earlier complete run in {OUT} with the same settings")
            report["data"], report["warm_up"] = previous["data"], previous["warm_up"]
            print(f"rerunning {', '.join(args.phases)} on the data and warm-up cache of the earlier run", flush=True)
        else:
            t = time.perf_counter()
            path, info = make_players()
            report["data"] = {**info, "file": str(path.relative_to(ROOT)), "seconds": time.perf_counter() - t}
            print(f"{args.players} players (+1 for the warm-up), {info['trials']} trials ({args.sessions} games x "
                  f"{args.trials_per_session}) -> {path}", flush=True)

            # Warm-up (untimed) on the extra player: the compile cache every phase starts from.
            shutil.rmtree(caches, ignore_errors=True)
            t = time.perf_counter()
            child("--warm-up", base, [])
            report["warm_up"] = {"seconds": time.perf_counter() - t, "numba_cache": numba_cache(base)}
            print(f"warm-up (own process, untimed) {report['warm_up']['seconds']:.1f} s; numba cache "
                  f"{report['warm_up']['numba_cache']['files']} files", flush=True)

        # Start-up overheads.
        probes = [ray_startup_probe() for _ in range(args.ray_starts)]
        local = [local_startup_probe() for _ in range(args.ray_starts)]
        med = {k: statistics.median(p[k] for p in probes)
               for k in ("init", "first_tasks", "warm_tasks", "import_fit_stack_wall", "shutdown", "total")}
        med["import_fit_stack_in_worker"] = statistics.median(
            s for p in probes for s in p["import_fit_stack_in_worker"])
        report["startup"] = {"ray_runs": probes, "ray_median": med, "local_runs": local,
                             "local_median": statistics.median(p["pool_run_trivial"] for p in local)}
        print(f"Ray start-up (median of {args.ray_starts}): init {med['init']:.1f} s, first trivial tasks "
              f"{med['first_tasks']:.2f} s, importing the fit stack in a worker {med['import_fit_stack_in_worker']:.1f}"
              f" s, shutdown {med['shutdown']:.1f} s; local pool start {report['startup']['local_median']:.2f} s",
              flush=True)

        # Timed phases, each in a fresh process with a copy of the warm-up cache (order local, ray, ray, local:
        # the shared machine's load drifts).
        plan = [("descriptive", ("local", "ray"))] + ([("nta-small", ("ray", "local"))] if args.nta_players else [])
        default_before = numba_cache(default_cache)
        rows, checks = [], {}
        for name, order in plan:
            for backend in order:
                if previous is not None and f"{name}:{backend}" not in args.phases:
                    rows.append(next(r for r in previous["phases"] if (r["model"], r["backend"]) == (name, backend)))
                    rows[-1]["rerun"] = False
                    continue
                cache = caches / f"{name}-{backend}"
                shutil.rmtree(cache, ignore_errors=True)
                shutil.copytree(base, cache)
                before = numba_cache(cache)
                child("--phase", cache, [f"{name}:{backend}"])
                row = json.loads((OUT / "phases" / f"{name}-{backend}.json").read_text())
                after = numba_cache(cache)
                row["numba_cache_new"] = {"files": after["files"] - before["files"],
                                          "bytes": after["bytes"] - before["bytes"]}
                time.sleep(1.2)  # let the monitor take a last sample
                row["memory"] = memory_between(monitor_path, row["stamps"][0], row["stamps"][1] + 1.0)
                row["cpu_per_participant"] = row["memory"].get("cpu_seconds_process_tree", float("nan")) / \
                    row["participants"]
                row["rerun"] = previous is not None
                rows.append(row)
                print(f"  {name:12s} {backend:5s} {row['participants']:4d} players: wall {row['wall']:7.1f} s "
                      f"(executor start {row['executor_start']:.1f} s, close {row['executor_close']:.1f} s); "
                      f"per participant {row['per_participant_cost_wall']:.2f} s x worker; unit median "
                      f"{row['manifest_seconds_median']:.2f} s; CPU {row['cpu_per_participant']:.2f} s/player; "
                      f"compiled {row['numba_cache_new']['files']} cache files; load "
                      f"{row['loadavg_before'][0]:.1f}->{row['loadavg_after'][0]:.1f}", flush=True)
            trees = {b: load_fit(r["fit_file"]) for r in rows if r["model"] == name for b in [r["backend"]]}
            checks[name] = identical(trees["local"], trees["ray"])
            print(f"  {name}: local and Ray posteriors identical: {checks[name]['identical']}", flush=True)
            del trees
        report["default_cache_untouched"] = numba_cache(default_cache) == default_before
        report["phases"] = rows
        report["identical_posteriors"] = checks
        report["ratios"] = {}
        for name, _ in plan:
            by = {r["backend"]: r for r in rows if r["model"] == name}
            report["ratios"][name] = {"ray_over_local_wall": by["ray"]["wall"] / by["local"]["wall"],
                                      "ray_over_local_fit_wall": by["ray"]["fit_wall"] / by["local"]["fit_wall"],
                                      "ray_over_local_unit_median": by["ray"]["manifest_seconds_median"]
                                      / by["local"]["manifest_seconds_median"],
                                      "ray_over_local_cpu": by["ray"]["cpu_per_participant"]
                                      / by["local"]["cpu_per_participant"]}
    finally:
        report["total_seconds"] = time.perf_counter() - started
        ru_self = resource.getrusage(resource.RUSAGE_SELF)
        ru_children = resource.getrusage(resource.RUSAGE_CHILDREN)
        report["rusage"] = {"self_max_rss_mib": ru_self.ru_maxrss / 1024,
                            "largest_reaped_child_max_rss_mib": ru_children.ru_maxrss / 1024,
                            "self_cpu_seconds": ru_self.ru_utime + ru_self.ru_stime,
                            "children_cpu_seconds": ru_children.ru_utime + ru_children.ru_stime}
        monitor.terminate()
        monitor.wait()
    return report


def table(report: dict) -> str:
    head = (f"{'model':12s} {'backend':7s} {'players':>7s} {'wall s':>8s} {'fit s':>8s} {'per-player':>10s} "
            f"{'unit med':>8s} {'unit mean':>9s} {'CPU/pl':>7s} {'util':>5s} {'PSS peak':>9s} {'max proc':>9s} "
            f"{'load':>9s}")
    lines = [head, "-" * len(head)]
    for r in report["phases"]:
        m = r["memory"]
        lines.append(f"{r['model']:12s} {r['backend']:7s} {r['participants']:7d} {r['wall']:8.1f} {r['fit_wall']:8.1f} "
                     f"{r['per_participant_cost_wall']:9.2f}s {r['manifest_seconds_median']:7.2f}s "
                     f"{r['manifest_seconds_mean']:8.2f}s {r['cpu_per_participant']:6.2f}s {r['utilisation']:5.2f} "
                     f"{m.get('peak_pss_total_mib', float('nan')):7.0f}MB "
                     f"{m.get('peak_rss_one_process_mib', float('nan')):7.0f}MB "
                     f"{r['loadavg_before'][0]:4.1f}-{r['loadavg_after'][0]:.1f}")
    lines.append("per-player = wall x workers / players (CPU-s of the 2-worker allocation); unit = seconds one "
                 "participant's fit took inside its worker (manifest); CPU/pl = CPU-s of the whole process tree\n"
                 "(driver, workers, Ray daemons) / players; util = sum(unit) / (executor run x workers)")
    for name, ratio in report["ratios"].items():
        lines.append(f"{name}: Ray/local wall {ratio['ray_over_local_wall']:.3f} (fit call only "
                     f"{ratio['ray_over_local_fit_wall']:.3f}; per-unit median "
                     f"{ratio['ray_over_local_unit_median']:.3f}; CPU-s of the process tree "
                     f"{ratio['ray_over_local_cpu']:.3f}); identical posteriors: "
                     f"{report['identical_posteriors'][name]['identical']}")
    return "\n".join(lines)


if __name__ == "__main__":
    if args.warm_up or args.phase:
        run_child_mode()
        sys.exit(0)
    report = main()
    print()
    print(table(report))
    print(f"total {report['total_seconds']:.0f} s; driver max RSS {report['rusage']['self_max_rss_mib']:.0f} MiB, "
          f"largest reaped child {report['rusage']['largest_reaped_child_max_rss_mib']:.0f} MiB")
    write_json(OUT / "bench_backends.json", report)
    print(f"wrote {OUT / 'bench_backends.json'}")
    if args.name == "bench_backends":
        write_json(ROOT / "analyses" / "out" / "bench_backends.json", report)
        print("wrote analyses/out/bench_backends.json")
