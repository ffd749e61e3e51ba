/**
 * `platform generate --shape`: every kind parses into the generator's shape, bad values are
 * refused naming the shape, the key and the expected form, and every `--shape` in the README and
 * in the command's usage text parses.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import generate from '../../workers/cli/generate.js';
import { parseShape, shapeKinds } from '../../workers/cli/shapes.js';

describe('--shape', () => {
  it('parses every kind', () => {
    expect(parseShape('step:service=search,at=3m,for=2m,factor=4')).toEqual({ kind: 'step', service: 'search', at: 180, duration: 120, factor: 4 });
    expect(parseShape('drift:service=catalog,at=60,for=5m,factor=6')).toEqual({ kind: 'drift', service: 'catalog', at: 60, duration: 300, factor: 6 });
    expect(parseShape('spike:service=auth,at=700s,for=20s,factor=8')).toEqual({ kind: 'spike', service: 'auth', at: 700, duration: 20, factor: 8 });
    expect(parseShape('seasonality:service=checkout,period=2m,amplitude=0.6')).toEqual({ kind: 'seasonality', service: 'checkout', period: 120, amplitude: 0.6 });
    expect(parseShape('silence:service=recommendations,at=15m')).toEqual({ kind: 'silence', service: 'recommendations', at: 900 });
    expect(parseShape('silence:service=auth,at=6m,for=90s')).toEqual({ kind: 'silence', service: 'auth', at: 360, duration: 90 });
    expect(parseShape('drop:service=checkout,at=1100,for=2m,keep=0.05')).toEqual({ kind: 'silence', service: 'checkout', at: 1100, duration: 120, keep: 0.05 });
    expect(parseShape('errors:service=payments,at=30s,for=1m,rate=0.4,every=5m')).toEqual({ kind: 'errors', service: 'payments', at: 30, duration: 60, rate: 0.4, every: 300 });
    expect(parseShape('late:fraction=0.02,mean=8s')).toEqual({ kind: 'late', fraction: 0.02, distribution: { type: 'exponential', meanMs: 8000 } });
    expect(parseShape('late:fraction=0.1,max=500ms')).toEqual({ kind: 'late', fraction: 0.1, distribution: { type: 'uniform', maxMs: 500 } });
    expect(shapeKinds).toEqual(['step', 'drift', 'spike', 'seasonality', 'silence', 'drop', 'errors', 'late']);
  });

  it('refuses bad shapes naming what is wrong', () => {
    expect(() => parseShape('burst:service=a')).toThrow('unknown kind "burst"; expected one of step, drift');
    expect(() => parseShape('spike service=a')).toThrow('expected KIND:key=value');
    expect(() => parseShape('spike:service=a,at=1m,for=10s')).toThrow('factor: required for spike');
    expect(() => parseShape('spike:service=a,at=1m,for=10s,factor=0')).toThrow('factor: expected a number above 0, got "0"');
    expect(() => parseShape('spike:service=a,at=soon,for=10s,factor=2')).toThrow('at: expected a duration like 20s, 2m or 500ms, got "soon"');
    expect(() => parseShape('spike:service=a,at=1m,for=10s,factor=2,rate=1')).toThrow('unexpected "rate=1"; spike takes service, at, for, factor');
    expect(() => parseShape('errors:service=a,at=1m,for=10s,rate=1.5')).toThrow('rate: expected a number from 0 to 1, got "1.5"');
    expect(() => parseShape('late:fraction=0.1')).toThrow('expected exactly one of mean (exponential delay) or max (uniform delay)');
    expect(() => parseShape('late:fraction=0.1,mean=1s,max=2s')).toThrow('expected exactly one of mean');
    expect(() => parseShape('silence:service=,at=1m')).toThrow('service: expected a service name');
  });

  it('every --shape in the README and in the usage text parses', () => {
    const readme = readFileSync(fileURLToPath(new URL('../../README.md', import.meta.url)), 'utf8');
    const found = [...`${readme}\n${generate.usage}`.matchAll(/--shape\s+([a-z]+:[^\s`'\\]+)/g)].map((m) => m[1]!);
    expect(found.length).toBeGreaterThanOrEqual(4);
    for (const s of found) expect(() => parseShape(s), s).not.toThrow();
  });
});
