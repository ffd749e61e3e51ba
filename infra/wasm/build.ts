/**
 * Compiles the project's AssemblyScript stages to WebAssembly with the npm `assemblyscript`
 * compiler (programmatic `asc` API), into `.state/wasm/<name>-<source sha256 prefix>.wasm`. Idempotent:
 * a file whose source hash is already built is reused, so a clean clone builds once and later
 * starts cost nothing. Run by the worker on first use of a WebAssembly stage and by `npm run wasm:build`.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, access } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { PlatformError } from '../../schemas/errors.js';

const root = fileURLToPath(new URL('../../', import.meta.url));

/** Where built modules go. */
export const wasmDir = join(root, '.state', 'wasm');

/** Thrown when the AssemblyScript compiler reports errors. */
export class WasmBuildError extends PlatformError {
  constructor(message: string) {
    super('wasm_build_failed', message, false);
    this.name = 'WasmBuildError';
  }
}

/** Builds `infra/wasm/assembly/<name>.ts` unless built already; returns the .wasm path. */
export async function buildWasm(name: string, log: (line: string) => void = () => undefined): Promise<string> {
  const source = fileURLToPath(new URL(`./assembly/${name}.ts`, import.meta.url));
  const hash = createHash('sha256').update(await readFile(source)).digest('hex').slice(0, 12);
  const out = join(wasmDir, `${name}-${hash}.wasm`);
  try {
    await access(out);
    return out;
  } catch {
    // not built yet
  }
  await mkdir(wasmDir, { recursive: true });
  log(`[wasm] compiling ${name} with AssemblyScript ...`);
  const asc = (await import('assemblyscript/asc')).default;
  const stderr: string[] = [];
  const result = await asc.main([source, '--outFile', out, '--optimizeLevel', '3', '--shrinkLevel', '0', '--runtime', 'stub', '--noAssert', '--converge'], {
    stderr: { write: (text: string | Uint8Array) => void stderr.push(String(text)) } as never,
  });
  if (result.error) throw new WasmBuildError(`AssemblyScript failed on ${source}: ${result.error.message}\n${stderr.join('')}`);
  log(`[wasm] ${name} ready (${out})`);
  return out;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  buildWasm('siphash', console.log).then(
    (path) => console.log(path),
    (err: unknown) => {
      console.error((err as Error).message);
      process.exit(1);
    },
  );
}
