"""Human task-switching data: one validated trial schema, loaders, cleaning, summaries.

>>> from cogflex.data import load_trials, clean, summarize
>>> data = load_trials("ebb_and_flow.csv.gz", format="ebb-and-flow")   # doctest: +SKIP
"""

from cogflex.data.cleaning import RULES, CleaningRules, clean, participant_warnings
from cogflex.data.dataset import TrialData, natural_key, natural_sorted
from cogflex.data.loaders import (
                                  CORRECTNESS,
                                  EBB_AND_FLOW_FIELDS,
                                  FORMATS,
                                  CsvMapping,
                                  apply_correctness,
                                  load_csv,
                                  load_ebb_and_flow,
                                  load_trials,
)
from cogflex.data.schema import COLUMNS, REQUIRED, derive, validate
from cogflex.data.summaries import Summary, practice_bins, summarize

__all__ = [
    "RULES",
    "CleaningRules",
    "Summary",
    "clean",
    "participant_warnings",
    "practice_bins",
    "summarize",
    "COLUMNS",
    "REQUIRED",
    "EBB_AND_FLOW_FIELDS",
    "FORMATS",
    "CORRECTNESS",
    "apply_correctness",
    "CsvMapping",
    "TrialData",
    "natural_key",
    "natural_sorted",
    "derive",
    "load_csv",
    "load_ebb_and_flow",
    "load_trials",
    "validate",
]
