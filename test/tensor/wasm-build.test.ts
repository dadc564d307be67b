import { execSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { KERNELS_WASM_BASE64 } from '../../src/tensor/kernels-wasm-binary.js';

describe('the committed wasm module', () => {
  it('is what `npm run build:wasm` compiles from assembly/kernels.ts', () => {
    const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { scripts: Record<string, string> };
    const compile = pkg.scripts['build:wasm']!.split('&&')[0]!.trim();
    expect(compile).toMatch(/^asc assembly\/kernels\.ts .* -o build\/kernels\.wasm$/);
    const dir = mkdtempSync(join(tmpdir(), 'dpt-wasm-'));
    try {
      const out = join(dir, 'kernels.wasm');
      execSync(`node_modules/.bin/${compile.replace('-o build/kernels.wasm', `-o ${out}`)}`, { stdio: 'pipe' });
      const fresh = readFileSync(out);
      const committed = Buffer.from(KERNELS_WASM_BASE64, 'base64');
      expect(fresh.equals(committed), 'src/tensor/kernels-wasm-binary.ts is stale: run npm run build:wasm and commit it').toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
