/**
 * `dpt bench --emulate` with real namespaces, veths, tbf and cpu cgroups (root only: skipped with
 * the reason elsewhere): the bench runs in the coordinator host, its ws workers in worker hosts of
 * their own, the output says so, and no namespace or cgroup is left, however the run ends.
 */
import { spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { afterAll, describe, expect, it } from 'vitest';
import { CLI, spawnDpt, until, type Run } from '../helpers/cli.js';
import { skipNote } from '../helpers/environment.js';
import { cgroupsWith, missingPrerequisite, namespacesWith, removeRun } from '../../coordinator/emulated-hosts-system.js';

const started: ChildProcess[] = [];
afterAll(() => {
  for (const c of started) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  // a failed test's hosts, and the bench still running in them, go with it
  if (missing === null) for (const c of started) removeRun(String(c.pid));
});
const dpt = (args: string[]): Run => spawnDpt(args, started);
const missing = missingPrerequisite({ cpu: 0.5, bandwidthBitsPerS: 1e9, latencyMs: null }, 'bench');
/** A few steps of a small net on 300 images: the grid, the probe and the model check, quickly. */
const SMALL = ['--batch', '16', '--sizes', '784,30,10', '--train-limit', '300', '--burn-in', '2', '--repeats', '1', '--eval-limit', '100', '--kernels', 'js'];
const leftovers = (pid: number) => [...namespacesWith(`dpt-emu-${pid}-`), ...cgroupsWith(`dpt-emu-${pid}-`)];
/** The addresses ws workers joined the coordinator from ("worker 0 (10.231.0.2:41234, vm pid 77) joined"). */
const joinedFrom = (lines: string[]) => lines.flatMap((l) => [.../worker \d \((10\.231\.0\.\d+):\d+, .*\) joined/.exec(l)?.slice(1) ?? []]);

describe('dpt bench --emulate', () => {
  it.skipIf(missing !== null)(`runs inproc on the coordinator host and each ws worker on a host of its own, says so, and leaves nothing${skipNote(missing)}`, async () => {
    const r = dpt(['bench', '--emulate', 'cpu=0.5,bandwidth=1Gbit', '--transport', 'inproc,ws', '--workers', '1,2', '--steps', '5', ...SMALL]);
    expect(await r.exit, r.err.join('\n')).toBe(0);
    // ws x1's worker on the first worker host; ws x2 is rank 0 on the coordinator host and one worker on the first
    expect(joinedFrom(r.err).sort()).toEqual(['10.231.0.2', '10.231.0.2']);
    const out = r.out.join('\n');
    expect(out).toMatch(/^On emulated hosts \(dpt bench --emulate: 0\.5 cores each, links of 1\.00 Gbit\/s both ways\): .*single-node baseline among them, on the coordinator host; each ws worker process on a worker host of its own \(1 built\)/m);
    expect(out).toMatch(/Model check: fitted on the 1-worker configurations only/);
    expect(out).toMatch(/^inproc x2 +784-30-10 +16 /m);
    expect(out).toMatch(/^ws x2 +784-30-10 +16 /m);
    expect(out).toMatch(/^Verdict \(every configuration on emulated hosts, the single-node baseline too/m);
    expect(leftovers(r.child.pid!)).toEqual([]);
  }, 60_000);

  it.skipIf(missing !== null)(`relays Ctrl-C to the bench and removes the hosts${skipNote(missing)}`, async () => {
    const r = dpt(['bench', '--emulate', 'cpu=0.5,bandwidth=1Gbit', '--transport', 'ws', '--workers', '1', '--steps', '100000', ...SMALL]);
    await until('the worker to join', () => r.err.some((l) => l.includes('joined (1/1)')), r, 30_000);
    r.child.kill('SIGINT');
    expect(await r.exit, r.err.join('\n')).toBe(130);
    expect(leftovers(r.child.pid!)).toEqual([]);
  }, 60_000);

  it.skipIf(missing !== null)(`removes the hosts of a bench killed with SIGKILL, and what still runs in them, at the next run${skipNote(missing)}`, async () => {
    const killed = dpt(['bench', '--emulate', 'cpu=0.3,bandwidth=100mbit', '--transport', 'ws', '--workers', '3', '--steps', '100000', ...SMALL]);
    await until('the workers to join', () => killed.err.some((l) => l.includes('joined (2/2)')), killed, 30_000);
    const pid = killed.child.pid!;
    // each worker process in its own host's cgroup
    const workerPids = killed.err.flatMap((l) => [.../\(10\.231\.0\.(\d+):\d+, vm pid (\d+)\) joined/.exec(l)?.slice(1) ?? []]);
    expect(workerPids).toHaveLength(4);
    for (let i = 0; i < workerPids.length; i += 2) {
      const host = Number(workerPids[i]) - 1;
      expect(readFileSync(`/proc/${workerPids[i + 1]}/cgroup`, 'utf8')).toContain(`dpt-emu-${pid}-w${host}`);
    }
    killed.child.kill('SIGKILL');
    await killed.exit;
    expect(namespacesWith(`dpt-emu-${pid}-`).sort()).toEqual([`dpt-emu-${pid}-c`, `dpt-emu-${pid}-sw`, `dpt-emu-${pid}-w1`, `dpt-emu-${pid}-w2`]);
    const next = dpt(['bench', '--emulate', 'bandwidth=1gbit', '--transport', 'inproc', '--workers', '1', '--steps', '2', ...SMALL]);
    expect(await next.exit, next.err.join('\n')).toBe(0);
    expect(next.err.join('\n')).toMatch(new RegExp(`removed the hosts left by runs? .*${pid}`));
    expect(leftovers(pid)).toEqual([]);
    expect(leftovers(next.child.pid!)).toEqual([]);
  }, 60_000);

  it('exits with 2 and one line saying it needs root, for a user other than root', () => {
    // as root, the same command run as nobody
    const asUser = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {};
    const r = spawnSync(process.execPath, [CLI, 'bench', '--emulate', 'bandwidth=1Gbit', '--transport', 'ws', '--workers', '1,2'], { encoding: 'utf8', ...asUser });
    expect(r.status).toBe(2);
    expect(r.stderr).toBe('dpt: error: --emulate needs root (network namespaces, tc and cgroups): run dpt bench --emulate as root, e.g. with sudo\n');
  });

  it('refuses cpu caps of the coordinator and the largest ws configuration\'s workers beyond the cores, naming the numbers', async () => {
    // ws x(2 × cores + 1): rank 0 on the coordinator host and 2 × cores worker hosts, 0.5 × (1 + 2 × cores) = cores + 0.5;
    // the check comes before anything is built, as root or not
    const cores = availableParallelism();
    const r = dpt(['bench', '--emulate', 'cpu=0.5', '--transport', 'inproc,ws', '--workers', `1,${2 * cores + 1}`, ...SMALL]);
    expect(await r.exit).toBe(2);
    expect(r.err.join('\n')).toContain(`cpu=0.5 for ${2 * cores + 1} hosts (the coordinator, computing rank 0, and ${2 * cores} workers) is ${cores + 0.5} cores, but this machine has ${cores}`);
  });
});
