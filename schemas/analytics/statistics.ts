/**
 * Descriptive statistics for the detectors. Pure; no allocation-heavy helpers so workflows can
 * call them. Conventions match numpy/scipy so the committed fixtures (computed with numpy, scipy
 * and pandas, see test/fixtures/statistics/) can check them:
 * - `stddev` is the sample standard deviation (numpy `std(ddof=1)`);
 * - `median` averages the two middle values of an even-length sample (numpy `median`);
 * - `mad` is the unscaled median absolute deviation, `scipy.stats.median_abs_deviation(x)`;
 *   `madNormalConsistency` (1.4826, i.e. 1 / Φ⁻¹(3/4)) turns it into a consistent estimator of σ
 *   for normal data (`scale='normal'`);
 * - `ewmaUpdate` is the exponentially weighted mean and variance recursion of Finch, "Incremental
 *   calculation of weighted mean and variance" (2009), equal to pandas
 *   `ewm(alpha=a, adjust=False).mean()` and `.var(bias=True)`.
 */

/** 1 / Φ⁻¹(0.75): scales the MAD to σ for normal data (scipy `median_abs_deviation(scale='normal')`). */
export const madNormalConsistency = 1.482602218505602;

/** Arithmetic mean; NaN for an empty sample. */
export function mean(xs: readonly number[]): number {
  if (xs.length === 0) return Number.NaN;
  let s = 0;
  for (const x of xs) s += x;
  return s / xs.length;
}

/** Sample standard deviation (n - 1 in the denominator); NaN for fewer than two values. */
export function stddev(xs: readonly number[]): number {
  if (xs.length < 2) return Number.NaN;
  const m = mean(xs);
  let s = 0;
  for (const x of xs) s += (x - m) ** 2;
  return Math.sqrt(s / (xs.length - 1));
}

/** Median; NaN for an empty sample. */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Unscaled median absolute deviation from the median; NaN for an empty sample. */
export function mad(xs: readonly number[]): number {
  const m = median(xs);
  return median(xs.map((x) => Math.abs(x - m)));
}

/** EWMA state: mean and (biased) variance after `n` observations. */
export interface EwmaState {
  mean: number;
  variance: number;
  n: number;
}

/**
 * One step of the EWMA recursion with smoothing factor `alpha` in (0, 1]:
 * `mean' = mean + alpha * (x - mean)`, `var' = (1 - alpha) * (var + alpha * (x - mean)^2)`.
 * The first observation sets mean = x, variance = 0.
 */
export function ewmaUpdate(state: EwmaState | null, x: number, alpha: number): EwmaState {
  if (state === null || state.n === 0) return { mean: x, variance: 0, n: 1 };
  const diff = x - state.mean;
  return { mean: state.mean + alpha * diff, variance: (1 - alpha) * (state.variance + alpha * diff * diff), n: state.n + 1 };
}

/**
 * A bounded, finite score `(x - center) / spread`. When the spread is zero (a flat baseline) the
 * score is 0 if `x` equals the center and `±cap` otherwise; every result is clamped to
 * `[-cap, cap]`, so no infinity or NaN is ever stored or compared.
 */
export function boundedScore(x: number, center: number, spread: number, cap: number): number {
  if (!Number.isFinite(x) || !Number.isFinite(center)) return 0;
  const d = x - center;
  if (!(spread > 0) || !Number.isFinite(spread)) return d === 0 ? 0 : Math.sign(d) * cap;
  return Math.max(-cap, Math.min(cap, d / spread));
}
