"""Teacher matrices W*_m that define the tasks of the student-teacher setup."""

from __future__ import annotations

import torch

from cogflex.nta.config import Composition, Teachers

__all__ = ["make_teachers", "compose_tasks", "orthogonal_teachers", "correlated_teachers", "iid_teachers"]


def make_teachers(
    spec: Teachers, output_dim: int, input_dim: int, *, generator: torch.Generator,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Draw the M teachers described by ``spec``, shape ``(M, d_out, d_in)``."""
    if spec.kind == "orthogonal":
        return orthogonal_teachers(spec.tasks, output_dim, input_dim, generator=generator, dtype=dtype)
    if spec.kind == "correlated":
        return correlated_teachers(
            spec.tasks, output_dim, input_dim, spec.overlap, generator=generator, dtype=dtype
        )
    return iid_teachers(spec.tasks, output_dim, input_dim, generator=generator, dtype=dtype)


def compose_tasks(teachers: torch.Tensor, composition: Composition) -> torch.Tensor:
    """Target matrices of the composed tasks, ``(..., K, d_out, d_in)`` from teachers ``(..., M, d_out, d_in)``.

    ``"mixture"``: W_k = sum_m tasks[k][m] W*_m (task composition);
    ``"rows"``: row i of W_k is row i of teacher tasks[k][i] (subtask composition).
    """
    if not composition.tasks:
        return teachers[..., :0, :, :]
    if composition.kind == "mixture":
        weights = torch.tensor(composition.tasks, dtype=teachers.dtype, device=teachers.device)  # (K, M)
        return torch.einsum("km,...mij->...kij", weights, teachers)
    index = torch.tensor(composition.tasks, dtype=torch.long, device=teachers.device)  # (K, d_out)
    rows = torch.arange(teachers.shape[-2], device=teachers.device)
    return teachers[..., index, rows, :]


def orthogonal_teachers(
    tasks: int, output_dim: int, input_dim: int, *, generator: torch.Generator,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Mutually orthogonal teachers (Sandbrink et al., 2024, Sec. 2).

    The rows of a Haar-random d_in x d_in orthogonal matrix are split into M
    groups of d_out rows and scaled by 1/sqrt(d_in), so every row of every
    teacher is orthogonal to every other row and ||W*_m||_F^2 = d_out / d_in.
    """
    if tasks * output_dim > input_dim:
        raise ValueError(f"{tasks} orthogonal teachers of {output_dim} rows need input_dim >= {tasks * output_dim}")
    q = _haar_orthogonal(input_dim, generator=generator)
    rows = q[: tasks * output_dim] / input_dim**0.5
    return rows.reshape(tasks, output_dim, input_dim).to(dtype)


def correlated_teachers(
    tasks: int, output_dim: int, input_dim: int, overlap: float, *, generator: torch.Generator,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Equal-norm teachers whose pairwise cosine similarity is exactly ``overlap``.

    Mixes M orthogonal teachers with the symmetric square root of the target
    Gram matrix (1 - overlap) I + overlap 11^T; ``overlap = 1`` gives M copies
    of one teacher, ``overlap = 0`` orthogonal teachers.
    """
    base = orthogonal_teachers(tasks, output_dim, input_dim, generator=generator, dtype=torch.float64)
    gram = (1.0 - overlap) * torch.eye(tasks, dtype=torch.float64) + overlap
    evals, evecs = torch.linalg.eigh(gram)
    root = evecs @ torch.diag(evals.clamp(min=0).sqrt()) @ evecs.T
    return torch.einsum("mn,nij->mij", root, base).to(dtype)


def iid_teachers(
    tasks: int, output_dim: int, input_dim: int, *, generator: torch.Generator,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Independent Gaussian teachers, entries N(0, 1/d_in^2) (norm^2 ~ d_out/d_in)."""
    w = torch.randn(tasks, output_dim, input_dim, generator=generator, dtype=torch.float64)
    return (w / input_dim).to(dtype)


def _haar_orthogonal(n: int, *, generator: torch.Generator) -> torch.Tensor:
    """A Haar-distributed random orthogonal n x n matrix (QR with sign fix), float64."""
    z = torch.randn(n, n, generator=generator, dtype=torch.float64)
    q, r = torch.linalg.qr(z)
    return q * torch.sign(torch.diagonal(r)).unsqueeze(0)
