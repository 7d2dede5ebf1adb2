"""stats.py — the uncertainty the report shows (docs/methods.md#uncertainty):
seeded percentile bootstrap, Wilson score intervals for rates, the chance
overlap of two random top-k sets, and the `0.93 [0.90, 0.95]` format.

Every function is pure: the random generator is passed in (numpy Generator,
seeded by the caller from the report's --seed), never module state.
"""
import math

import numpy as np

LEVEL = 0.95  # every interval in the report is a 95 % interval


def options(opts=None):
    """The report's resampling options with defaults: boot (resamples), seed."""
    o = {"boot": 1000, "seed": 0}
    o.update({k: v for k, v in (opts or {}).items() if v is not None})
    return o


def rng(opts, *salt):
    """A Generator seeded by opts['seed'] and a salt (names of what is resampled),
    so each statistic has its own reproducible stream."""
    text = "/".join(str(s) for s in salt)
    return np.random.default_rng([int(options(opts)["seed"])] + [ord(c) for c in text])


def percentile_ci(samples):
    """(low, high) of the central LEVEL of finite bootstrap samples (NaN, NaN if none)."""
    s = np.asarray(samples, dtype=float)
    s = s[np.isfinite(s)]
    if s.size == 0:
        return float("nan"), float("nan")
    a = (1 - LEVEL) / 2
    return float(np.quantile(s, a)), float(np.quantile(s, 1 - a))


def bootstrap_indices(gen, n, boot):
    """[boot, n] row indices drawn with replacement."""
    return gen.integers(0, n, size=(boot, n))


def bootstrap_counts(gen, n, boot):
    """[boot, n] how often each of n rows is drawn in each resample (float):
    resampled means of a matrix X[n, ...] are counts @ X / n, without ever
    holding boot copies of X (a Llama-size map or direction set would not fit)."""
    idx = bootstrap_indices(gen, n, boot)
    counts = np.zeros((boot, n))
    np.add.at(counts, (np.arange(boot)[:, None], idx), 1.0)
    return counts


def bootstrap_mean(x, boot, gen):
    """Mean of x and its percentile interval over `boot` resamples of x's rows."""
    x = np.asarray(x, dtype=float)
    if x.size == 0:
        return float("nan"), (float("nan"), float("nan"))
    idx = bootstrap_indices(gen, len(x), boot)
    return float(x.mean()), percentile_ci(x[idx].mean(axis=1))


def wilson(k, n, z=1.959963984540054):
    """Wilson score interval of a rate k/n (LEVEL 95 %): (low, high)."""
    if n <= 0:
        return float("nan"), float("nan")
    p = k / n
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return max(0.0, centre - half), min(1.0, centre + half)


def chance_overlap(pool, k):
    """Overlap of two independent random k-subsets of a pool of `pool` items:
    hypergeometric mean and central 95 % range (low, high)."""
    if pool <= 0 or k <= 0:
        return float("nan"), (float("nan"), float("nan"))
    k = min(k, pool)
    pmf = np.array([math.comb(k, j) * math.comb(pool - k, k - j) for j in range(k + 1)], dtype=float)
    pmf /= pmf.sum()
    cdf = np.cumsum(pmf)
    lo = int(np.searchsorted(cdf, (1 - LEVEL) / 2))
    hi = int(np.searchsorted(cdf, 1 - (1 - LEVEL) / 2))
    return float(k * k / pool), (lo, hi)


def fmt(value, ci=None, digits=2):
    """'0.93 [0.90, 0.95]' (or '0.93' without an interval, '' for NaN)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    f = "%%.%df" % digits
    s = f % value
    if ci is not None and all(c is not None and not math.isnan(c) for c in ci):
        s += " [" + f % ci[0] + ", " + f % ci[1] + "]"
    return s


def errorbar(value, ci):
    """[[below], [above]] for matplotlib's yerr from a value and its interval (0 where unknown)."""
    lo, hi = ci
    below = value - lo if np.isfinite(lo) and np.isfinite(value) else 0.0
    above = hi - value if np.isfinite(hi) and np.isfinite(value) else 0.0
    return [max(below, 0.0)], [max(above, 0.0)]
