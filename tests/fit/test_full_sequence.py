"""full_sequence: tutorial, unobserved practice before the first observed session, gaps, the observed mask."""

from __future__ import annotations

import numpy as np
import pytest

from cogflex.errors import ConfigError
from cogflex.fit.network import NetworkSettings, full_sequence
from cogflex.fit.sequence import Sequence


def make_sequence(sessions: list[int], per_session: int, *, seed: int = 0, r: int = 4, switch_rate: float = 0.3,
                  unobserved: tuple[int, ...] = ()) -> Sequence:
    """A hand-made sequence: ``per_session`` trials in each listed session, runs switching at ``switch_rate``."""
    rng = np.random.default_rng(seed)
    session = np.repeat(np.array(sessions, dtype=np.int64), per_session)
    n = len(session)
    task = np.zeros(n, dtype=np.int8)
    for i in range(1, n):
        task[i] = 1 - task[i - 1] if rng.random() < switch_rate else task[i - 1]
    features = rng.integers(0, r, size=(n, 2)).astype(np.int8)
    observed = np.ones(n, dtype=bool)
    observed[list(unobserved)] = False
    return Sequence(participant="p", rows=np.arange(n), task=task, features=features, session=session,
                    observed=observed, correct=np.ones(n, dtype=bool), rt=np.full(n, 0.6), n_responses=r)


def settings(**kw) -> NetworkSettings:
    base = dict(tutorial_blocks=3, tutorial_block_trials=7, max_practice_trials=10_000, seed=4)
    return NetworkSettings(**{**base, **kw})


def test_tutorial_blocks_alternate_tasks_and_are_unobserved():
    seq = make_sequence([1, 2], 10)
    task, feat, observed = full_sequence(seq, settings())
    assert len(task) == 21 + 20  # first session 1: no practice, no gaps
    assert list(task[:21]) == [0] * 7 + [1] * 7 + [0] * 7
    assert not observed[:21].any() and observed[21:].all()
    assert feat.shape == (41, 2) and feat.min() >= 0 and feat.max() < 4


def test_no_tutorial():
    seq = make_sequence([1], 12)
    for s in (settings(tutorial_blocks=0), settings(tutorial_block_trials=0)):
        task, feat, observed = full_sequence(seq, s)
        assert np.array_equal(task, seq.task) and np.array_equal(feat, seq.features)
        assert np.array_equal(observed, seq.observed)


@pytest.mark.parametrize(("first", "per_session", "cap", "expected"), [
    (1, 10, 10_000, 0),
    (4, 10, 10_000, 30),  # (first session - 1) x trials per session
    (150, 10, 10_000, 1490),
    (150, 10, 500, 500),  # capped by max_practice_trials
    (0, 10, 10_000, 0),  # sessions counted from 0: nothing before
])
def test_practice_before_the_first_observed_session(first, per_session, cap, expected):
    seq = make_sequence([first, first + 1], per_session)
    task, _, observed = full_sequence(seq, settings(tutorial_blocks=0, max_practice_trials=cap))
    assert len(task) == expected + len(seq)
    assert not observed[:expected].any()
    assert np.array_equal(task[expected:], seq.task) and np.array_equal(observed[expected:], seq.observed)


def test_trials_per_session_setting_overrides_the_participant_mean():
    seq = make_sequence([5, 6], 10)
    task, _, _ = full_sequence(seq, settings(tutorial_blocks=0, trials_per_session=3.0))
    assert len(task) == 4 * 3 + 20
    # the default is the participant's mean number of trials per observed session (here 10)
    task, _, _ = full_sequence(seq, settings(tutorial_blocks=0))
    assert len(task) == 4 * 10 + 20


def test_gaps_between_observed_sessions_are_filled_and_the_mask_stays_aligned():
    # sessions 2, 3, 6, 10: practice 1 session, gaps of 2 and 3 sessions; 8 trials each
    seq = make_sequence([2, 3, 6, 10], 8, unobserved=(0, 8, 9, 16, 30))
    s = settings()
    task, feat, observed = full_sequence(seq, s)
    tutorial = 21
    lead, gap1, gap2 = 8, 2 * 8, 3 * 8
    assert len(task) == tutorial + lead + gap1 + gap2 + len(seq)
    # where each observed session's trials sit in the simulated life
    starts = [tutorial + lead, tutorial + lead + 8, tutorial + lead + 16 + gap1, tutorial + lead + 24 + gap1 + gap2]
    in_life = np.concatenate([np.arange(start, start + 8) for start in starts])
    generated = np.setdiff1d(np.arange(len(task)), in_life)
    assert len(generated) == tutorial + lead + gap1 + gap2
    assert not observed[generated].any()
    assert np.array_equal(observed[in_life], seq.observed)
    assert np.array_equal(task[in_life], seq.task) and np.array_equal(feat[in_life], seq.features)
    # the observed trials keep their order: the k-th True of the life mask is the k-th observed trial
    assert np.array_equal(np.flatnonzero(observed), in_life[seq.observed])


def test_generated_practice_follows_the_participants_switch_and_congruency_rates():
    seq = make_sequence([1, 2, 3, 4], 200, switch_rate=0.25, seed=3)
    seq.features[:, 1] = np.where(np.arange(len(seq)) % 2 == 0, seq.features[:, 0], (seq.features[:, 0] + 1) % 4)
    seq = Sequence(**{**seq.__dict__, "session": seq.session + 40})  # 40 sessions (8000 trials) of practice
    task, feat, observed = full_sequence(seq, settings(tutorial_blocks=0))
    gen_task, gen_feat = task[~observed], feat[~observed]
    assert len(gen_task) == 8000
    per_session = 200
    same = (np.arange(1, 8000) % per_session) != 0
    switch_rate = (gen_task[1:] != gen_task[:-1])[same].mean()
    observed_rate = (seq.task[1:] != seq.task[:-1])[seq.session[1:] == seq.session[:-1]].mean()
    assert switch_rate == pytest.approx(observed_rate, abs=0.03)
    assert (gen_feat[:, 0] == gen_feat[:, 1]).mean() == pytest.approx(0.5, abs=0.03)
    assert set(np.unique(gen_feat)) == {0, 1, 2, 3}


def test_seed_and_history_select_the_unobserved_draws_only():
    seq = make_sequence([3, 4], 10)
    a = full_sequence(seq, settings())
    b = full_sequence(seq, settings())
    c = full_sequence(seq, settings(), history=1)
    d = full_sequence(seq, settings(seed=5))
    for x, y in zip(a, b):
        assert np.array_equal(x, y)
    assert np.array_equal(a[2], c[2]) and np.array_equal(a[0][:21], c[0][:21])  # same layout, same tutorial cues
    assert not np.array_equal(a[1], c[1]) and not np.array_equal(a[1], d[1])
    for life in (c, d):
        assert np.array_equal(life[1][life[2]], seq.features[seq.observed])
        assert np.array_equal(life[0][life[2]], seq.task[seq.observed])


@pytest.mark.parametrize("field", ["paths", "substeps", "histories"])
def test_settings_validation_at_least_one(field):
    with pytest.raises(ConfigError) as info:
        NetworkSettings(**{field: 0})
    assert info.value.field == field


@pytest.mark.parametrize(("kw", "field"), [({"tutorial_blocks": -1}, "tutorial_blocks"),
                                          ({"max_practice_trials": -1}, "max_practice_trials"),
                                          ({"trials_per_session": -1.0}, "trials_per_session"),
                                          ({"dtype": "float16"}, "dtype")])
def test_settings_validation(kw, field):
    with pytest.raises(ConfigError) as info:
        NetworkSettings(**kw)
    assert info.value.field == field
