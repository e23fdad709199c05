"""Teachers: orthogonality, norms and overlaps."""

from __future__ import annotations

import pytest
import torch

from cogflex.nta.teachers import correlated_teachers, iid_teachers, orthogonal_teachers


def gram(teachers: torch.Tensor) -> torch.Tensor:
    flat = teachers.flatten(1).double()
    return flat @ flat.T


def test_orthogonal_teachers_rows_are_orthogonal_with_norm_dout_over_din():
    t = orthogonal_teachers(2, 10, 20, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    rows = t.reshape(20, 20)
    torch.testing.assert_close(rows @ rows.T, torch.eye(20, dtype=torch.float64) / 20)
    torch.testing.assert_close(gram(t), torch.eye(2, dtype=torch.float64) * 10 / 20)


def test_orthogonal_teachers_need_enough_input_dimensions():
    with pytest.raises(ValueError, match="input_dim"):
        orthogonal_teachers(3, 10, 20, generator=torch.Generator())


@pytest.mark.parametrize("overlap", [0.0, 0.3, 0.9, 1.0])
def test_correlated_teachers_have_the_requested_cosine(overlap):
    t = correlated_teachers(3, 4, 12, overlap, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    g = gram(t)
    norms = torch.diagonal(g)
    torch.testing.assert_close(norms, torch.full((3,), 4 / 12, dtype=torch.float64))
    cos = g / torch.sqrt(norms[:, None] * norms[None, :])
    off = cos[~torch.eye(3, dtype=torch.bool)]
    torch.testing.assert_close(off, torch.full_like(off, overlap), atol=1e-12, rtol=0)


def test_iid_teachers_have_the_orthogonal_norm_on_average():
    t = iid_teachers(200, 10, 20, generator=torch.Generator().manual_seed(4))
    assert t.square().sum(dim=(1, 2)).mean().item() == pytest.approx(0.5, rel=0.05)
