/**
 * A network fault between emulated hosts (root only: skipped with the reason elsewhere): one
 * worker host's link is cut mid-epoch with `ip link set eth0 down` in its namespace. The
 * coordinator drops that worker at --step-timeout and gives its shards to the survivors; once the
 * link is back, the worker notices its connection is gone, reconnects and rejoins. Every epoch
 * still counts each example once, the model equals an uninterrupted plain launch byte for byte,
 * and nothing of the run is left behind.
 */
import { spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
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
const missing = missingPrerequisite({ cpu: 0.45, bandwidthBitsPerS: 1e9, latencyMs: null });
const dir = mkdtempSync(join(tmpdir(), 'dpt-emulate-faults-'));
const TRAIN_LIMIT = 3000;
// three ranks: rank 0 on the coordinator's host, two worker hosts
const RUN = ['--workers', '3', '--epochs', '3', '--train-limit', String(TRAIN_LIMIT), '--eval-set', 'validation', '--json'];

function epochs(lines: string[]): { examples: number }[] {
  return lines.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { event?: string; examples: number }).filter((o) => o.event === 'epoch');
}

/** `ip -n NS link set DEV up|down`, failing the test with ip's own words. */
function setLink(netns: string, dev: string, state: 'up' | 'down'): void {
  const r = spawnSync('ip', ['-n', netns, 'link', 'set', dev, state], { encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
}

describe('a worker host cut off the emulated network', () => {
  it.skipIf(missing !== null)(`is dropped at --step-timeout, its shards redone by the survivors, and rejoins once the link is back; the model equals a run with no fault${skipNote(missing)}`, async () => {
    const ck = join(dir, 'cut.ckpt');
    const model = join(dir, 'cut.safetensors');
    const run = dpt(['launch', ...RUN, '--emulate', 'cpu=0.45,bandwidth=1gbit', '--step-timeout', '1',
      '--checkpoint', ck, '--checkpoint-every', '25', '--save', model]);
    // the launcher names every host's namespace, address and link
    await until('the hosts line', () => run.err.some((l) => l.startsWith('emulate: hosts ')), run, 15_000);
    const hostsLine = run.err.find((l) => l.startsWith('emulate: hosts '))!;
    const [, netns, address] = / (dpt-emu-\d+-w2) (10\.231\.0\.\d+) \(worker 2\)/.exec(hostsLine) ?? [];
    const [, link] = /each host's link is (\S+) /.exec(hostsLine) ?? [];
    expect([netns, address, link], hostsLine).toEqual([`dpt-emu-${run.child.pid}-w2`, '10.231.0.3', 'eth0']);
    const joinedFrom = (): number => run.err.filter((l) => l.includes(`(${address}:`) && / joined \(/.test(l)).length;

    await until('the first checkpoint', () => existsSync(ck), run, 15_000);
    expect(joinedFrom()).toBe(1);
    const rank = new RegExp(`worker (\\d+) \\(${address!.replaceAll('.', '\\.')}:\\d+, .*\\) joined`).exec(run.err.join('\n'))![1];
    setLink(netns!, link!, 'down');
    try {
      await until('the cut worker timed out', () => run.err.some((l) => l.includes('DPT_ERR_WORKER_TIMEOUT') && l.includes(`(${address}:`)), run, 10_000);
      await until('its shard re-assigned', () => run.err.some((l) => l.includes(`shard ${rank} (rank ${rank}'s) re-assigned to worker `)), run, 5_000);
    } finally {
      setLink(netns!, link!, 'up');
    }
    await until('the worker to rejoin', () => joinedFrom() === 2, run, 15_000);
    expect(await run.exit, run.err.join('\n')).toBe(0);
    const log = run.err.join('\n');
    expect(log).toMatch(/lost the coordinator at ws:\/\/10\.231\.0\.1:7070 \(.*\); reconnecting until/);
    expect(epochs(run.out).map((e) => e.examples)).toEqual([TRAIN_LIMIT, TRAIN_LIMIT, TRAIN_LIMIT]);

    const plain = dpt(['launch', ...RUN, '--save', join(dir, 'plain.safetensors')]);
    expect(await plain.exit, plain.err.join('\n')).toBe(0);
    expect(Buffer.compare(readFileSync(model), readFileSync(join(dir, 'plain.safetensors'))), 'the model differs from the run with no fault').toBe(0);
    const prefix = `dpt-emu-${run.child.pid}-`;
    expect([...namespacesWith(prefix), ...cgroupsWith(prefix)]).toEqual([]);
  }, 60_000);
});
