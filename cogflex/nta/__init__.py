"""The neural task abstraction (NTA) network of Sandbrink et al. (2024).

Gated linear networks y = sum_p c_p W_p x whose weights and fast, bounded
gates learn jointly by gradient descent on blocked task curricula.
"""

from cogflex.nta.config import SimulationConfig, load_config, preset_names
from cogflex.nta.results import SimulationResult, load_result
from cogflex.nta.simulation import InitialState, initial_state, simulate

__all__ = [
    "SimulationConfig",
    "SimulationResult",
    "InitialState",
    "initial_state",
    "load_config",
    "load_result",
    "preset_names",
    "simulate",
]
