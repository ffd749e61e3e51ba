/**
 * Registers the record-batch compression codecs KafkaJS lacks (it ships gzip only) so that every
 * batch a Kafka producer may write is readable: snappy (`kafkajs-snappy`, pure JS, also reads the
 * xerial framing the Java producer uses), lz4 (`lz4js`, pure JS, LZ4 frame format as in Kafka's
 * magic v2 batches, KIP-57) and zstd (`@mongodb-js/zstd`, napi-rs binaries shipped as npm
 * packages). Idempotent; call before any consumer or producer is created.
 */
import { createRequire } from 'node:module';
import { CompressionCodecs, CompressionTypes } from 'kafkajs';

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
  const lz4 = require('lz4js') as { compress(input: Uint8Array): number[] | Uint8Array; decompress(input: Uint8Array): number[] | Uint8Array };
  const zstd = require('@mongodb-js/zstd') as { compress(data: Buffer, level?: number): Promise<Buffer>; decompress(data: Buffer): Promise<Buffer> };
  const codecs = CompressionCodecs as unknown as Record<number, () => KafkaCodec>;
  codecs[CompressionTypes.Snappy] = snappy;
  codecs[CompressionTypes.LZ4] = () => ({
    compress: (encoder) => Promise.resolve(Buffer.from(lz4.compress(encoder.buffer))),
    decompress: (buffer) => Promise.resolve(Buffer.from(lz4.decompress(buffer))),
  });
  codecs[CompressionTypes.ZSTD] = () => ({
    compress: (encoder) => zstd.compress(encoder.buffer),
    decompress: (buffer) => zstd.decompress(buffer),
  });
  registered = true;
}
