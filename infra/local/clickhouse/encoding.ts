/**
 * HTTP compression as a ClickHouse server does it: request bodies in any `Content-Encoding` the
 * server accepts are decoded, and responses are compressed when the request sets
 * `enable_http_compression=1` and sends `Accept-Encoding`.
 *
 * Node's zlib gives gzip, deflate and br; zstd comes from `zstd-napi` (Node 20's zlib has none).
 * The server also knows xz, lz4, bz2 and snappy; those are refused here with 48 NOT_IMPLEMENTED,
 * never silently sent or read as plain text.
 */
import type { Readable, Transform } from 'node:stream';
import { constants, createBrotliCompress, createBrotliDecompress, createDeflate, createGunzip, createGzip, createInflate } from 'node:zlib';
import { CompressStream, DecompressStream } from 'zstd-napi';
import { chError } from './errors.js';

/** Methods the server knows (src/IO/CompressionMethod.cpp). */
const serverMethods = ['gzip', 'deflate', 'br', 'xz', 'zstd', 'lz4', 'bz2', 'snappy'] as const;
type Method = (typeof serverMethods)[number];

function unsupported(method: string, what: string): Error {
  return chError('NOT_IMPLEMENTED', `${what} '${method}' is not supported by the embedded ClickHouse endpoint (chdb): it handles gzip, deflate, br and zstd`);
}

/**
 * The request body, decoded per its `Content-Encoding`.
 *
 * @throws EndpointError 48 for xz/lz4/bz2/snappy (known to the server, not here) and for an
 *   encoding the server does not know either (as the server's "Unknown compression method").
 */
export function decodedBody(req: Readable, contentEncoding: string | undefined): Readable {
  const method = (contentEncoding ?? '').trim().toLowerCase();
  switch (method) {
    case '': case 'identity': case 'none': return req;
    case 'gzip': case 'x-gzip': return req.pipe(createGunzip());
    case 'deflate': return req.pipe(createInflate());
    case 'br': return req.pipe(createBrotliDecompress());
    case 'zstd': return req.pipe(new DecompressStream());
    default:
      if ((serverMethods as readonly string[]).includes(method)) throw unsupported(method, 'Content-Encoding');
      throw chError('NOT_IMPLEMENTED', `Unknown compression method '${method}'. Only 'auto', 'none', 'gzip', 'deflate', 'br', 'xz', 'zstd', 'lz4', 'bz2', 'snappy' are supported as compression methods`);
  }
}

/**
 * The response encoding for this `Accept-Encoding`, chosen in the server's order of preference
 * (br, then gzip, deflate, xz, zstd, lz4, bz2, snappy), or undefined for none.
 */
export function responseMethod(acceptEncoding: string | undefined): Method | undefined {
  const offered = new Set((acceptEncoding ?? '').toLowerCase().split(',').map((part) => part.split(';')[0]!.trim()));
  return (['br', 'gzip', 'deflate', 'xz', 'zstd', 'lz4', 'bz2', 'snappy'] as const).find((m) => offered.has(m));
}

/**
 * A compressor for `method` at the server's default `http_zlib_compression_level` (3).
 *
 * @throws EndpointError 48 for methods the endpoint cannot produce.
 */
export function compressor(method: Method): Transform {
  switch (method) {
    case 'gzip': return createGzip({ level: 3 });
    case 'deflate': return createDeflate({ level: 3 });
    case 'br': return createBrotliCompress({ params: { [constants.BROTLI_PARAM_QUALITY]: 3 } });
    case 'zstd': return new CompressStream();
    default: throw unsupported(method, 'Accept-Encoding');
  }
}
