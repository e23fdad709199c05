"""Reproduce the figures of Sandbrink et al. (NeurIPS 2024) with one command.

``cogflex reproduce [FIG ...] --out DIR`` (or :func:`reproduce`) runs the
paper's experiments with the settings of the bundled presets, writes one PNG
per figure panel group, ``numbers.json`` with the key quantities next to the
paper's / reference values, and ``summary.md``. Figures: ``fig2`` (flexible vs
forgetful), ``fig3`` (composition), ``fig4`` (mechanism), ``fig5`` (regime
maps), ``fig6`` (fully connected network), ``fig8`` (switch curves),
``correlated`` (correlated teachers, appendix).
"""

from cogflex.reproduce.base import Figure, Quantity
from cogflex.reproduce.runner import FIGURE_KEYS, figure, reproduce, summary_markdown

__all__ = ["FIGURE_KEYS", "Figure", "Quantity", "figure", "reproduce", "summary_markdown"]
