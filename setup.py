"""Build hook: bundle the repository's ``models/`` and ``data/`` folders into the package.

Everything else about the build is declared in ``pyproject.toml``. The presets
(``models/<kind>/*.toml``) and the bundled data (``data/``) stay where they are
in the repository, the editable source; a built wheel carries copies of them
under ``cogflex/_bundled/models`` and ``cogflex/_bundled/data`` (the two
folders side by side, as in the repository, so the relative path from
``models/pipelines/demo.toml`` to the synthetic players holds in both). The
package finds them through :mod:`cogflex.resources`; an editable install reads
the repository's folders directly, so nothing is copied for it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
#: Repository folder -> the file patterns of it that the package carries.
BUNDLED = {"models": ("*.toml", "*.md"), "data": ("*.toml", "*.json", "*.csv.gz", "*.md")}


class BuildPyWithBundledFiles(build_py):
    """``build_py`` that also copies the bundled folders into ``<build_lib>/cogflex/_bundled/``."""

    def run(self) -> None:
        """Build the package as usual, then copy ``BUNDLED`` (not for an editable install)."""
        super().run()
        if self.editable_mode:
            return
        target_root = Path(self.build_lib) / "cogflex" / "_bundled"
        shutil.rmtree(target_root, ignore_errors=True)  # no file deleted from the repository lingers in build/
        for folder, patterns in BUNDLED.items():
            for pattern in patterns:
                for source in sorted((HERE / folder).rglob(pattern)):
                    target = target_root / source.relative_to(HERE)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(source, target)


setup(cmdclass={"build_py": BuildPyWithBundledFiles})
