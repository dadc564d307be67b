/**
 * Where the compiled JavaScript of a file lives. Worker threads and processes must run compiled
 * JS (Node 20 cannot load .ts as a worker), and the code that starts them runs either compiled
 * (dist/…) or from source under vitest; both resolve to the same file under dist/.
 */
import { existsSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError } from './config.js';

// this file is <root>/src/compiled.ts, or <root>/dist/src/compiled.js once built
const here = dirname(fileURLToPath(import.meta.url));
const root = basename(dirname(here)) === 'dist' ? resolve(here, '..', '..') : resolve(here, '..');

/** <root>/dist/<relative>, e.g. compiledFile('worker/thread-task.js', 'the thread task'); throws when it was not built. */
export function compiledFile(relative: string, what: string): string {
  const file = join(root, 'dist', relative);
  if (!existsSync(file)) throw new ConfigError(`${what} ${file} is missing: run \`npm run build\` first`);
  return file;
}
