"""``cogflex run PIPELINE.toml``: data -> cleaning -> fits -> comparison -> posterior predictive checks -> report.

A pipeline file names the data, the models and the sampler settings (every key is optional except
``data.file``; relative paths are relative to the pipeline file)::

    name = "my-study"
    description = "..."                  # one line, shown by `cogflex presets`
    out = "results"                      # output directory (default: <file stem>-out next to the file)

    [data]
    file = "trials.csv.gz"
    format = "ebb-and-flow"              # or "csv" with mapping = "lab.toml" (see `cogflex data check --help`)
    participants = []                    # default: all

    [fit]
    models = ["flexible", "forgetful", "descriptive"]   # names or model TOML files
    draws = 1000
    tune = 1000
    chains = 4
    seed = 0

    [ppc]
    draws = 30                           # replications per model (0: no posterior predictive checks)
    seed = 7
    practice_bins = [150, 250, 350, 501] # bin edges; default: 3 bins of equal numbers of sessions

    [report]
    title = "My study: flexible vs forgetful"

Outputs in ``out``: ``fits/<model>.nc`` and ``.summary.json`` (the fitting layer's files), ``comparison.csv``
and ``comparison_pairwise.csv``,
``ppc/<model>.csv``, ``report.html``, ``report.json``, ``pipeline.json`` (resolved config, data hash, step
timings, software versions) and a copy of the pipeline file.

Resuming: a fit whose file exists, opens, and was made with the same model spec, data and sampler settings
is not recomputed (a changed setting is named and that model refitted); a killed run loses at most the fit
in progress, since every file is written under a temporary name and renamed when complete (temporary files
left by a killed process are removed at the next run). Posterior
predictive tables are reused when their fit file and settings are unchanged.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from cogflex import resources
from cogflex.errors import CogflexError, ConfigError, shown
from cogflex.fit.options import SAMPLER_DEFAULTS, FitOptions, check_seed
from cogflex.io import atomic_path, check_output_dir, write_json
from cogflex.typed_config import from_mapping, read_toml, to_mapping

__all__ = ["Pipeline", "DataStep", "FitStep", "PPCStep", "ReportStep", "load_pipeline", "run_pipeline",
           "pipelines_dir", "PipelineResult"]


@dataclass(frozen=True)
class DataStep:
    """Which trials: a file, its format (and CSV mapping), optionally a subset of participants."""

    file: str
    format: Literal["ebb-and-flow", "csv"] = "ebb-and-flow"
    mapping: str | None = None
    participants: tuple[str, ...] = ()
    #: What makes a trial correct (``cogflex.data.load_trials``): "response" or "column".
    correctness: Literal["response", "column"] = "response"

    def __post_init__(self) -> None:
        if self.format == "csv" and not self.mapping:
            raise ConfigError("mapping", "a csv file needs a mapping TOML (mapping = \"lab.toml\"; see README)")
        if self.format != "csv" and self.mapping:
            raise ConfigError("mapping", "only applies to format = \"csv\"")


@dataclass(frozen=True)
class FitStep:
    """Models and sampler settings (see ``cogflex fit --help``).

    ``hierarchical``: true, false or "auto" (the default: hierarchical for many participants with few trials each,
    :data:`cogflex.fit.options.HIERARCHICAL_RULE`).
    ``refine``, ``refine_points``, ``refine_tolerance``: the grid refinement around each participant's
    posterior (:mod:`cogflex.fit.refine`; on by default, ``refine = false`` samples on the model's own grid).
    """

    models: tuple[str, ...] = ("flexible", "forgetful", "descriptive")
    draws: int = SAMPLER_DEFAULTS.draws
    tune: int = SAMPLER_DEFAULTS.tune
    chains: int = SAMPLER_DEFAULTS.chains
    seed: int = SAMPLER_DEFAULTS.seed
    target_accept: float = SAMPLER_DEFAULTS.target_accept
    sampler: Literal["auto", "nutpie", "pymc"] = SAMPLER_DEFAULTS.sampler
    hierarchical: bool | Literal["auto"] = SAMPLER_DEFAULTS.hierarchical
    refine: bool = SAMPLER_DEFAULTS.refine
    refine_points: int = SAMPLER_DEFAULTS.refine_points
    refine_tolerance: float = SAMPLER_DEFAULTS.refine_tolerance
    jobs: int = 1

    def __post_init__(self) -> None:
        if len(self.models) < 2:
            raise ConfigError("models", "list at least two models (a pipeline compares them)")
        if len(set(self.models)) != len(self.models):
            raise ConfigError("models", "a model is listed twice")
        if self.jobs < 1:
            raise ConfigError("jobs", "must be at least 1")
        # the sampler settings' own checks (chains, draws, seed ...), before any output folder is made
        self.options()

    def options(self, *, progress: bool = True) -> FitOptions:
        """The sampler settings of these fits (:class:`~cogflex.fit.options.FitOptions`)."""
        return FitOptions(draws=self.draws, tune=self.tune, chains=self.chains, seed=self.seed,
                          target_accept=self.target_accept, sampler=self.sampler, hierarchical=self.hierarchical,
                          refine=self.refine, refine_points=self.refine_points,
                          refine_tolerance=self.refine_tolerance, progress=progress)


@dataclass(frozen=True)
class PPCStep:
    """Posterior predictive checks: replications per model (0: none), seed and practice bins."""

    draws: int = 30
    seed: int = 7
    practice_bins: tuple[float, ...] = ()
    n_bins: int = 3

    def __post_init__(self) -> None:
        if self.draws < 0 or self.draws == 1:
            raise ConfigError("draws", "0 (no checks) or at least 2 replications")
        check_seed(self.seed)
        if self.practice_bins and len(self.practice_bins) < 2:
            raise ConfigError("practice_bins", "needs at least two edges")

    @property
    def bins(self):
        """Practice bins for :func:`cogflex.data.summarize` (edges, or a number of bins)."""
        return list(self.practice_bins) if self.practice_bins else self.n_bins


@dataclass(frozen=True)
class ReportStep:
    """Report title and the thinning of draws for PSIS-LOO (memory; 1 = all draws)."""

    title: str = ""
    thin: int = 1

    def __post_init__(self) -> None:
        if self.thin < 1:
            raise ConfigError("thin", "must be at least 1")


@dataclass(frozen=True)
class Pipeline:
    """A whole analysis: data, fits, comparison, checks, report (see the module docstring)."""

    data: DataStep
    name: str = "pipeline"
    description: str = ""
    out: str = ""
    fit: FitStep = field(default_factory=FitStep)
    ppc: PPCStep = field(default_factory=PPCStep)
    report: ReportStep = field(default_factory=ReportStep)
    base: str = ""  # directory relative paths are resolved against (the pipeline file's)

    def __post_init__(self) -> None:
        named = [("out", self.out), ("data.file", self.data.file), ("data.mapping", self.data.mapping)]
        named += [("fit.models", m) for m in self.fit.models if m.endswith(".toml")]
        for key, value in named:
            if value:
                self.path(value, key=key)

    def path(self, value: str, *, key: str = "path") -> Path:
        """``value`` resolved against the pipeline file's directory (``key`` names it in errors)."""
        if "\x00" in value:
            raise ConfigError(key, f"{shown(value)} holds a NUL character")
        try:
            p = Path(value).expanduser()
        except RuntimeError as exc:  # ~user that does not exist
            raise ConfigError(key, f"cannot expand {shown(value)} ({exc})") from None
        return (p if p.is_absolute() or not self.base else Path(self.base) / p).resolve()

    @property
    def out_dir(self) -> Path:
        """The output directory."""
        return self.path(self.out) if self.out else Path(self.base or ".") / f"{self.name}-out"


def pipelines_dir() -> Path:
    """The bundled pipeline presets' folder (``models/pipelines``; user folders: :mod:`cogflex.resources`)."""
    return resources.bundled_models_dir() / "pipelines"


def load_pipeline(path_or_name: str | Path) -> Pipeline:
    """Read a pipeline TOML, or a preset by name (e.g. ``demo``; found as :func:`cogflex.resources.preset_path`)."""
    text = str(path_or_name)
    path = Path(text)
    preset = not (path.suffix or path.exists())
    if preset:
        path = resources.preset_path("pipelines", text)
    raw = read_toml(path)
    raw.setdefault("name", path.stem)
    if preset and not raw.get("out"):
        raw["out"] = str(Path.cwd() / f"cogflex-{raw['name']}")  # presets write to the working directory
    if "base" in raw:
        raise ConfigError("base", "unknown key", source=str(path))
    try:
        pipe = from_mapping(Pipeline, {**raw, "base": str(path.resolve().parent)})
    except ConfigError as exc:
        raise exc.within(source=str(path)) from None
    return pipe


@dataclass
class PipelineResult:
    """What :func:`run_pipeline` produced: output paths, comparison, step log."""

    out: Path
    report: Path
    comparison: object
    steps: list[dict]
    wall_seconds: float


def _load_data(pipe: Pipeline):
    from cogflex.data import CsvMapping, load_trials

    file = pipe.path(pipe.data.file)
    if pipe.data.format == "csv":
        mapping = CsvMapping.from_args([], [], toml=str(pipe.path(pipe.data.mapping)))
        return load_trials(file, "csv", mapping=mapping, correctness=pipe.data.correctness)
    return load_trials(file, pipe.data.format, correctness=pipe.data.correctness)


def _expected_attrs(spec, fd, pipe: Pipeline) -> dict:
    f = pipe.fit
    return {"model_spec": json.dumps(spec.to_dict()), "data_digest": fd.digest,
            "participants": json.dumps(fd.participants), "draws": f.draws, "tune": f.tune, "chains": f.chains,
            "seed": f.seed, "target_accept": f.target_accept,
            "hierarchical": int(f.options().resolved(fd).hierarchical),  # "auto" decided on these data
            "refine": f.options().refine_record()}


def _finished(path: Path, expected: dict) -> tuple[bool, str]:
    """Whether ``path`` holds a complete fit made with ``expected`` settings, and why not."""
    from cogflex.fit.fitting import load_fit

    if not path.exists():
        return False, "not fitted yet"
    try:
        tree = load_fit(path)
    except CogflexError as exc:
        return False, f"existing file unusable ({exc}); refitting"
    for key, want in expected.items():
        have = tree.attrs.get(key)
        if isinstance(want, float) or isinstance(want, int):
            same = have is not None and float(have) == float(want)
        else:
            same = have == want
        if not same:
            what = {"model_spec": "the model spec", "data_digest": "the data", "participants": "the participants"}.get(
                key, key)
            detail = "" if key in ("model_spec", "data_digest", "participants") else f" ({have} -> {want})"
            return False, f"{what} changed{detail}; refitting"
    return True, "finished fit found, not recomputed"


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def run_pipeline(pipe: Pipeline | str | Path, *, out: str | Path | None = None, progress: bool = True,
                 log: Callable[[str], None] = print, source: str | Path | None = None,
                 executor=None) -> PipelineResult:
    """Run (or resume) a pipeline; return where everything went.

    Parameters
    ----------
    pipe
        A :class:`Pipeline` or a pipeline TOML / preset name.
    out
        Output directory (overrides the file's ``out``).
    progress
        Progress bars for sampling and PSIS-LOO.
    log
        Receives one line per step (default: print).
    executor
        Runs the per-participant fits (default: a local pool of ``[fit] jobs``
        processes; see :mod:`cogflex.executors` for Ray).
    """
    import pandas as pd

    from cogflex.fit.compare import compare_fits, load_fits, verdict_phrase
    from cogflex.fit.executor import LocalExecutor
    from cogflex.fit.fitting import FitWarning, fit
    from cogflex.fit.models import load_model
    from cogflex.fit.ppc import PPC_FORMAT, posterior_predictive_check
    from cogflex.fit.prepare import prepare
    from cogflex.report import software_versions, write_report

    if not isinstance(pipe, Pipeline):
        source = source or pipe
        pipe = load_pipeline(pipe)
    if out is not None:
        pipe = replace(pipe, out=str(Path(out).resolve()))
    out_dir = pipe.out_dir
    check_output_dir(out_dir, "out")
    start = time.perf_counter()
    steps: list[dict] = []

    def step(name: str, t0: float, **info) -> None:
        steps.append({"step": name, "seconds": round(time.perf_counter() - t0, 3), **info})

    t0 = time.perf_counter()
    data = _load_data(pipe)
    participants = list(pipe.data.participants) or None
    fd = prepare(data, participants=participants)
    log(f"data: {data.source}: {len(data.trials):,} trials, {len(fd.participants)} participant(s); "
        f"{fd.n_trials:,} trials enter the likelihood (first trial of each session and RTs outside 0.15-3 s removed)")
    log(f"  {data.correctness_line()}")
    for warning in fd.warnings:
        log(f"  WARNING: {warning}")
    step("data", t0, trials=len(data.trials), trials_fitted=fd.n_trials, participants=fd.participants,
         data_digest=fd.digest)
    specs = [load_model(pipe.path(m) if m.endswith((".toml", ".py")) else m) for m in pipe.fit.models]
    # the output folder is made only once the data and every model have loaded
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise ConfigError("out", f"{out_dir} (or a folder above it) is a file, not a folder") from None
    except OSError as exc:
        raise ConfigError("out", f"cannot create the output folder {out_dir} ({exc.strerror or exc})") from None
    stale = [p for p in out_dir.rglob(".*.part") if p.is_file()]
    for p in stale:  # temporary files of a run that was killed while writing (SIGKILL, power loss)
        p.unlink()
    if stale:
        log(f"removed {len(stale)} temporary file(s) left by an interrupted run: {', '.join(p.name for p in stale)}")

    options = pipe.fit.options(progress=progress)
    fits_dir = out_dir / "fits"
    paths = []
    for spec in specs:
        t0 = time.perf_counter()
        path = fits_dir / f"{spec.name}.nc"
        done, why = _finished(path, _expected_attrs(spec, fd, pipe))
        if done:
            log(f"fit {spec.name}: {why} ({path})")
            step(f"fit {spec.name}", t0, reused=True)
        else:
            log(f"fit {spec.name}: {why}")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FitWarning)  # reported in the report
                result = fit(fd, spec, options=options, out=fits_dir,
                             executor=executor or LocalExecutor(pipe.fit.jobs))
            s = result.summary
            log(f"fit {spec.name}: {s['wall_seconds']:.0f} s, R-hat max {s['rhat_max']:.3f}, bulk ESS min "
                f"{s['ess_bulk_min']:.0f}, divergences {s['divergences']}")
            for w in s["warnings"]:
                log(f"  WARNING: {w}")
            step(f"fit {spec.name}", t0, reused=False)
        paths.append(path)

    t0 = time.perf_counter()
    fits = load_fits(paths)
    comparison = compare_fits(fits, thin=pipe.report.thin, progress=progress)
    comparison.to_csv(out_dir / "comparison.csv")
    for pid, w in comparison.winners().items():
        if w["runner_up"] is None:
            continue
        scope = "pooled" if pid == "all" else f"participant {pid}"
        log(f"comparison, {scope}: {w['model']} wins by {w['elpd_diff']:.1f} +- {w['dse']:.1f} ELPD over "
            f"{w['runner_up']}, {verdict_phrase(w)}")
    step("comparison", t0)

    ppc = None
    ppc_settings = {"draws": pipe.ppc.draws, "seed": pipe.ppc.seed, "bins": pipe.ppc.bins}
    if pipe.ppc.draws:
        tables = []
        for name, tree in fits.trees.items():
            t0 = time.perf_counter()
            target = out_dir / "ppc" / f"{name}.csv"
            stamp = {"fit": _file_digest(fits.paths[name]), "format": PPC_FORMAT, **ppc_settings}
            stamp_path = target.with_suffix(".json")
            if target.exists() and stamp_path.exists() and json.loads(stamp_path.read_text()) == json.loads(
                    json.dumps(stamp)):
                table = pd.read_csv(target, dtype={"participant": str, "practice_bin": str})
                log(f"ppc {name}: reusing {target}")
            else:
                table = posterior_predictive_check(tree, data, draws=pipe.ppc.draws, seed=pipe.ppc.seed,
                                                   bins=pipe.ppc.bins)
                with atomic_path(target) as tmp:
                    table.to_csv(tmp, index=False, float_format="%.6g")
                write_json(stamp_path, stamp)
                log(f"ppc {name}: {pipe.ppc.draws} replications, {time.perf_counter() - t0:.0f} s")
            tables.append(table)
            step(f"ppc {name}", t0)
        ppc = pd.concat(tables, ignore_index=True)

    t0 = time.perf_counter()
    config = to_mapping(pipe)
    config.pop("base")
    manifest = {"pipeline": config, "source": str(source) if source else None, "out": str(out_dir),
                "data_digest": fd.digest, "trial_set": fits.attrs.get("trial_set"),
                "software": software_versions()}
    report_path = out_dir / "report.html"
    write_report(fits, comparison, report_path, out_json=out_dir / "report.json", ppc=ppc, data=data,
                 title=pipe.report.title or f"{pipe.name}: model comparison", pipeline=config,
                 ppc_settings=ppc_settings if ppc is not None else None,
                 ppc_note=None if ppc is not None else "ppc.draws = 0 in the pipeline")
    step("report", t0)
    wall = time.perf_counter() - start
    write_json(out_dir / "pipeline.json", {**manifest, "steps": steps, "wall_seconds": wall})
    if source and Path(source).exists() and Path(source).resolve() != (out_dir / "pipeline.toml").resolve():
        with atomic_path(out_dir / "pipeline.toml") as tmp:
            shutil.copyfile(source, tmp)
    log(f"wrote {report_path}, {out_dir / 'report.json'}, {out_dir / 'comparison.csv'} ({wall:.0f} s)")
    return PipelineResult(out=out_dir, report=report_path, comparison=comparison, steps=steps, wall_seconds=wall)
