"""Batched Euler steps of the NTA gradient flow.

B networks advance together as one tensor computation. Everything a network
learns or is taught sits in one tensor ``z`` of shape ``(B * R, P + M, D + 1)``:

- rows ``p < P`` hold path p: its weight vector W_p (first D entries) and its
  gate c_p (last entry);
- rows ``P + m`` hold teacher m: W*_m and minus its share in the current task
  (-1 for the teacher being trained, 0 for the others).

The network error is then one batched product of the last column with the
rest, E = sum_p c_p W_p - W*_task, and the whole update is one in-place
``addcmul`` with per-entry rates (dt / tau_W for weights, dt / tau_c for
gates). On a CPU the cost of a step is mostly per-operation overhead, so this
layout keeps the number of tensor operations per step small (about ten).

R is the number of gate rows (1 for one gate per path, d_out for one gate per
path and output unit) and D the length of the weight vector one gate scales
(d_out * d_in, or d_in). In ``expected`` mode the dynamics never leave the span
of the initial paths and the teachers, so D can be that span's dimension
(P + M) in an orthonormal basis: the coordinates give exactly the same inner
products, losses and gradients at a fraction of the cost.

Networks are laid out seed-major, B = S * G (S seeds, G grid points), so a
sampled input covariance of shape ``(S, d_in, d_in)`` applies to all the grid
points of a seed with one batched product.
"""

from __future__ import annotations

import functools

import torch

from cogflex.nta.regularizers import GateRegularizer

__all__ = ["NetworkBatch", "gradients", "sample_input_covariance"]

#: Up to this vector length the gradient is one product with a bordered
#: (D + 1) x (D + 1) matrix (fewer operations); beyond it, two cheaper ones.
_FUSED_MAX_DIM = 32


class NetworkBatch:
    """The state of B gated linear networks and their Euler step.

    Parameters
    ----------
    z
        ``(B * R, P + M, D + 1)``, laid out as in the module docstring.
    paths
        P.
    n_seeds
        S; B must be a multiple of it (seed-major layout).
    output_dim, input_dim
        d_out, d_in of the full weight matrices.
    basis
        ``(S, R, D, D_full)`` orthonormal rows mapping coordinates to full
        weight vectors, or ``None`` when ``z`` holds the full weights.
    """

    def __init__(self, z: torch.Tensor, *, paths: int, n_seeds: int, output_dim: int, input_dim: int,
                 gate_rows: int, basis: torch.Tensor | None = None):
        self.z = z
        self.paths = paths
        self.n_seeds = n_seeds
        self.output_dim = output_dim
        self.input_dim = input_dim
        self.gate_rows = gate_rows
        self.basis = basis
        self.n_networks = z.shape[0] // gate_rows
        dim = self.dim
        # Views into z, fixed for the batch's life (in-place updates keep them valid).
        self._paths = z[:, :paths]  # (BR, P, D + 1)
        self._vectors = z[:, :, :dim]  # (BR, P + M, D)
        self._mix_t = z[:, :, dim:].transpose(1, 2)  # (BR, 1, P + M)
        self._gates = z[:, :paths, dim]  # (BR, P)
        self._task = z[:, paths:, dim]  # (BR, M)
        self._weights = z[:, :paths, :dim]  # (BR, P, D)
        self._err = torch.empty(z.shape[0], 1, dim, dtype=z.dtype, device=z.device)
        self._err_t = self._err.transpose(1, 2)
        self._fused = dim <= _FUSED_MAX_DIM
        if self._fused:
            border = torch.zeros(z.shape[0], dim + 1, dim + 1, dtype=z.dtype, device=z.device)
            self._border = border
            self._border_row, self._border_col = border[:, dim:, :dim], border[:, :dim, dim:]
            self._border_row_t = self._border_row.transpose(1, 2)
            self._grad = torch.empty(z.shape[0], paths, dim + 1, dtype=z.dtype, device=z.device)
            self._grad_gates = self._grad[:, :, dim]
        self._pair = torch.empty(z.shape[0], 1, 1, dtype=z.dtype, device=z.device)
        if not self._fused:
            self._grad_c = torch.empty(z.shape[0], paths, 1, dtype=z.dtype, device=z.device)
            self._grad_c_2d = self._grad_c.view(z.shape[0], paths)
            self._scaled_gates = torch.empty(z.shape[0], paths, 1, dtype=z.dtype, device=z.device)
        self._gates_col = z[:, :paths, dim:]  # (BR, P, 1)
        self._err_cov = torch.empty_like(self._err)
        self._err_cov_t = self._err_cov.transpose(1, 2)
        if (dim * z.shape[0]) % (n_seeds * input_dim) == 0:
            self._err_by_seed = self._err.view(n_seeds, -1, input_dim)
            self._err_cov_by_seed = self._err_cov.view(n_seeds, -1, input_dim)
        self.rates: torch.Tensor | None = None

    def set_learning(self, weight_rate: torch.Tensor, gate_rate: torch.Tensor, regularizer: GateRegularizer) -> None:
        """Set dt / tau_W and dt / tau_c per network ``(B,)`` and the gate regulariser."""
        n, rows, dim = self.n_networks, self.gate_rows, self.dim
        rates = torch.empty(n, rows, 1, dim + 1, dtype=self.z.dtype, device=self.z.device)
        rates[..., :dim] = weight_rate.reshape(-1, 1, 1, 1)
        rates[..., dim] = gate_rate.reshape(-1, 1, 1)
        self.rates = rates.reshape(n * rows, 1, dim + 1)
        self._weight_rate = self.rates[:, :, :1]  # (BR, 1, 1)
        self._gate_rate = self.rates[:, 0, dim:]  # (BR, 1)
        self._add_regularizer_gradient = regularizer.bind(self._gates)

    # -- construction --------------------------------------------------------

    @classmethod
    def build(
        cls,
        weights: torch.Tensor,
        teachers: torch.Tensor,
        gates: torch.Tensor,
        *,
        grid_points: int,
        gating: str,
        compress: bool,
    ) -> NetworkBatch:
        """Lay out per-seed initial states for ``grid_points`` networks per seed.

        Parameters
        ----------
        weights
            Initial paths ``(S, P, d_out, d_in)``.
        teachers
            ``(S, M, d_out, d_in)``.
        gates
            Initial gates ``(S, R, P)``.
        grid_points
            G; every seed's state is repeated G times (seed-major).
        gating
            ``"path"`` or ``"unit"``.
        compress
            Use coordinates in an orthonormal basis of span(paths, teachers)
            (exact for the expected gradient, not for sampled inputs).
        """
        n_seeds, paths, d_out, d_in = weights.shape
        full = torch.cat([weights, teachers], dim=1)  # (S, K, d_out, d_in)
        if gating == "path":
            vectors = full.reshape(n_seeds, 1, full.shape[1], d_out * d_in)
        else:
            vectors = full.permute(0, 2, 1, 3)  # (S, d_out, K, d_in)
        rows = vectors.shape[1]
        basis = None
        k, dim = vectors.shape[-2:]
        if compress and k < dim:
            # Orthonormal rows spanning each gate row's paths and teachers.
            q, _ = torch.linalg.qr(vectors.transpose(-2, -1).to(torch.float64))
            basis = q.transpose(-2, -1).to(vectors.dtype).contiguous()  # (S, R, K, D_full)
            vectors = (vectors.to(torch.float64) @ q).to(vectors.dtype)
        last = torch.zeros(*vectors.shape[:-1], 1, dtype=vectors.dtype, device=vectors.device)
        last[:, :, :paths, 0] = gates.expand(n_seeds, rows, paths)
        z = torch.cat([vectors, last], dim=-1).repeat_interleave(grid_points, dim=0)
        z = z.reshape(-1, *z.shape[2:]).contiguous()
        return cls(z, paths=paths, n_seeds=n_seeds, output_dim=d_out, input_dim=d_in,
                   gate_rows=rows, basis=basis)

    # -- views ---------------------------------------------------------------

    @property
    def dim(self) -> int:
        """D, the length of the weight vectors in ``z``."""
        return self.z.shape[-1] - 1

    @property
    def weights(self) -> torch.Tensor:
        """Path weights W, ``(B, R, P, D)`` (a view)."""
        return self._weights.view(self.n_networks, self.gate_rows, self.paths, self.dim)

    @property
    def teachers(self) -> torch.Tensor:
        """Teachers W*, ``(B, R, M, D)`` (a view)."""
        return self.z[:, self.paths :, : self.dim].view(self.n_networks, self.gate_rows, -1, self.dim)

    @property
    def gates(self) -> torch.Tensor:
        """Gates c, ``(B, R, P)`` (a view)."""
        return self._gates.view(self.n_networks, self.gate_rows, self.paths)

    @property
    def paths_with_gates(self) -> torch.Tensor:
        """``(B, R, P, D + 1)``: weights and gate of every path (a view, for snapshots)."""
        return self._paths.view(self.n_networks, self.gate_rows, self.paths, self.dim + 1)

    def set_task(self, mixture: torch.Tensor) -> None:
        """Train on the teacher mixture ``(B, M)`` (one-hot for a single task) from now on."""
        self._task.view(self.n_networks, self.gate_rows, -1).copy_(-mixture.unsqueeze(1))

    def to_full(self, coords: torch.Tensor) -> torch.Tensor:
        """Map coordinates ``(..., B, R, K, D)`` to full matrices ``(..., B, K, d_out, d_in)``."""
        lead = coords.shape[:-4]
        n_net, rows, k, dim = coords.shape[-4:]
        x = coords.reshape(-1, self.n_seeds, n_net // self.n_seeds, rows, k, dim)
        if self.basis is not None:
            x = x @ self.basis.unsqueeze(1)  # (S, 1, R, D, D_full) broadcast over grid points
        x = x.reshape(*lead, n_net, rows, k, -1)
        if rows == 1:
            return x.reshape(*lead, n_net, k, self.output_dim, self.input_dim)
        return x.transpose(-3, -2)

    # -- dynamics ------------------------------------------------------------

    def error(self, covariance: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """E = sum_p c_p W_p - W*_task and E Sigma, both ``(B * R, 1, D)`` (fresh tensors)."""
        err = torch.bmm(self._mix_t, self._vectors)
        return err, self._apply_covariance(err, covariance)

    def output_error(self, inputs: torch.Tensor) -> torch.Tensor:
        """The output error y - y* = E x of every network, one input per seed (a fresh tensor).

        Parameters
        ----------
        inputs
            ``(S, d_in)``: the input of each seed, shared by its grid points.

        Returns
        -------
        torch.Tensor
            ``(S, G, d_out)``, by seed and grid point (network ``s * G + g``
            of the seed-major layout).
        """
        err = torch.bmm(self._mix_t, self._vectors)
        if self.basis is not None:
            err = self.to_full(err.view(self.n_networks, self.gate_rows, 1, self.dim)).contiguous()
        by_seed = err.view(self.n_seeds, -1, self.input_dim)  # (S, G * d_out, d_in)
        return torch.bmm(by_seed, inputs.unsqueeze(-1)).view(self.n_seeds, -1, self.output_dim)

    def _apply_covariance(self, err: torch.Tensor, covariance: torch.Tensor | None) -> torch.Tensor:
        if covariance is None:
            return err
        return torch.bmm(err.view(self.n_seeds, -1, self.input_dim), covariance).view_as(err)

    def step(self, covariance: torch.Tensor | None, loss_out: torch.Tensor) -> None:
        """Advance every network by one Euler step, in place.

        W <- W - (dt/tau_W) dL/dW and c <- c - (dt/tau_c) dL/dc, both gradients
        taken at the state before the step (see :func:`gradients`); the rates
        and regulariser come from :meth:`set_learning`.

        Parameters
        ----------
        covariance
            Sampled input covariance per seed ``(S, d_in, d_in)``, or ``None``
            for the expected gradient.
        loss_out
            ``(B, 1, 1)`` buffer receiving *twice* the data loss before the
            step (the caller halves a whole chunk at once).
        """
        if self._fused and covariance is None:
            # E goes straight into the border of the matrix below, E^T into its column.
            err = err_cov = torch.bmm(self._mix_t, self._vectors, out=self._border_row)
            err_cov_t = self._border_col.copy_(self._border_row_t)
        else:
            err = torch.bmm(self._mix_t, self._vectors, out=self._err)
            if covariance is None:
                err_cov, err_cov_t = err, self._err_t
            else:
                torch.bmm(self._err_by_seed, covariance, out=self._err_cov_by_seed)
                err_cov, err_cov_t = self._err_cov, self._err_cov_t
            if self._fused:
                self._border_row.copy_(err_cov)
                self._border_col.copy_(err_cov_t)
        if self.gate_rows == 1:
            torch.bmm(err, err_cov_t, out=loss_out)
        else:
            torch.bmm(err, err_cov_t, out=self._pair)
            torch.sum(self._pair.view(self.n_networks, -1), dim=1, out=loss_out.view(-1))
        if self._fused:
            # [c_p E | <W_p, E>] = [W_p | c_p] @ [[0, E^T], [E, 0]]: one product, one update.
            torch.bmm(self._paths, self._border, out=self._grad)
            self._add_regularizer_gradient(self._grad_gates)
            self._paths.addcmul_(self._grad, self.rates, value=-1.0)
        else:
            torch.bmm(self._weights, err_cov_t, out=self._grad_c)
            self._add_regularizer_gradient(self._grad_c_2d)
            torch.mul(self._gates_col, self._weight_rate, out=self._scaled_gates)
            self._weights.addcmul_(self._scaled_gates, err_cov, value=-1.0)
            self._gates.addcmul_(self._grad_c_2d, self._gate_rate, value=-1.0)


def gradients(
    batch: NetworkBatch, regularizer: GateRegularizer, covariance: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Loss and gradients of every network, written plainly (the reference for the step).

    L = 1/2 tr(E Sigma E^T) + R(c), with Sigma = E[x x^T] = I (expected mode)
    or the batch's empirical input covariance X^T X / n (sampled mode), which
    makes L exactly the batch loss 1/2 mean_batch sum_out (y - y*)^2.

    Returns
    -------
    loss
        Data loss per network ``(B,)`` (without the regulariser).
    grad_weights
        dL/dW = c_p E Sigma, ``(B, R, P, D)``.
    grad_gates
        dL/dc = <W_p, E Sigma> + dR/dc, ``(B, R, P)``.
    """
    err, err_cov = batch.error(covariance)
    shape = (batch.n_networks, batch.gate_rows, batch.dim)
    err, err_cov = err.view(shape), err_cov.view(shape)
    loss = 0.5 * (err * err_cov).sum(dim=(-2, -1))
    gates, weights = batch.gates, batch.weights
    grad_w = gates.unsqueeze(-1) * err_cov.unsqueeze(-2)
    reg = regularizer.gradient(gates.reshape(-1, batch.paths)).view_as(gates)
    grad_c = (weights * err_cov.unsqueeze(-2)).sum(-1) + reg
    return loss, grad_w, grad_c


def sample_input_covariance(
    steps: int, input_dim: int, batch_size: int, *, generator: torch.Generator,
    dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Empirical covariances X^T X / n of ``steps`` Gaussian batches, ``(steps, d, d)``.

    The sampled-batch gradient of a linear network depends on the batch only
    through this matrix, and X^T X is Wishart(n, I): by the Bartlett
    decomposition it is L L^T with L lower triangular, N(0, 1) below the
    diagonal and sqrt(chi^2(n - i)) on it, i.e. d(d+1)/2 random numbers
    instead of n * d. (For n < d the batch itself is drawn.)
    """
    n, d = batch_size, input_dim
    if n < d:
        x = torch.randn(steps, n, d, generator=generator, dtype=dtype, device=device)
        return x.transpose(-2, -1) @ x / n
    below, diagonal = _bartlett_indices(d, device)
    lower = torch.zeros(steps, d * d, dtype=dtype, device=device)
    lower.index_copy_(1, below, torch.randn(steps, below.numel(), generator=generator, dtype=dtype, device=device))
    half_dof = ((n - torch.arange(d, dtype=dtype, device=device)) / 2).expand(steps, d)
    lower.index_copy_(1, diagonal, torch._standard_gamma(half_dof, generator=generator).mul_(2).sqrt_())
    lower = lower.view(steps, d, d)
    return torch.bmm(lower, lower.transpose(1, 2)).div_(n)


@functools.cache
def _bartlett_indices(d: int, device: torch.device | str) -> tuple[torch.Tensor, torch.Tensor]:
    """Flat indices of the strictly lower triangle and of the diagonal of a d x d matrix."""
    rows, cols = torch.tril_indices(d, d, -1, device=device)
    return rows * d + cols, torch.arange(d, device=device) * (d + 1)
