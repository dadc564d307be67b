/**
 * The layout is the architecture: src/ is the core and imports nothing above it; worker/ computes
 * on top of it; coordinator/ runs the step loop and the worker groups; bench/harness/ is the
 * machinery of `dpt bench`; cli/ is the command line; the benchmark programs in bench/ use them
 * all. A module imports only from its own layer or the ones below, and no chain of imports comes
 * back to where it started.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const LAYERS = ['src', 'worker', 'coordinator', 'bench/harness', 'cli', 'bench'] as const;
const FOLDERS = ['src', 'worker', 'coordinator', 'bench', 'cli'];

function sources(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return sources(path);
    return e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') ? [path] : [];
  });
}

/** Relative imports of a file (static, dynamic and type-only), as repository paths of .ts files. */
export function importsOf(file: string, text: string): string[] {
  const specs = [...text.matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)].map((m) => m[1]!);
  return specs.map((s) => normalize(join(dirname(file), s)).replace(/\.js$/, '.ts'));
}

/** Every import circle found by a depth-first walk, as 'a -> b -> a'. */
export function circlesIn(g: Map<string, string[]>): string[] {
  const state = new Map<string, 'open' | 'done'>();
  const circles: string[] = [];
  const visit = (f: string, path: string[]) => {
    if (state.get(f) === 'done') return;
    if (state.get(f) === 'open') {
      circles.push([...path.slice(path.indexOf(f)), f].join(' -> '));
      return;
    }
    state.set(f, 'open');
    for (const d of g.get(f) ?? []) visit(d, [...path, f]);
    state.set(f, 'done');
  };
  for (const f of g.keys()) visit(f, []);
  return circles;
}

const layerOf = (file: string) => LAYERS.findIndex((l) => file.startsWith(`${l}/`));

const files = FOLDERS.flatMap((l) => sources(l));
const graph = new Map(files.map((f) => [f, importsOf(f, readFileSync(join(ROOT, f), 'utf8'))]));

describe('the layout', () => {
  it('finds the sources of every layer', () => {
    for (const layer of LAYERS) expect(files.some((f) => f.startsWith(`${layer}/`)), layer).toBe(true);
  });

  it('has no module importing from a layer above its own (src < worker < coordinator < bench/harness < cli < bench programs)', () => {
    const upward = [...graph].flatMap(([f, deps]) => deps.filter((d) => layerOf(d) > layerOf(f)).map((d) => `${f} -> ${relative('.', d)}`));
    expect(upward).toEqual([]);
  });

  it('has no import circle', () => {
    expect(circlesIn(graph)).toEqual([]);
  });

  it('the checks see a circle and an upward import where there is one', () => {
    expect(importsOf('src/a.ts', "import { x } from '../coordinator/b.js';\nimport type { Y } from './c.js';")).toEqual(['coordinator/b.ts', 'src/c.ts']);
    expect(layerOf('coordinator/b.ts')).toBeGreaterThan(layerOf('src/a.ts'));
    expect(circlesIn(new Map([['a', ['b']], ['b', ['c']], ['c', ['a']], ['d', ['a']]]))).toEqual(['a -> b -> c -> a']);
    expect(circlesIn(new Map([['a', ['b', 'c']], ['b', ['c']], ['c', []]]))).toEqual([]);
  });
});
