"""The surrogate of MOEA-BUS: the pairwise-comparison SVM and the pre-screening of children.

:class:`PairwiseSVMRanker` is the paper's surrogate (from SMEM-NAS), a :class:`Predictor` that
learns "a beats b" from pairs of evaluated architectures; it is not registered, ``surrogate=True``
selects it and a predictor name selects that regressor instead. :class:`Surrogate` fits one such
model per metric that is not cheap on every architecture evaluated so far (rows: one-hot code plus
cheap metrics), predicts the metrics of bred children, lets a population's own selection pick the
children to evaluate on those predictions, and scores its rank quality (Kendall tau) once the
picked children are measured. See :mod:`hwnas.strategies.moea_bus` for the algorithm.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import numpy as np

from hwnas.errors import ConfigError
from hwnas.predictors.base import Predictor, rank_quality
from hwnas.problem import Problem
from hwnas.spaces.base import Arch
from hwnas.trial import Observation


class PairwiseSVMRanker(Predictor):
    """A pairwise-comparison SVM (SMEM-NAS / MOEA-BUS) behind the :class:`Predictor` interface.

    An RBF :class:`~sklearn.svm.SVC` learns whether row ``a`` has a larger target than row ``b``
    from the pair ``[x_a, x_b]``. :meth:`predict` compares each new row with every training row
    (both orders, so the score is antisymmetric) and maps its soft win rate to that quantile of the
    training targets: predictions are on the targets' scale and in the predicted order.

    The RBF kernel of a concatenated pair factorises, ``k([a, b], [c, d]) = k(a, c) k(b, d)``, so
    the pair kernel is built from the row kernel and all comparisons cost two matrix products.
    """

    def __init__(self, *, max_pairs: int = 2000, C: float = 1.0, seed: int = 0) -> None:
        self.max_pairs = max_pairs
        self.C = C
        self._rng = np.random.default_rng(seed)
        self._alpha = np.zeros(0)

    def _kernel(self, A: np.ndarray, B: np.ndarray) -> np.ndarray:
        from sklearn.metrics.pairwise import rbf_kernel

        return np.asarray(rbf_kernel(A, B, gamma=self._gamma))

    def fit(self, X: np.ndarray, y: np.ndarray) -> PairwiseSVMRanker:
        from sklearn.svm import SVC

        X, y = np.asarray(X, dtype=float), np.asarray(y, dtype=float)
        n = len(y)
        self._X, self._y = X, np.sort(y)
        var = float(X.var()) if X.size else 0.0
        self._gamma = 1.0 / (2 * X.shape[1] * var) if var > 0 else 1.0  # sklearn's "scale"
        self._alpha = np.zeros(0)
        if n < 2:
            return self
        i, j = np.divmod(self._rng.choice(n * n, size=min(self.max_pairs, n * n), replace=False), n)
        keep = y[i] != y[j]
        i, j = i[keep], j[keep]
        labels = y[i] > y[j]
        if len(np.unique(labels)) < 2:
            return self
        self._K = self._kernel(X, X)
        svc = SVC(kernel="precomputed", C=self.C)
        pair_kernel = self._K.take(i, axis=0).take(i, axis=1)  # take: far faster than ix_
        pair_kernel *= self._K.take(j, axis=0).take(j, axis=1)
        svc.fit(pair_kernel, labels)
        # decision([a, b]) = sum_s alpha_s k(a, first_s) k(b, second_s) + bias
        self._first, self._second = i[svc.support_], j[svc.support_]
        self._alpha, self._bias = svc.dual_coef_[0], float(svc.intercept_[0])
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=float)
        if len(self._alpha) == 0:
            fill = float(np.median(self._y)) if len(self._y) else 0.0
            return np.full(len(X), fill)
        Kx = self._kernel(X, self._X)  # new rows x training rows
        K = self._K
        new_first = (Kx[:, self._first] * self._alpha) @ K[:, self._second].T  # d(new, train)
        train_first = (K[:, self._first] * self._alpha) @ Kx[:, self._second].T  # d(train, new)
        d = new_first - train_first.T
        wins = (1.0 / (1.0 + np.exp(-d))).mean(axis=1)
        return np.quantile(self._y, wins)


class Surrogate:
    """Predicted metrics of bred children and the screening of them, for one study.

    Args:
        problem: the study's problem (metrics, objectives, constraints, space).
        kind: ``True`` for :class:`PairwiseSVMRanker`, or the name of a predictor in
            :mod:`hwnas.predictors` (an unknown name raises :class:`ConfigError` here).
        seed: seeds the predictors.
        cheap: ``cheap(arch, key)``, the cheap metrics of an architecture (the strategy's cache).
    """

    def __init__(
        self,
        problem: Problem,
        kind: bool | str,
        *,
        seed: int,
        cheap: Callable[[Arch, str], dict[str, float]],
    ) -> None:
        self.problem = problem
        self.kind = kind
        self.seed = seed
        self.tau = math.nan  # Kendall tau of the last screened children, predicted vs measured
        self._cheap = cheap
        self._predicted: dict[str, float] = {}
        self._feat: dict[str, np.ndarray] = {}
        self.new_predictor(0)  # fail at setup for an unknown predictor name

    def key(self, arch: Arch) -> str:
        return self.problem.space.to_string(arch)

    def new_predictor(self, generation: int) -> Predictor:
        if self.kind is True:
            return PairwiseSVMRanker(seed=self.seed + generation)
        from hwnas.predictors import create_predictor

        try:
            return create_predictor(str(self.kind), seed=self.seed)
        except ConfigError as exc:
            raise ConfigError(f"moea_bus: surrogate: {exc} (or true: the pairwise SVM)") from None

    def _features(self, arch: Arch, scale: Mapping[str, float]) -> np.ndarray:
        """One-hot code (or the space's vector) plus the cheap metrics scaled to about [0, 1]."""
        s = self.key(arch)
        if s not in self._feat:
            space = self.problem.space
            one_hot = getattr(space, "one_hot", None)
            code = one_hot(arch) if callable(one_hot) else space.encode(arch)
            cheap = self._cheap(arch, s)
            extra = [cheap[m] / (scale.get(m) or 1.0) for m in sorted(cheap)]
            self._feat[s] = np.concatenate([np.asarray(code, float), np.asarray(extra, float)])
        return self._feat[s]

    def predict(
        self,
        done: list[Observation],
        cands: list[Arch],
        *,
        scale: Mapping[str, float],
        generation: int,
    ) -> dict[str, Observation]:
        """Observations of ``cands`` with predicted objective and constraint metrics (one model
        per metric that is not cheap, fitted on the successful observations ``done``); ``scale``
        holds each cheap metric's largest magnitude."""
        cheap = set(self.problem.space.cheap_metric_names())
        X = np.vstack([self._features(o.arch, scale) for o in done])
        Xc = np.vstack([self._features(a, scale) for a in cands])
        preds: dict[str, np.ndarray] = {}
        for m in self.problem.metric_names:
            y = np.array([o.metrics.get(m, math.nan) for o in done], dtype=float)
            ok = np.isfinite(y)
            if m not in cheap and ok.sum() >= 2:
                preds[m] = self.new_predictor(generation).fit(X[ok], y[ok]).predict(Xc)
        out: dict[str, Observation] = {}
        for i, a in enumerate(cands):
            metrics = dict(self._cheap(a, self.key(a)))
            metrics.update({m: float(v[i]) for m, v in preds.items()})
            f = self.problem.objective_vector(metrics)
            out[self.key(a)] = Observation(
                arch=a,
                arch_str=self.key(a),
                objectives=f,
                violation=self.problem.violation(metrics),
                metrics=metrics,
                failed=bool(np.isnan(f).any()),
            )
        return out

    def screen(
        self,
        cands: list[Arch],
        members: list[Observation],
        k: int,
        predicted: dict[str, Observation],
        order: Callable[[list[Observation]], list[int]],
    ) -> list[Arch]:
        """``cands`` reordered so that the ``k`` children the population's own selection
        (``order`` of members and predicted children) prefers on predicted values come first."""
        guesses = [predicted[self.key(a)] for a in cands]
        pool = members + guesses
        ranked = order(pool)
        picks = [i - len(members) for i in ranked if i >= len(members)][:k]
        picks += [i for i in range(len(cands)) if i not in picks][: k - len(picks)]
        for i in picks:
            self._predicted[guesses[i].arch_str] = float(guesses[i].objectives[0])
        return [cands[i] for i in picks] + [c for i, c in enumerate(cands) if i not in picks]

    def score(self, pool: list[Observation]) -> None:
        """Update :attr:`tau` from the screened children in ``pool`` that are now measured."""
        pairs = [  # predicted vs measured first objective of the last offspring
            (float(o.objectives[0]), self._predicted.pop(o.arch_str))
            for o in pool
            if o.arch_str in self._predicted and not o.failed
        ]
        if len(pairs) >= 3:
            t, p = np.array(pairs).T
            self.tau = rank_quality(t, p)["kendall_tau"]
