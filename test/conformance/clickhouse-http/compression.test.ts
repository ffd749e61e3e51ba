/**
 * HTTP compression (https://clickhouse.com/docs/interfaces/http#compression): with
 * enable_http_compression=1 the response is compressed with a method from Accept-Encoding and
 * says so in Content-Encoding; without it, never. Request bodies are decoded per Content-Encoding.
 * Decoding here uses Node's zlib and zstd-napi, independent of the server.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { brotliCompressSync, brotliDecompressSync, deflateSync, gzipSync, gunzipSync, inflateSync } from 'node:zlib';
import { compress as zstdCompress, decompress as zstdDecompress } from 'zstd-napi';
import { ch, ok, unique } from './client.js';

const db = unique('zip');
const query = 'SELECT number, toString(number) FROM numbers(20000)';
let plain: string;

const decoders: Record<string, (b: Buffer) => Buffer> = { gzip: gunzipSync, deflate: inflateSync, br: brotliDecompressSync, zstd: zstdDecompress };
const encoders: Record<string, (b: Buffer) => Buffer> = { gzip: gzipSync, deflate: deflateSync, br: brotliCompressSync, zstd: zstdCompress };

beforeAll(async () => {
  await ok(`CREATE DATABASE ${db}`);
  await ok(`CREATE TABLE ${db}.t (k UInt32, v String) ENGINE = MergeTree ORDER BY k`);
  plain = await ok(query);
});
afterAll(async () => {
  await ch(`DROP DATABASE IF EXISTS ${db}`);
});

describe('HTTP compression', () => {
  it.each(['gzip', 'deflate', 'br', 'zstd'])('compresses the response with %s when asked', async (method) => {
    const answer = await ch(query, { params: { enable_http_compression: '1' }, headers: { 'Accept-Encoding': method } });
    expect(answer.status).toBe(200);
    expect(answer.headers['content-encoding']).toBe(method);
    expect(answer.bytes.length).toBeLessThan(plain.length / 2);
    expect(decoders[method]!(answer.bytes).toString()).toBe(plain);
  });

  it('prefers br when curl --compressed offers several', async () => {
    const answer = await ch(query, { params: { enable_http_compression: '1' }, headers: { 'Accept-Encoding': 'deflate, gzip, br, zstd' } });
    expect(answer.headers['content-encoding']).toBe('br');
    expect(brotliDecompressSync(answer.bytes).toString()).toBe(plain);
  });

  it('does not compress without enable_http_compression=1', async () => {
    const answer = await ch(query, { headers: { 'Accept-Encoding': 'gzip' } });
    expect(answer.headers['content-encoding']).toBeUndefined();
    expect(answer.text).toBe(plain);
  });

  it.each(['gzip', 'deflate', 'br', 'zstd'])('decodes a %s request body (query and rows)', async (method) => {
    const rows = Array.from({ length: 1000 }, (_, i) => `${i}\t${method}${i}\n`).join('');
    const insert = await ch('', { params: { query: `INSERT INTO ${db}.t FORMAT TSV` }, body: encoders[method]!(Buffer.from(rows)), headers: { 'Content-Encoding': method } });
    expect(insert.status).toBe(200);
    expect(await ok(`SELECT count(), countIf(startsWith(v, '${method}')) FROM ${db}.t WHERE startsWith(v, '${method}')`)).toBe('1000\t1000\n');
    const select = await ch('', { body: encoders[method]!(Buffer.from(`SELECT count() FROM ${db}.t WHERE startsWith(v, '${method}')`)), headers: { 'Content-Encoding': method } });
    expect(select.text).toBe('1000\n');
  });
});
