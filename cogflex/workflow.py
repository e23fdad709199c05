"""The workflow's verbs beyond loading and fitting: compare fits and write the report (``cf.compare``, ``cf.report``).

Thin wrappers over :mod:`cogflex.fit.compare` and :mod:`cogflex.report`, taking fit files, folders, DataTrees
or a :class:`~cogflex.fit.compare.FitSet`, as the command line's ``cogflex compare`` and ``cogflex report`` do.
"""

from __future__ import annotations

from pathlib import Path

from cogflex.errors import CogflexError

__all__ = ["compare", "report"]


def _fit_set(fits):
    from cogflex.fit.compare import FitSet, check_comparable, load_fits
    from cogflex.fit.fitting import FitResult
    from cogflex.fit.schema import check_fit

    if isinstance(fits, FitSet):
        return fits
    items = list(fits) if isinstance(fits, list | tuple) else [fits]
    if all(isinstance(f, str | Path) for f in items):
        return load_fits(items)
    trees = {}
    for item in items:
        tree = item.tree if isinstance(item, FitResult) else item
        check_fit(tree, tree.attrs.get("model", "fit"))
        name = str(tree.attrs["model"])
        if name in trees:
            raise CogflexError(f"two fits of model {name!r}: compare fits of different models made on the same trials")
        trees[name] = tree
    fit_set = FitSet(trees)
    check_comparable(fit_set)
    return fit_set


def compare(fits, *, thin: int = 1, progress: bool = False):
    """PSIS-LOO comparison (stacking weights, pairwise differences) of fits of several models to the same trials.

    ``fits``: fit files or folders, fit results or DataTrees (:func:`cogflex.fit`), or a FitSet. Returns a
    :class:`~cogflex.fit.compare.Comparison` (``.pooled()``, ``.per_participant()``, ``.winners()``).
    """
    from cogflex.fit.compare import compare_fits

    return compare_fits(_fit_set(fits), thin=thin, progress=progress)


def report(fits, out: str | Path, *, comparison=None, data=None, title: str = "cogflex model comparison") -> Path:
    """Write the self-contained HTML model-comparison report of ``fits`` to ``out``; returns its path."""
    from cogflex.fit.compare import compare_fits
    from cogflex.report import write_report

    fit_set = _fit_set(fits)
    comparison = comparison or compare_fits(fit_set)
    out = Path(out)
    write_report(fit_set, comparison, out, data=data, title=title)
    return out
