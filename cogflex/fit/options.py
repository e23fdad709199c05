"""Sampler settings of a fit, and their defaults in one place (``cf.fit``, ``cogflex fit``, pipelines).

Kept free of heavy imports so that the command line's ``--help`` and pipeline parsing stay fast.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from cogflex.errors import ConfigError

__all__ = ["FitOptions", "SAMPLER_DEFAULTS", "check_seed", "MIN_FIT_DRAWS", "use_hierarchical", "HIERARCHICAL_RULE"]

#: Fewest posterior draws (chains x draws) a fit may keep: PSIS-LOO fits its Pareto tail to S / 5 >= 5 draws
#: (the comparison's own limit, :data:`cogflex.fit.compare.MIN_DRAWS`).
MIN_FIT_DRAWS = 25


#: ``hierarchical = "auto"``: one hierarchical fit when the data have at least ``min_participants``
#: participants with a median of at most ``max_trials`` trials in the likelihood each, and at most
#: ``max_participants`` participants (beyond that, independent per-participant jobs scale out across machines).
HIERARCHICAL_RULE = {"min_participants": 8, "max_trials": 1000, "max_participants": 300}


def use_hierarchical(fd) -> bool:
    """The ``"auto"`` rule (:data:`HIERARCHICAL_RULE`) on prepared data: many participants, few trials each."""
    import numpy as np

    n = len(fd.participants)
    counts = fd.trials.groupby("pidx").size().to_numpy()
    rule = HIERARCHICAL_RULE
    return bool(rule["min_participants"] <= n <= rule["max_participants"]
                and float(np.median(counts)) <= rule["max_trials"])


def check_seed(seed, field: str = "seed") -> int:
    """``seed`` as an int in [0, 2^63), the range numpy's generators and the netCDF attributes take."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
        raise ConfigError(field, f"must be an integer from 0 to 2^63 - 1, got {seed!r}")
    return seed


@dataclass(frozen=True)
class FitOptions:
    """Sampler settings of a fit (the one place their defaults are set).

    ``progress`` shows progress bars on a terminal and plain progress lines otherwise (a log file);
    ``posterior_predictive`` adds that many replications of the data under posterior draws; ``refine`` and
    the ``refine_*`` settings put a finer network grid where each participant's posterior is
    (:mod:`cogflex.fit.refine`).
    """

    draws: int = 1000
    tune: int = 1000
    chains: int = 4
    seed: int = 0
    sampler: str = "auto"  # auto (nutpie when installed) | nutpie | pymc
    target_accept: float = 0.9
    hierarchical: bool | str = "auto"  # True | False | "auto" (HIERARCHICAL_RULE, resolved on the data)
    progress: bool = True
    posterior_predictive: int = 0  # replications of the data under posterior draws (0: none)
    refine: bool = True  # refine network grids around each participant's posterior (cogflex.fit.refine)
    refine_points: int = 9  # nodes per axis of a refined window
    refine_tolerance: float = 1.0  # largest |exact - interpolated| log-likelihood a pilot may leave
    refine_rounds: int = 3  # most refined windows per participant

    def __post_init__(self) -> None:
        for name in ("draws", "tune", "chains"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < (0 if name == "tune" else 1):
                raise ConfigError(name, f"must be an integer >= {0 if name == 'tune' else 1}, got {value!r}")
        if not 0 < self.target_accept < 1:
            raise ConfigError("target_accept", f"must be between 0 and 1 (exclusive), got {self.target_accept}")
        if self.hierarchical not in (True, False, "auto") or isinstance(self.hierarchical, int | float) and \
                not isinstance(self.hierarchical, bool):
            raise ConfigError("hierarchical", f"must be true, false or \"auto\", got {self.hierarchical!r}")
        if self.sampler not in ("auto", "nutpie", "pymc"):
            raise ConfigError("sampler", f"must be auto, nutpie or pymc, got {self.sampler!r}")
        if self.posterior_predictive < 0:
            raise ConfigError("posterior_predictive", "must not be negative")
        if not isinstance(self.refine_points, int) or not 3 <= self.refine_points <= 33:
            raise ConfigError("refine_points", f"must be an integer from 3 to 33, got {self.refine_points!r}")
        if not self.refine_tolerance > 0:
            raise ConfigError("refine_tolerance", f"must be positive, got {self.refine_tolerance!r}")
        if not isinstance(self.refine_rounds, int) or not 1 <= self.refine_rounds <= 10:
            raise ConfigError("refine_rounds", f"must be an integer from 1 to 10, got {self.refine_rounds!r}")
        check_seed(self.seed)
        if self.draws * self.chains < MIN_FIT_DRAWS:
            raise ConfigError("draws", f"{self.chains} chain(s) x {self.draws} draws = {self.draws * self.chains} "
                                       f"posterior draws; PSIS-LOO needs at least {MIN_FIT_DRAWS} (more draws or "
                                       "chains)")

    def resolved(self, fd) -> FitOptions:
        """These options with ``hierarchical = "auto"`` decided on the data ``fd`` (:func:`use_hierarchical`)."""
        if self.hierarchical != "auto":
            return self
        return replace(self, hierarchical=use_hierarchical(fd))

    def refine_record(self) -> str:
        """The grid-refinement settings as JSON text (a fit's ``refine`` attribute; pipelines compare it)."""
        import json

        return json.dumps({"refine": self.refine, "points": self.refine_points, "tolerance": self.refine_tolerance,
                           "rounds": self.refine_rounds}, sort_keys=True)

    def resolved_sampler(self) -> str:
        """``nutpie`` when installed (much faster), else PyMC's own NUTS."""
        if self.sampler != "auto":
            return self.sampler
        try:
            import nutpie  # noqa: F401
        except ImportError:
            return "pymc"
        return "nutpie"


#: The sampler settings' defaults (the CLI's and the pipeline's defaults are these).
SAMPLER_DEFAULTS = FitOptions()
