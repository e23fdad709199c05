"""Reproduce every figure of Sandbrink et al. (2024) into analyses/out/reproduce/.

The same as ``cogflex reproduce --out analyses/out/reproduce``: PNGs per
figure, ``numbers.json`` and ``summary.md`` (printed at the end). Usage::

    ./run python analyses/reproduce_paper.py [FIG ...] [--quick]
"""

from __future__ import annotations

import argparse

import torch

from _common import out_dir
from cogflex.reproduce import FIGURE_KEYS, reproduce


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("figures", nargs="*", choices=[[], *FIGURE_KEYS], metavar="FIG",
                        help=f"figures to run (default: all of {', '.join(FIGURE_KEYS)})")
    parser.add_argument("--quick", action="store_true", help="reduced settings")
    args = parser.parse_args()
    torch.set_num_threads(1)
    out = out_dir("reproduce" + ("_quick" if args.quick else ""))
    reproduce(args.figures or None, out=out, scale="quick" if args.quick else "paper")
    print((out / "summary.md").read_text())


if __name__ == "__main__":
    main()
