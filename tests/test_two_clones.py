"""Two clones of the same version share one environment (./run) without importing each other's code.

The commands run from a neutral folder: ``python -c`` puts the current directory first on the path, so from
inside a clone that clone's code is imported whatever the environment says.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.data.helpers import REPO

PROBE = """
import sys, time
from pathlib import Path
from importlib import metadata
print("ready", flush=True)
flag = Path(sys.argv[1])
while not flag.exists():
    time.sleep(0.05)
import cogflex.fit.compare as late  # imported only after the other clone has run ./run
print(Path(late.__file__).resolve().parents[2], metadata.version("cogflex"), flush=True)
"""


def _copy_clone(dest: Path) -> None:
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    for name in tracked.splitlines():
        src = REPO / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)


def test_a_long_job_keeps_its_clones_code_while_another_clone_runs(tmp_path):
    clone = tmp_path / "clone"
    _copy_clone(clone)
    flag = tmp_path / "go"
    job = subprocess.Popen([str(REPO / "run"), "python", "-c", PROBE, str(flag)], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        assert job.stdout.readline().strip() == "ready"
        other = subprocess.run([str(clone / "run"), "cogflex", "--version"], capture_output=True, text=True,
                               timeout=600, cwd=tmp_path)
        assert other.returncode == 0 and other.stdout.startswith("cogflex "), other.stderr
        other = subprocess.run([str(clone / "run"), "python", "-c", "import cogflex; print(cogflex.__file__)"],
                               capture_output=True, text=True, timeout=600, cwd=tmp_path)
        assert other.returncode == 0, other.stderr
        assert Path(other.stdout.strip()).resolve() == (clone / "cogflex" / "__init__.py").resolve()
        flag.touch()
        out, err = job.communicate(timeout=120)
    finally:
        if job.poll() is None:
            job.kill()
    assert job.returncode == 0, err
    where, version = out.split()
    assert Path(where) == REPO.resolve() and version
    # and the first clone still runs its own code afterwards
    again = subprocess.run([str(REPO / "run"), "python", "-c", "import cogflex; print(cogflex.__file__)"],
                           capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert Path(again.stdout.strip()).resolve() == (REPO / "cogflex" / "__init__.py").resolve()
