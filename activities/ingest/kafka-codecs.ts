/**
 * Registers the record-batch compression codecs KafkaJS lacks (it ships gzip only) so that every
 * batch a Kafka producer may write is readable: snappy (`kafkajs-snappy`, pure JS, also reads the
 * xerial framing the Java producer uses), lz4 (`lz4-napi`, lz4_flex through napi-rs binaries
 * shipped as npm packages; LZ4 frames with independent blocks, the only kind Kafka's broker
 * accepts, KIP-57) and zstd (`@mongodb-js/zstd`, napi-rs binaries shipped as npm
 * packages). Idempotent; call before any consumer or producer is created.
 */
import { createRequire } from 'node:module';
import type * as KafkaJS from 'kafkajs';

const require = createRequire(import.meta.url);

/** A KafkaJS codec: `compress` receives the encoder of the records, `decompress` the batch body. */
interface KafkaCodec {
  compress(encoder: { buffer: Buffer }): Promise<Buffer>;
  decompress(buffer: Buffer): Promise<Buffer>;
}

let registered = false;

/** Adds snappy, lz4 and zstd to KafkaJS's CompressionCodecs (once per process). */
export function registerKafkaCodecs(): void {
  if (registered) return;
  const snappy = require('kafkajs-snappy') as () => KafkaCodec;
  const lz4 = require('lz4-napi') as { compressFrame(data: Uint8Array): Promise<Buffer>; decompressFrame(data: Uint8Array): Promise<Buffer> };
  // Through require: Node's ESM loader does not see these two among kafkajs's CommonJS exports.
  const { CompressionCodecs, CompressionTypes } = require('kafkajs') as typeof KafkaJS;
  const zstd = require('@mongodb-js/zstd') as { compress(data: Buffer, level?: number): Promise<Buffer>; decompress(data: Buffer): Promise<Buffer> };
  const codecs = CompressionCodecs as unknown as Record<number, () => KafkaCodec>;
  codecs[CompressionTypes.Snappy] = snappy;
  codecs[CompressionTypes.LZ4] = () => ({
    compress: (encoder) => lz4.compressFrame(encoder.buffer),
    decompress: (buffer) => lz4.decompressFrame(buffer),
  });
  codecs[CompressionTypes.ZSTD] = () => ({
    compress: (encoder) => zstd.compress(encoder.buffer),
    decompress: (buffer) => zstd.decompress(buffer),
  });
  registered = true;
}
