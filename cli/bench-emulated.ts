/**
 * `dpt bench --emulate cpu=C,bandwidth=B`: the whole bench on emulated hosts. This process builds
 * a coordinator host and a worker host for every ws worker process of the largest ws
 * configuration, then runs the real bench (the same arguments without --emulate) inside the
 * coordinator host, telling it the worker hosts through WORKER_HOSTS_ENV: its inproc and threads
 * configurations, the single-node baseline among them, run on the coordinator host, and each ws
 * worker process it spawns on a worker host of its own. It relays Ctrl-C to the bench and removes
 * the hosts when the bench ends, fails or is interrupted (or, after a kill -9, at the next run).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { wsWorkerProcesses, type EmulateSpec } from '../src/config.js';
import { cliPath } from '../coordinator/launch.js';
import { hostCommand, workerHostsValue, WORKER_HOSTS_ENV } from '../coordinator/emulated-hosts.js';
import { removeRun } from '../coordinator/emulated-hosts-system.js';
import { buildEmulatedHosts, checkEmulation, describeSpec, exitOf, removeDeadRunsSaying, removeHostsSaying } from './emulated-setup.js';

export interface EmulatedBench {
  spec: EmulateSpec;
  /** worker hosts to build: the most ws worker processes any configuration starts (0 without ws) */
  workerHosts: number;
  /** the `dpt bench` arguments to run inside the coordinator host (without --emulate) */
  benchArgs: string[];
  log?: (line: string) => void;
}

/** The worker hosts a bench needs: one per worker of its largest ws configuration, none without ws. */
export function workerHostsFor(transports: string[], workers: number[], averageOnly: boolean): number {
  return transports.includes('ws') ? Math.max(...workers.map((n) => wsWorkerProcesses({ workers: n, averageOnly }))) : 0;
}

/** Runs the bench on emulated hosts; resolves with its exit code. */
export async function benchEmulated(o: EmulatedBench): Promise<number> {
  const log = o.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  // the coordinator host computes: single-node cells, and rank 0 of ws cells unless --average-only
  checkEmulation(o.spec, { workers: o.workerHosts, coordinatorComputes: true }, 'bench');
  const runId = String(process.pid);
  removeDeadRunsSaying(log);
  // From here on, whatever happens, the hosts go: at the end, on a failure, or as this process exits.
  const removeOnExit = (): void => void removeRun(runId);
  process.on('exit', removeOnExit);
  let bench: ChildProcess | null = null;
  let signals = 0;
  const onSignal = (s: NodeJS.Signals): void => {
    signals++;
    // the bench stops its worker groups on the first; a second stops it at once
    if (bench !== null && bench.exitCode === null) bench.kill(signals > 1 ? 'SIGKILL' : s);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const { plan, netem } = buildEmulatedHosts(runId, o.spec, o.workerHosts, log);
    const coordinator = plan.hosts[0]!;
    log(`emulate: the bench runs on ${coordinator.netns} (${coordinator.address}) with every inproc and threads configuration; `
      + `${o.workerHosts === 0 ? 'no ws configuration, no worker hosts' : `ws worker process i on worker host i`}; ${describeSpec(o.spec)}`);
    if (signals > 0) return 130;
    const cmd = hostCommand(coordinator, [process.execPath, cliPath(), 'bench', ...o.benchArgs]);
    // Detached, in a process group of its own: a terminal's Ctrl-C reaches this process only,
    // which relays it, so the hosts are still removed however the bench ends.
    bench = spawn(cmd[0]!, cmd.slice(1), {
      env: { ...process.env, [WORKER_HOSTS_ENV]: workerHostsValue(plan, netem, process.pid) }, stdio: ['ignore', 'inherit', 'inherit'], detached: true,
    });
    return await exitOf(bench);
  } finally {
    if (bench !== null && bench.exitCode === null && bench.signalCode === null) bench.kill('SIGKILL');
    if (bench !== null) await exitOf(bench);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    removeHostsSaying(runId, log);
    process.off('exit', removeOnExit);
  }
}
