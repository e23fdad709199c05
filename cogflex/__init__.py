"""cogflex: a toolkit for task switching.

Simulate gated linear networks that learn task abstractions (Sandbrink,
Bauer, Proca, Saxe, Summerfield & Hummos, NeurIPS 2024)::

    import cogflex as cf
    result = cf.simulate(cf.load_config("fig2-flexible"))
    result.summary()["time_to_criterion"]

Subpackages: :mod:`cogflex.nta` (the network, its training, metrics, plots).
"""

from cogflex.errors import CogflexError, ConfigError, DivergenceError
from cogflex.nta import SimulationConfig, SimulationResult, load_config, load_result, simulate

__all__ = [
    "CogflexError",
    "ConfigError",
    "DivergenceError",
    "SimulationConfig",
    "SimulationResult",
    "load_config",
    "load_result",
    "simulate",
]

__version__ = "0.1.0"
