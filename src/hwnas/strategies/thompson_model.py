"""What Thompson-sampling search believes about a metric: Bayesian linear regression over the
one-hot code of a categorical architecture and the pairwise interactions of its slots.

A linear model over one-hot codes is a lookup table (one additive cost per slot choice), which is
how latency and energy compose over layers; the pairwise terms let two slots act together (in an
NB201 cell, an operation matters only if its edge lies on a path from input to output). With a
Gaussian prior on the weights and Gaussian noise, the posterior over the weights is Gaussian and a
whole function can be drawn from it in one matrix product over every candidate - what Thompson
sampling needs. The prior and noise precisions are set by evidence maximisation (MacKay 1992, as
scikit-learn's ``BayesianRidge`` does), and the prior weight of the interaction terms is chosen
among a few values by the same evidence, so with few observations the model stays additive.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence

import numpy as np

# Prior scale of the interaction features relative to the one-hot ones; chosen by evidence.
INTERACTION_SCALES = (0.0, 0.35, 1.0)
# Prior scale of the structural features (standardised), where there are any; chosen by evidence.
STRUCTURE_SCALES = (0.0, 0.35, 1.0)


class PairwiseFeatures:
    """One-hot codes plus their pairwise products, from integer slot codes, and optionally the
    space's structural features (:mod:`hwnas.strategies.structure`) after them.

    ``slot_sizes`` holds the number of choices per slot. All pairs of slots interact unless that
    would make more than ``max_features`` features; then only neighbouring slots do (a chain,
    as in a stack of layers). ``structure`` maps codes to standardised structural columns.
    """

    def __init__(
        self,
        slot_sizes: Sequence[int],
        *,
        max_features: int = 2000,
        structure: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> None:
        self.sizes = np.asarray(slot_sizes, dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)[:-1]])
        self.n_one_hot = int(self.sizes.sum())
        slots = range(len(self.sizes))
        pairs = list(itertools.combinations(slots, 2))
        if self.n_one_hot + sum(self.sizes[i] * self.sizes[j] for i, j in pairs) > max_features:
            pairs = [(i, i + 1) for i in range(len(self.sizes) - 1)]
        self.pairs = pairs
        self.pair_offsets = np.concatenate(
            [[0], np.cumsum([self.sizes[i] * self.sizes[j] for i, j in self.pairs])[:-1]]
        ).astype(np.int64)
        self.n_pairwise = int(sum(self.sizes[i] * self.sizes[j] for i, j in self.pairs))
        self.structure = structure
        self.n_structure = (
            0
            if structure is None
            else int(structure(np.zeros((1, len(self.sizes)), dtype=np.int64)).shape[1])
        )

    @property
    def n_features(self) -> int:
        return self.n_one_hot + self.n_pairwise + self.n_structure

    def transform(
        self, codes: np.ndarray, *, interaction_scale: float = 1.0, structure_scale: float = 0.0
    ) -> np.ndarray:
        """Feature rows (float32) of integer codes (n, slots)."""
        codes = np.asarray(codes, dtype=np.int64).reshape(-1, len(self.sizes))
        n = len(codes)
        X = np.zeros((n, self.n_features), dtype=np.float32)
        if structure_scale > 0.0 and self.structure is not None and self.n_structure:
            X[:, self.n_one_hot + self.n_pairwise :] = structure_scale * self.structure(codes)
        rows = np.arange(n)
        for s in range(len(self.sizes)):
            X[rows, self.offsets[s] + codes[:, s]] = 1.0
        if interaction_scale > 0.0:
            for p, (i, j) in enumerate(self.pairs):
                col = self.n_one_hot + self.pair_offsets[p] + codes[:, i] * self.sizes[j]
                X[rows, col + codes[:, j]] = interaction_scale
        return X


class Warp:
    """A Yeo-Johnson power transform (Yeo and Johnson 2000) with its log-Jacobian, or the identity.

    Skewed targets (accuracy piles up near the top, a few broken networks far below) are closer
    to Gaussian after the transform; the exponent is the maximum-likelihood one (scipy).
    """

    def __init__(self, lam: float | None) -> None:
        self.lam = lam  # None: identity

    @classmethod
    def fitted(cls, y: np.ndarray) -> Warp:
        from scipy import stats

        with np.errstate(all="ignore"):
            _, lam = stats.yeojohnson(np.asarray(y, dtype=float))
        lam = float(lam)
        return cls(lam if np.isfinite(lam) else None)

    def forward(self, y: np.ndarray) -> np.ndarray:
        if self.lam is None:
            return np.asarray(y, dtype=float)
        from scipy import stats

        return np.asarray(stats.yeojohnson(np.asarray(y, dtype=float), self.lam), dtype=float)

    def log_jacobian(self, y: np.ndarray) -> float:
        """Sum of log |dT/dy| over ``y`` (to compare evidences across warps)."""
        if self.lam is None:
            return 0.0
        y = np.asarray(y, dtype=float)
        return float(np.sum(np.where(y >= 0, self.lam - 1, 1 - self.lam) * np.log1p(np.abs(y))))

    def inverse(self, t: np.ndarray) -> np.ndarray:
        t = np.asarray(t, dtype=float)
        if self.lam is None:
            return t
        with np.errstate(over="ignore", invalid="ignore"):
            out = self._inverse(t)
        # Far outside the data a drawn value can overflow; it stays the most extreme there is.
        return np.nan_to_num(out, nan=0.0, posinf=np.finfo(float).max, neginf=-np.finfo(float).max)

    def _inverse(self, t: np.ndarray) -> np.ndarray:
        lam = float(self.lam)  # type: ignore[arg-type]
        pos = t >= 0
        out = np.empty_like(t)
        tp = t[pos]
        if abs(lam) < 1e-12:
            out[pos] = np.expm1(tp)
        else:
            base = np.maximum(tp * lam + 1.0, 1e-300)
            out[pos] = np.power(base, 1.0 / lam) - 1.0
        tn = t[~pos]
        if abs(lam - 2.0) < 1e-12:
            out[~pos] = -np.expm1(-tn)
        else:
            base = np.maximum(1.0 - (2.0 - lam) * tn, 1e-300)
            out[~pos] = 1.0 - np.power(base, 1.0 / (2.0 - lam))
        return out


class BayesLinear:
    """Bayesian linear regression of one metric over :class:`PairwiseFeatures`.

    :meth:`fit` warps the targets (identity or Yeo-Johnson), standardises them and fits one
    evidence-maximising model per (warp, interaction scale); it keeps the pair with the highest
    log marginal likelihood of the *unwarped* targets (Jacobian included). ``keep`` refits under
    the pair chosen before instead, which is cheaper. :meth:`draw` gives the weights of one
    posterior function, :meth:`evaluate` its values in the metric's units; :meth:`mean_std`
    the posterior predictive mean and spread (of the warped metric, back in its units).
    """

    def __init__(self, features: PairwiseFeatures, *, max_iter: int = 100) -> None:
        self.features = features
        self.max_iter = max_iter
        self.scale = 0.0
        self.structure_scale = 0.0
        self.warp = Warp(None)
        self.evidence = float("-inf")

    def fit(
        self, codes: np.ndarray, y: np.ndarray, *, keep: BayesLinear | None = None
    ) -> BayesLinear:
        y = np.asarray(y, dtype=float)
        if keep is not None:
            configs = [(Warp(keep.warp.lam), keep.scale, keep.structure_scale)]
        else:
            scales = INTERACTION_SCALES if self.features.n_pairwise else (0.0,)
            structure = STRUCTURE_SCALES if self.features.n_structure else (0.0,)
            warps = [Warp(None), Warp.fitted(y)]
            configs = [
                (w, sc, st) for w in warps if w.lam != 1.0 for sc in scales for st in structure
            ]
        best = None
        for warp, scale, structure_scale in configs:
            t = warp.forward(y)
            mean, std = float(t.mean()), float(t.std()) or 1.0
            X = self.features.transform(
                codes, interaction_scale=scale, structure_scale=structure_scale
            ).astype(float)
            post = _Posterior(X, (t - mean) / std, self.max_iter)
            evidence = post.log_evidence - len(y) * np.log(std) + warp.log_jacobian(y)
            if best is None or evidence > best[0]:
                best = (evidence, warp, scale, structure_scale, mean, std, post)
        assert best is not None
        (
            self.evidence,
            self.warp,
            self.scale,
            self.structure_scale,
            self.t_mean,
            self.t_std,
            self._post,
        ) = best
        self.coef = self._post.coef
        return self

    @property
    def noise_share(self) -> float:
        """Noise standard deviation as a share of the (warped) metric's spread: 0 means the model
        explains every told value, 1 that it explains none."""
        return 1.0 / math.sqrt(self._post.alpha)

    def rows(self, codes: np.ndarray) -> np.ndarray:
        """Feature rows under the chosen interaction and structure scales."""
        return self.features.transform(
            codes, interaction_scale=self.scale, structure_scale=self.structure_scale
        )

    def draw(self, rng: np.random.Generator) -> np.ndarray:
        """Weights of one function drawn from the posterior (for :meth:`evaluate`)."""
        return self._post.draw(rng)

    def evaluate(self, X: np.ndarray, w: np.ndarray) -> np.ndarray:
        """The function with weights ``w`` (from :meth:`draw`, or :attr:`coef` for the posterior
        mean) on feature rows ``X``, in the metric's units."""
        z = (X @ w.astype(X.dtype)).astype(float) + (self._post.z_mean - self._post.x_mean @ w)
        return self.warp.inverse(self.t_mean + self.t_std * z)

    def mean_std(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Posterior predictive median and one-sigma half-width, in the metric's units."""
        z, sd = self._post.predictive(np.asarray(X, dtype=float))
        t = self.t_mean + self.t_std * z
        lo, hi = self.warp.inverse(t - self.t_std * sd), self.warp.inverse(t + self.t_std * sd)
        return self.warp.inverse(t), 0.5 * (hi - lo)


class _Posterior:
    """Bayesian linear regression ``z = X w + noise``, ``w ~ N(0, I / lam)``, noise precision
    ``alpha``, both set by evidence maximisation (MacKay's fixed-point updates), in the dual form:
    everything goes through the eigendecomposition of the n x n Gram matrix, so a fit costs
    O(n^2 d + n^3) however many features there are. Draws use Matheron's rule (a prior draw
    corrected by the data), which needs no d x d covariance.
    """

    def __init__(self, X: np.ndarray, z: np.ndarray, max_iter: int) -> None:
        n = X.shape[0]
        self.x_mean = X.mean(axis=0)
        self.z_mean = float(z.mean())
        Xc = X - self.x_mean
        zc = z - self.z_mean
        s2, U = np.linalg.eigh(Xc @ Xc.T)
        keep = s2 > 1e-10 * max(float(s2.max()), 1e-300)
        s2, U = s2[keep], U[:, keep]
        proj = U.T @ zc
        outside = max(float(zc @ zc - proj @ proj), 0.0)  # part of z no feature can reach
        alpha, lam = 1.0 / max(float(zc.var()), 1e-12), 1.0
        for _ in range(max_iter):
            ratio = lam / alpha
            denom = s2 + ratio
            w2 = float(np.sum(s2 * proj**2 / denom**2))
            r2 = float(np.sum((ratio / denom) ** 2 * proj**2)) + outside
            gamma = float(np.sum(s2 / denom))
            new_lam = gamma / max(w2, 1e-12)
            # Noise precision capped at 1e6 (z is standardised): an exact fit is not believed.
            new_alpha = min(max(n - gamma, 1e-6) / max(r2, 1e-12), 1e6)
            done = abs(new_lam - lam) <= 1e-4 * lam and abs(new_alpha - alpha) <= 1e-4 * alpha
            lam, alpha = new_lam, new_alpha
            if done:
                break
        ratio = lam / alpha
        denom = s2 + ratio
        w2 = float(np.sum(s2 * proj**2 / denom**2))
        r2 = float(np.sum((ratio / denom) ** 2 * proj**2)) + outside
        self.alpha, self.lam = alpha, lam
        self.log_evidence = 0.5 * (
            n * math.log(alpha)
            - alpha * r2
            - lam * w2
            - float(np.sum(np.log1p(alpha * s2 / lam)))
            - n * math.log(2 * math.pi)
        )
        self._Xc, self._zc, self._U, self._denom = Xc, zc, U, denom
        self.coef = Xc.T @ (U @ (proj / denom))

    def _solve(self, v: np.ndarray) -> np.ndarray:
        """(Xc Xc^T + lam/alpha I)^-1 v, restricted to the span of the data."""
        denom = self._denom[:, None] if v.ndim == 2 else self._denom
        return self._U @ ((self._U.T @ v) / denom)

    def draw(self, rng: np.random.Generator) -> np.ndarray:
        d = self._Xc.shape[1]
        w0 = rng.standard_normal(d) / math.sqrt(self.lam)
        eps = rng.standard_normal(len(self._zc)) / math.sqrt(self.alpha)
        return w0 + self._Xc.T @ self._solve(self._zc - self._Xc @ w0 - eps)

    def predictive(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        Xc = X - self.x_mean
        mean = Xc @ self.coef + self.z_mean
        K = self._Xc @ Xc.T  # (n, m)
        var = (np.sum(Xc**2, axis=1) - np.sum(K * self._solve(K), axis=0)) / self.lam
        return mean, np.sqrt(np.maximum(var, 0.0) + 1.0 / self.alpha)
