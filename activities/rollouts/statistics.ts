/**
 * Two-sample statistics of the canary judge: the two-sided Mann–Whitney U test, the Hodges–Lehmann
 * shift estimate, and Fisher's exact test for proportions. The numbers follow scipy 1.16
 * (`scipy.stats.mannwhitneyu`, `scipy.stats.fisher_exact`) and numpy's `median`; the fixtures in
 * `test/fixtures/rollouts/statistics.json` are computed with them and matched to 6 significant digits.
 *
 * References: Mann & Whitney (1947); Hodges & Lehmann (1963), "Estimates of location based on rank
 * tests"; Fisher (1935); the tie-corrected variance of U from Lehmann, "Nonparametrics" (1975), as
 * scipy uses it.
 */
import erfc from '@stdlib/math-base-special-erfc';
import gammaln from '@stdlib/math-base-special-gammaln';

/** How a Mann–Whitney p-value was computed. */
export type MannWhitneyMethod = 'exact' | 'asymptotic';

/** Result of {@link mannWhitneyU}. */
export interface MannWhitneyResult {
  /** U of the first sample (`x`): the number of pairs (x_i, y_j) with x_i > y_j, ties counting 1/2. scipy's `statistic`. */
  u: number;
  /** Two-sided p-value in [0, 1]. */
  pValue: number;
  /**
   * `exact`: the permutation distribution of U, used when the smaller sample has at most 8 values
   * and there are no ties (scipy's `method='auto'` rule). `asymptotic`: normal approximation with
   * tie correction of the variance and a continuity correction of 0.5.
   */
  method: MannWhitneyMethod;
  /** Standardised statistic of the asymptotic method (undefined for exact). */
  z?: number;
}

/** Thrown when a sample cannot be tested (empty, or holding NaN); the judge maps it to inconclusive. */
export class SampleError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SampleError';
  }
}

function checkSample(name: string, values: readonly number[]): void {
  if (values.length === 0) throw new SampleError(`${name}: empty sample`);
  const nan = values.filter((v) => Number.isNaN(v)).length;
  if (nan > 0) throw new SampleError(`${name}: ${nan} NaN value(s) of ${values.length}`);
}

/** Midranks (1-based, ties get the mean of their ranks) of the pooled sample, and the tie group sizes. */
function midranks(pooled: readonly number[]): { ranks: Float64Array; tieSizes: number[] } {
  const order = Array.from(pooled.keys()).sort((a, b) => pooled[a]! - pooled[b]!);
  const ranks = new Float64Array(pooled.length);
  const tieSizes: number[] = [];
  let i = 0;
  while (i < order.length) {
    let j = i + 1;
    while (j < order.length && pooled[order[j]!] === pooled[order[i]!]) j++;
    const rank = (i + 1 + j) / 2;
    for (let k = i; k < j; k++) ranks[order[k]!] = rank;
    tieSizes.push(j - i);
    i = j;
  }
  return { ranks, tieSizes };
}

/**
 * Frequencies of U under the null for sample sizes m <= n, from the generating function
 * prod_{i=1..m} (1 - q^{n+i}) / (1 - q^i) (Gaussian binomial coefficient), index u = 0..m*n.
 */
function exactUFrequencies(m: number, n: number): Float64Array {
  const size = m * n + 1;
  let poly = new Float64Array(size);
  poly[0] = 1;
  for (let i = 1; i <= m; i++) {
    const next = Float64Array.from(poly);
    // multiply by (1 - q^{n+i})
    for (let u = size - 1; u >= n + i; u--) next[u]! -= poly[u - n - i]!;
    // divide by (1 - q^i): running sum with stride i
    for (let u = i; u < size; u++) next[u]! += next[u - i]!;
    poly = next;
  }
  return poly;
}

/** Standard normal survival function, P(Z >= z). */
export function normalSf(z: number): number {
  return 0.5 * erfc(z / Math.SQRT2);
}

/**
 * Two-sided Mann–Whitney U test of `x` against `y` (scipy's `mannwhitneyu(x, y)` with defaults).
 * Throws {@link SampleError} on an empty sample or NaN values: the caller decides (the judge says
 * inconclusive). A pooled sample whose values are all equal has p = 1.
 */
export function mannWhitneyU(x: readonly number[], y: readonly number[]): MannWhitneyResult {
  checkSample('x', x);
  checkSample('y', y);
  const n1 = x.length;
  const n2 = y.length;
  const { ranks, tieSizes } = midranks([...x, ...y]);
  let r1 = 0;
  for (let i = 0; i < n1; i++) r1 += ranks[i]!;
  const u1 = r1 - (n1 * (n1 + 1)) / 2;
  const u2 = n1 * n2 - u1;
  const u = Math.max(u1, u2);
  const ties = tieSizes.some((t) => t > 1);
  if (Math.min(n1, n2) <= 8 && !ties) {
    const freq = exactUFrequencies(Math.min(n1, n2), Math.max(n1, n2));
    let total = 0;
    let upper = 0;
    for (let k = 0; k < freq.length; k++) {
      total += freq[k]!;
      if (k >= u) upper += freq[k]!;
    }
    return { u: u1, pValue: Math.min(1, Math.max(0, (2 * upper) / total)), method: 'exact' };
  }
  const n = n1 + n2;
  const tieTerm = tieSizes.reduce((s, t) => s + (t * t * t - t), 0);
  const variance = ((n1 * n2) / 12) * (n + 1 - tieTerm / (n * (n - 1)));
  // All values tied: no evidence of any difference (scipy reaches the same p = 1 through z = -inf).
  if (tieSizes.length === 1 || !(variance > 0)) return { u: u1, pValue: 1, method: 'asymptotic', z: Number.NEGATIVE_INFINITY };
  const z = (u - (n1 * n2) / 2 - 0.5) / Math.sqrt(variance);
  return { u: u1, pValue: Math.min(1, Math.max(0, 2 * normalSf(z))), method: 'asymptotic', z };
}

/** k-th smallest (0-based) of `a`, reordering `a` in place (Hoare's quickselect). */
function select(a: Float64Array, k: number): number {
  let lo = 0;
  let hi = a.length - 1;
  while (lo < hi) {
    const pivot = a[(lo + hi) >>> 1]!;
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (a[i]! < pivot) i++;
      while (a[j]! > pivot) j--;
      if (i <= j) {
        const t = a[i]!;
        a[i] = a[j]!;
        a[j] = t;
        i++;
        j--;
      }
    }
    if (k <= j) hi = j;
    else if (k >= i) lo = i;
    else return a[k]!;
  }
  return a[k]!;
}

/** Median of a sample (mean of the two middle values for an even count, as numpy's `median`). */
export function median(values: readonly number[] | Float64Array): number {
  if (values.length === 0) return Number.NaN;
  const a = Float64Array.from(values);
  const mid = a.length >>> 1;
  if (a.length % 2 === 1) return select(a, mid);
  const hi = select(a, mid);
  let lo = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < mid; i++) if (a[i]! > lo) lo = a[i]!;
  return (lo + hi) / 2;
}

/** Pairwise differences above which {@link hodgesLehmann} thins its samples. @default 4,000,000 */
export const HODGES_LEHMANN_EXACT_PAIRS = 4_000_000;

/** Evenly spaced order statistics: `size` values that keep the shape of `values`. */
function thin(values: readonly number[], size: number): number[] {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length <= size) return sorted;
  return Array.from({ length: size }, (_, i) => sorted[Math.round(((i + 0.5) * sorted.length) / size - 0.5)]!);
}

/** Result of {@link hodgesLehmann}. */
export interface HodgesLehmannResult {
  /** Median of all pairwise differences canary_j - baseline_i (same unit as the samples). */
  shift: number;
  /** `exact`: all n1*n2 differences; `thinned`: both samples reduced to evenly spaced order statistics first. */
  method: 'exact' | 'thinned';
}

/**
 * Hodges–Lehmann estimate of the shift of `canary` relative to `baseline`: the median of all
 * pairwise differences `canary_j - baseline_i` (Hodges & Lehmann 1963). Above
 * {@link HODGES_LEHMANN_EXACT_PAIRS} differences both samples are thinned to evenly spaced order
 * statistics so memory stays bounded (the estimate is then approximate; `method` says so).
 * Throws {@link SampleError} on an empty sample or NaN values.
 */
export function hodgesLehmann(baseline: readonly number[], canary: readonly number[], maxPairs = HODGES_LEHMANN_EXACT_PAIRS): HodgesLehmannResult {
  checkSample('baseline', baseline);
  checkSample('canary', canary);
  let b = baseline;
  let c = canary;
  let method: HodgesLehmannResult['method'] = 'exact';
  if (b.length * c.length > maxPairs) {
    const side = Math.floor(Math.sqrt(maxPairs));
    b = thin(b, side);
    c = thin(c, side);
    method = 'thinned';
  }
  const diffs = new Float64Array(b.length * c.length);
  let k = 0;
  for (const cj of c) for (const bi of b) diffs[k++] = cj - bi;
  return { shift: median(diffs), method };
}

/** Result of {@link fisherExact}. */
export interface FisherResult {
  /** Two-sided p-value: probability of tables no more likely than the observed one, margins fixed. */
  pValue: number;
  /** Sample odds ratio (a*d)/(b*c); Infinity when b*c = 0; NaN when a row or column is empty. */
  oddsRatio: number;
}

/**
 * Fisher's exact test of a 2x2 table `[[a, b], [c, d]]`, two-sided as in scipy's `fisher_exact`:
 * the sum of the hypergeometric probabilities of every table with the same margins whose
 * probability is at most the observed one's (relative tolerance 1e-7). Made for rates and counts,
 * including metrics that are mostly zero, where a rank test sees only ties. Throws on negative or
 * non-integer cells.
 */
export function fisherExact(table: readonly [readonly [number, number], readonly [number, number]]): FisherResult {
  const [[a, b], [c, d]] = table;
  for (const v of [a, b, c, d]) {
    if (!Number.isInteger(v) || v < 0) throw new SampleError(`fisherExact: cells must be non-negative integers, got [[${a}, ${b}], [${c}, ${d}]]`);
  }
  const oddsRatio = b * c > 0 ? (a * d) / (b * c) : Number.POSITIVE_INFINITY;
  const row1 = a + b;
  const row2 = c + d;
  const col1 = a + c;
  if (row1 === 0 || row2 === 0 || col1 === 0 || b + d === 0) return { pValue: 1, oddsRatio: Number.NaN };
  const total = row1 + row2;
  const logC = (n: number, k: number) => gammaln(n + 1) - gammaln(k + 1) - gammaln(n - k + 1);
  const logPmf = (x: number) => logC(row1, x) + logC(row2, col1 - x) - logC(total, col1);
  const observed = logPmf(a);
  const lo = Math.max(0, col1 - row2);
  const hi = Math.min(col1, row1);
  // Sum relative to the observed probability, so tiny p-values keep their significant digits.
  let relative = 0;
  const tolerance = Math.log1p(1e-7);
  for (let x = lo; x <= hi; x++) {
    const diff = logPmf(x) - observed;
    if (diff <= tolerance) relative += Math.exp(diff);
  }
  return { pValue: Math.min(1, relative * Math.exp(observed)), oddsRatio };
}
