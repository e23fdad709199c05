"""Finished units on disk: data formats only, so a results folder never runs anyone's code."""

from __future__ import annotations

import pickle

import h5py
import numpy as np
import xarray as xr

from cogflex.units import UnitStore

SETTINGS = {"model": "m", "seed": 3}


class _Planted:
    """A pickle that, when loaded, writes a marker file (what an attacker would do with a shell command)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_fit_result_round_trips_through_a_data_file(tmp_path):
    post = xr.Dataset({"tau": (("chain", "draw", "participant"), np.arange(12.0).reshape(2, 3, 2))},
                      coords={"participant": ["p1", "p2"]}, attrs={"created_at": "now", "nested": {"a": 1}})
    post["tau"].attrs["units"] = "trials"
    result = {"posterior": post, "seed": 7, "sampler": "nutpie", "seconds": {"tables": 1.5},
              "interpolation_check": [{"participant": "p1", "difference": -0.5,
                                       "differences": np.array([-0.5, 0.25])}], "mode_search": None}
    store = UnitStore(tmp_path / "units", log=lambda line: None)
    store.save("m p1", SETTINGS, result)
    (path,) = (tmp_path / "units").glob("*.unit")
    assert path.read_bytes()[:8] == b"\x89HDF\r\n\x1a\n"  # a netCDF-4 (HDF5) file, not a pickle
    back = UnitStore(tmp_path / "units").load("m p1", SETTINGS)
    xr.testing.assert_identical(back["posterior"], post)
    assert back["posterior"].attrs == {"created_at": "now", "nested": {"a": 1}}
    assert back["posterior"]["tau"].attrs == {"units": "trials"}
    assert back["seed"] == 7 and back["sampler"] == "nutpie" and back["seconds"] == {"tables": 1.5}
    assert back["interpolation_check"][0]["differences"] == [-0.5, 0.25] and back["mode_search"] is None
    assert UnitStore(tmp_path / "units").load("m p1", {**SETTINGS, "seed": 4}) is None  # another key


def test_arrays_are_stored_as_data_not_json(tmp_path):
    """A fit's pointwise log-likelihood (chains x draws x trials float32) is a netCDF variable: same dtype and
    values back, and the JSON attribute stays small (a real player's 4 x 1,000 x 22,000 values were 1.5 GB of
    JSON text, which netCDF refuses)."""
    ll = np.random.default_rng(0).normal(size=(2, 50, 3000)).astype(np.float32)
    store = UnitStore(tmp_path / "units", log=lambda line: None)
    posterior = xr.Dataset({"x": ("draw", np.zeros(3))})
    store.save("m p1", SETTINGS, {"log_likelihood": ll, "seed": 1, "posterior": posterior})

    (path,) = (tmp_path / "units").glob("*.unit")
    with h5py.File(path) as handle:
        assert len(handle.attrs["json"]) < 100
    back = UnitStore(tmp_path / "units").load("m p1", SETTINGS)
    assert back["log_likelihood"].dtype == np.float32
    np.testing.assert_array_equal(back["log_likelihood"], ll)
    assert back["seed"] == 1 and set(back) == {"log_likelihood", "seed", "posterior"}


def test_a_planted_pickle_is_never_executed(tmp_path):
    """A pickle put where a unit file belongs is unreadable (reported, recomputed), and its code never runs."""
    store = UnitStore(tmp_path / "units", log=lambda line: None)
    store.save("m p1", SETTINGS, {"seed": 1, "posterior": xr.Dataset({"x": ("draw", np.zeros(3))})})
    (path,) = (tmp_path / "units").glob("*.unit")
    marker = tmp_path / "pwned"
    path.write_bytes(pickle.dumps({"key": "anything", "result": _Planted(marker)}))
    lines: list[str] = []
    assert UnitStore(tmp_path / "units", log=lines.append).load("m p1", SETTINGS) is None
    assert not marker.exists()
    assert lines == ["m p1: stored result unreadable; recomputing"]


def test_a_unit_of_many_participants_has_a_valid_file_name(tmp_path):
    """A hierarchical fit's unit is named by all its participants: 60 ids must still make a file (bug: ENAMETOOLONG)."""
    store = UnitStore(tmp_path / "units")
    names = ["flexible " + "+".join(f"participant-{k:03d}" for k in range(60)),
             "flexible " + "+".join(f"participant-{k:03d}" for k in range(61))]
    for k, name in enumerate(names):
        store.save(name, {"k": k}, {"value": np.arange(3) + k})
    assert all(len(p.name) <= 120 for p in (tmp_path / "units").glob("*.unit"))
    assert len(list((tmp_path / "units").glob("*.unit"))) == 2  # same prefix, different names: two files
    for k, name in enumerate(names):
        assert np.array_equal(store.load(name, {"k": k})["value"], np.arange(3) + k)
