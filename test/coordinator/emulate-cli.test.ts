/**
 * `dpt launch --emulate` with real namespaces, veths, tbf and cpu cgroups (root only: skipped
 * with the reason elsewhere). The result is the plain launch's bit for bit, and nothing is left.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { spawnDpt, until, type Run } from '../helpers/cli.js';
import { skipNote } from '../helpers/environment.js';
import { cgroupsWith, missingPrerequisite, namespacesWith } from '../../coordinator/emulated-hosts-system.js';

const started: ChildProcess[] = [];
afterAll(() => {
  for (const c of started) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});
const dpt = (args: string[]): Run => spawnDpt(args, started);
const missing = missingPrerequisite({ cpu: 1, bandwidthBitsPerS: 1e9, latencyMs: null });
const dir = mkdtempSync(join(tmpdir(), 'dpt-emulate-'));
// two ranks: rank 0 on the coordinator's host, rank 1 on one worker host
const RUN = ['--workers', '2', '--epochs', '1', '--train-limit', '2000', '--eval-set', 'validation'];
const leftovers = (pid: number) => [...namespacesWith(`dpt-emu-${pid}-`), ...cgroupsWith(`dpt-emu-${pid}-`)];

let plainRun: Promise<Buffer> | null = null;
/** The model of the same run as a plain `dpt launch` on 127.0.0.1 (started once, shared). */
function plainModel(): Promise<Buffer> {
  plainRun ??= (async () => {
    const plain = dpt(['launch', ...RUN, '--save', join(dir, 'plain.safetensors')]);
    expect(await plain.exit, plain.err.join('\n')).toBe(0);
    return readFileSync(join(dir, 'plain.safetensors'));
  })();
  return plainRun;
}

describe('dpt launch --emulate', () => {
  it.skipIf(missing !== null)(`saves exactly the model of a plain launch and leaves no namespace or cgroup${skipNote(missing)}`, async () => {
    const emulated = dpt(['launch', ...RUN, '--emulate', 'cpu=0.6,bandwidth=1gbit', '--save', join(dir, 'emulated.safetensors')]);
    const plain = plainModel();
    expect(await emulated.exit, emulated.err.join('\n')).toBe(0);
    // the worker reached the coordinator from its own host's address; the coordinator computes rank 0
    const joinedFrom = emulated.err.flatMap((l) => [.../worker \d \((10\.231\.0\.\d+):\d+, .*\) joined/.exec(l)?.slice(1) ?? []]);
    expect(joinedFrom.sort()).toEqual(['10.231.0.2']);
    expect(emulated.err.join('\n')).toMatch(/emulate: hosts \S+-c 10\.231\.0\.1 \(coordinator, rank 0\), \S+-w1 10\.231\.0\.2 \(worker 1\);/);
    expect(Buffer.compare(readFileSync(join(dir, 'emulated.safetensors')), await plain)).toBe(0);
    expect(leftovers(emulated.child.pid!)).toEqual([]);
  }, 30_000);

  it.skipIf(missing !== null)(`dpt train --transport ws --emulate runs the same hosts and saves exactly the model of a plain launch${skipNote(missing)}`, async () => {
    const emulated = dpt(['train', '--transport', 'ws', ...RUN, '--emulate', 'cpu=0.6,bandwidth=1gbit', '--save', join(dir, 'train-emulated.safetensors')]);
    const plain = plainModel();
    expect(await emulated.exit, emulated.err.join('\n')).toBe(0);
    const joinedFrom = emulated.err.flatMap((l) => [.../worker \d \((10\.231\.0\.\d+):\d+, .*\) joined/.exec(l)?.slice(1) ?? []]);
    expect(joinedFrom.sort()).toEqual(['10.231.0.2']);
    expect(Buffer.compare(readFileSync(join(dir, 'train-emulated.safetensors')), await plain)).toBe(0);
    expect(leftovers(emulated.child.pid!)).toEqual([]);
  }, 30_000);

  it('dpt train --emulate refuses in-process transports, naming --emulate and --transport', async () => {
    for (const transport of ['inproc', 'threads']) {
      const r = dpt(['train', '--transport', transport, '--emulate', 'bandwidth=1gbit', ...RUN]);
      expect(await r.exit).toBe(2);
      expect(r.err.join('\n')).toMatch(new RegExp(`--emulate needs --transport ws, got --transport ${transport}`));
    }
  });

  it('refuses cpu caps that add up to more than the cores, counting the coordinator\'s host (computing rank 0 or only averaging), naming the numbers', async () => {
    const cores = availableParallelism();
    // cores + 1 ranks: the coordinator and cores worker hosts; --average-only: cores worker hosts beside the coordinator
    const computing = dpt(['launch', '--workers', String(cores + 1), '--emulate', 'cpu=1', ...RUN.slice(2)]);
    const averaging = dpt(['launch', '--workers', String(cores), '--average-only', '--emulate', 'cpu=1', ...RUN.slice(2)]);
    expect(await computing.exit).toBe(2);
    expect(await averaging.exit).toBe(2);
    expect(computing.err.join('\n')).toMatch(new RegExp(`cpu=1 for ${cores + 1} hosts \\(the coordinator, computing rank 0, and ${cores} workers?\\) is ${cores + 1} cores, but this machine has ${cores}: use cpu=`));
    expect(averaging.err.join('\n')).toMatch(new RegExp(`cpu=1 for ${cores + 1} hosts \\(the coordinator and ${cores} workers?\\) is ${cores + 1} cores`));
  });

  it.skipIf(missing !== null)(`removes the hosts of a launcher killed with SIGKILL at the next run${skipNote(missing)}`, async () => {
    const killed = dpt(['launch', ...RUN, '--emulate', 'cpu=0.3,bandwidth=100mbit']);
    await until('the worker to join', () => killed.err.some((l) => l.includes('joined (1/1)')), killed, 15_000);
    killed.child.kill('SIGKILL');
    await killed.exit;
    const pid = killed.child.pid!;
    expect(namespacesWith(`dpt-emu-${pid}-`).sort()).toEqual([`dpt-emu-${pid}-c`, `dpt-emu-${pid}-sw`, `dpt-emu-${pid}-w1`]);
    const next = dpt(['launch', ...RUN, '--max-steps', '5', '--emulate', 'bandwidth=1gbit']);
    expect(await next.exit, next.err.join('\n')).toBe(0);
    expect(next.err.join('\n')).toMatch(new RegExp(`removed the hosts left by runs? .*${pid}`));
    expect(leftovers(pid)).toEqual([]);
    expect(leftovers(next.child.pid!)).toEqual([]);
  }, 30_000);
});
