"""Paired comparison of two methods scored on the same test items: is the difference real?

Items on one object (the drags of one cabinet) are correlated, so the object is the independent
unit: the per-item differences are averaged per object and a bootstrap over objects gives the
confidence interval of the mean difference (scipy.stats.bootstrap, percentile method). For
success/failure per episode (one episode per object), `paired_success` is the exact McNemar test:
only the episodes one method solves and the other does not carry information."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import binomtest, bootstrap
from scipy.stats import t as student_t


@dataclass(frozen=True)
class PairedDifference:
    mean_a: float
    mean_b: float
    diff: float  # mean over objects of (b - a)
    low: float  # confidence interval of diff
    high: float
    objects: int

    def verdict(self, higher_is_better: bool) -> str:
        """'worse' / 'better' (b against a) when the interval excludes zero, else 'no measurable difference'."""
        if math.isnan(self.low) or self.low <= 0.0 <= self.high:
            return "no measurable difference"
        b_higher = self.low > 0.0
        return "better" if b_higher == higher_is_better else "worse"


@dataclass(frozen=True)
class PairedSuccess:
    episodes: int
    a_only: int  # episodes only a solves
    b_only: int  # episodes only b solves
    p_value: float  # exact two-sided McNemar (binomial test on the discordant episodes); 1 if none

    def verdict(self, alpha: float = 0.05) -> str:
        """'better' / 'worse' (b against a) when the discordant episodes are that lopsided, else
        'no significant difference'."""
        if self.p_value >= alpha:
            return "no significant difference"
        return "better" if self.b_only > self.a_only else "worse"


def paired_success(a: np.ndarray, b: np.ndarray) -> PairedSuccess:
    """Exact McNemar test of two methods' success flags on the same episodes."""
    a, b = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    if a.shape != b.shape:
        raise ValueError(f"paired episodes differ in number: {a.shape} vs {b.shape}")
    a_only, b_only = int((a & ~b).sum()), int((b & ~a).sum())
    p = binomtest(b_only, a_only + b_only).pvalue if a_only + b_only else 1.0
    return PairedSuccess(len(a), a_only, b_only, float(p))


def paired_difference(a: np.ndarray, b: np.ndarray, groups: np.ndarray, confidence: float = 0.95,
                      n_resamples: int = 2000, seed: int = 0) -> PairedDifference:
    """Difference b - a of per-item scores (NaN = not scored, dropped), clustered by `groups`."""
    a, b, groups = (np.asarray(x, dtype=float) for x in (a, b, groups))
    keep = ~(np.isnan(a) | np.isnan(b))
    a, b, groups = a[keep], b[keep], groups[keep]
    labels, inverse = np.unique(groups, return_inverse=True)
    counts = np.bincount(inverse, minlength=len(labels))
    per_object = np.bincount(inverse, weights=b - a, minlength=len(labels)) / np.maximum(counts, 1)
    low = high = math.nan
    if len(per_object) >= 2 and np.ptp(per_object) > 0:
        ci = bootstrap((per_object,), np.mean, confidence_level=confidence, n_resamples=n_resamples,
                       method="percentile", rng=np.random.default_rng(seed)).confidence_interval
        low, high = float(ci.low), float(ci.high)
    elif len(per_object) >= 2:  # every object differs by the same amount: a degenerate interval
        low = high = float(per_object[0])
    mean_a = float(a.mean()) if len(a) else math.nan
    mean_b = float(b.mean()) if len(b) else math.nan
    return PairedDifference(mean_a, mean_b, float(per_object.mean()) if len(per_object) else math.nan,
                            low, high, len(labels))


@dataclass(frozen=True)
class MeanInterval:
    mean: float
    low: float  # 95% (or `confidence`) bootstrap interval of the mean
    high: float
    n: int


def mean_interval(values: np.ndarray, confidence: float = 0.95, n_resamples: int = 2000,
                  seed: int = 0) -> MeanInterval:
    """Mean of independent items (episodes) with its percentile-bootstrap interval (NaN dropped)."""
    x = np.asarray(values, dtype=float)
    x = x[~np.isnan(x)]
    if len(x) == 0:
        return MeanInterval(math.nan, math.nan, math.nan, 0)
    if len(x) < 2 or np.ptp(x) == 0:
        return MeanInterval(float(x.mean()), float(x.mean()), float(x.mean()), len(x))
    ci = bootstrap((x,), np.mean, confidence_level=confidence, n_resamples=n_resamples, method="percentile",
                   rng=np.random.default_rng(seed)).confidence_interval
    return MeanInterval(float(x.mean()), float(ci.low), float(ci.high), len(x))


def seed_interval(values: np.ndarray, confidence: float = 0.95) -> MeanInterval:
    """Mean over a few independent runs (seeds) with its Student-t interval (NaN dropped): with 3-5 seeds a
    bootstrap has too few distinct resamples to give an interval, the t interval is the textbook one."""
    x = np.asarray(values, dtype=float)
    x = x[~np.isnan(x)]
    if len(x) == 0:
        return MeanInterval(math.nan, math.nan, math.nan, 0)
    mean = float(x.mean())
    if len(x) < 2:
        return MeanInterval(mean, math.nan, math.nan, 1)
    half = float(student_t.ppf(0.5 + confidence / 2, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x)))
    return MeanInterval(mean, mean - half, mean + half, len(x))
