/**
 * Starting the WebSocket group for a command: `dpt coordinator` listens and waits for workers
 * started elsewhere; `dpt launch` (and `dpt train --transport ws`) also starts the local worker
 * processes, streams their output with a [worker i] prefix, and stops them when the group is
 * closed — first by the protocol's stop message, then SIGTERM, then SIGKILL, so none is orphaned.
 * With --workers N the coordinator computes rank 0 and N-1 processes the others
 * (coordinator-rank.ts); with --average-only (or N = 1) N processes compute every rank.
 * Once the workers have joined, SIGINT and SIGTERM belong to the command (cli/train.ts finishes
 * the step and writes a checkpoint before it closes the group); this module answers them only
 * while waiting for the join, when nothing has been trained. Inside `dpt bench --emulate`
 * (WORKER_HOSTS_ENV set) worker process i runs in emulated worker host i.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { ConfigError, coordinatorComputesRank0, wsWorkerProcesses, type TrainConfig } from '../src/config.js';
import type { LabelledImages } from '../src/data/idx.js';
import type { Kernels } from '../src/tensor/kernels.js';
import { compiledFile } from '../src/compiled.js';
import { generateToken } from '../src/protocol/auth.js';
import { loadServerTls } from '../src/protocol/tls-files.js';
import { hostCommand, workerHostsFrom, WORKER_HOSTS_ENV, type WorkerHostsPlan } from './emulated-hosts.js';
import { CoordinatorRankGroup } from './coordinator-rank.js';
import { WsGroup, type WsGroupOptions } from './ws-group.js';
import { WorkerError, type WorkerGroup } from './worker-group.js';

/** The compiled CLI, whichever tree (dist/ or the sources under vitest) this module runs from. */
export function cliPath(): string {
  return compiledFile('cli/dpt.js', 'the dpt CLI');
}

/** Parses --listen HOST:PORT (IPv6 as [::1]:PORT). */
export function parseListen(value: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(value.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new ConfigError(`--listen must be HOST:PORT, e.g. --listen 127.0.0.1:7070 (port 0 picks a free one), got '${value}'`);
  return { host: m[1] ?? m[2]!, port };
}

export class LocalWorkers {
  readonly children: ChildProcess[] = [];
  private stopping = false;
  /**
   * A coordinator that exits without closing its group (a second Ctrl-C, a crash) takes its
   * workers along. SIGKILL: nothing is left to wait for, and it ends a stopped worker too.
   */
  private readonly killOnExit = (): void => {
    for (const c of this.children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  };

  /**
   * `ca`: the coordinator's certificate file, which the workers trust for a wss:// url;
   * `hosts`: emulated hosts, worker process i started in hosts[i] (its namespace and cgroup). `firstIndex`
   * numbers the [worker i] prefixes from the first rank a process may take (1 when the coordinator
   * computes rank 0); which rank each one holds is decided by the order they join.
   */
  constructor(n: number, url: string, token: string, o: {
    dataDir: string | null; ca?: string | null; firstIndex?: number; hosts?: WorkerHostsPlan['workers'] | null; log: (line: string) => void; onEarlyExit(e: Error): void;
  }) {
    const cli = cliPath();
    const hosts = o.hosts ?? null;
    if (hosts !== null && n > hosts.length) {
      throw new ConfigError(`${n} worker processes asked for, but the emulated hosts were built for ${hosts.length}: `
        + `dpt bench --emulate builds a host for each worker of its largest ws configuration; run it again rather than setting ${WORKER_HOSTS_ENV} by hand`);
    }
    const env: NodeJS.ProcessEnv = { ...process.env, DPT_TOKEN: token };
    // a worker spawns nothing: the plan of hosts is the coordinator's alone
    delete env[WORKER_HOSTS_ENV];
    const first = o.firstIndex ?? 0;
    for (let i = 0; i < n; i++) {
      const w = i + first;
      // --reconnect-timeout 0: a local worker belongs to this coordinator and must not outlive it
      // (a SIGKILLed coordinator runs no exit handler; its workers see the socket drop and exit).
      const args = [cli, 'worker', '--connect', url, '--reconnect-timeout', '0', ...(o.dataDir ? ['--data-dir', o.dataDir] : []), ...(o.ca ? ['--ca', o.ca] : [])];
      // The token goes through the environment, not argv, where any user could read it with ps.
      // Detached, in a process group of its own: a Ctrl-C in the terminal goes to the whole
      // foreground group, and a worker killed by it would fail the very step the coordinator is
      // finishing before it writes its checkpoint. The coordinator stops its workers itself.
      const argv = hosts === null ? [process.execPath, ...args] : hostCommand(hosts[i]!, [process.execPath, ...args]);
      const child = spawn(argv[0]!, argv.slice(1), { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
      const tail: string[] = [];
      for (const stream of [child.stdout!, child.stderr!]) {
        createInterface({ input: stream }).on('line', (line) => {
          tail.push(line);
          if (tail.length > 5) tail.shift();
          o.log(`[worker ${w}] ${line}`);
        });
      }
      child.on('error', (e) => o.onEarlyExit(new WorkerError('DPT_ERR_WORKER_FAILED', w, -1, `could not start worker process ${w}: ${e.message}`)));
      child.on('exit', (code, signal) => {
        if (this.stopping || code === 0) return;
        o.onEarlyExit(new WorkerError('DPT_ERR_WORKER_FAILED', w, -1, `worker process ${w} exited (${signal ?? `code ${code}`})${tail.length ? `: ${tail.at(-1)}` : ''}`));
      });
      this.children.push(child);
    }
    process.on('exit', this.killOnExit);
  }

  /** Waits for every child to exit: they stop on their own after the stop message; then signals. */
  async stop(graceMs = 3000): Promise<void> {
    this.stopping = true;
    await Promise.all(this.children.map(async (c) => {
      if (c.exitCode !== null || c.signalCode !== null) return;
      const exited = new Promise<void>((r) => c.once('exit', () => r()));
      const within = (ms: number) => Promise.race([exited.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), ms).unref())]);
      if (await within(graceMs)) return;
      c.kill('SIGTERM');
      if (await within(2000)) return;
      c.kill('SIGKILL');
      await exited;
    }));
    process.off('exit', this.killOnExit);
  }
}

/** A ws group (with or without rank 0 on the coordinator) whose close() also stops the worker processes it started. */
class LaunchedGroup implements WorkerGroup {
  readonly transport = 'ws' as const;
  constructor(readonly inner: WsGroup | CoordinatorRankGroup, private readonly workers: LocalWorkers | null) {}
  get world(): number {
    return this.inner.world;
  }
  get coordinatorComputes(): boolean {
    return this.inner instanceof CoordinatorRankGroup;
  }
  computeStep(req: Parameters<WorkerGroup['computeStep']>[0]) {
    return this.inner.computeStep(req);
  }
  async close(reason?: string): Promise<void> {
    await this.inner.close(reason);
    await this.workers?.stop();
  }
}

/**
 * Listens, starts local workers when config.spawnWorkers, waits for the worker processes to join
 * (config.workers of them with --average-only, else one fewer: the coordinator computes rank 0
 * with `coordinatorKernels`). `log` receives status lines (the URL, the token when generated,
 * worker output).
 */
export async function startWsGroup(config: TrainConfig, train: LabelledImages, log: (line: string) => void, coordinatorKernels?: Kernels): Promise<WorkerGroup> {
  const hosts = config.spawnWorkers ? workerHostsFrom(process.env) : null;
  const listen = parseListen(config.listen);
  // on emulated hosts the workers reach the coordinator across the bridge, not over its loopback
  const { host, port } = hosts === null ? listen : { host: hosts.coordinator, port: listen.port };
  const token = config.token ?? generateToken();
  const tls = config.tlsCert !== null && config.tlsKey !== null ? loadServerTls(config.tlsCert, config.tlsKey) : null;
  const options: WsGroupOptions = {
    spec: config.spec, train, world: config.workers, maxBatch: config.batch, kernels: config.kernels,
    data: config.dataMode, wire: config.wire, token, host, port, tls, log: (l) => log(`coordinator: ${l}`),
    minWorkers: config.minWorkers, stepTimeoutMs: config.stepTimeout === null ? null : config.stepTimeout * 1000, coordinatorKernels,
  };
  const computing = coordinatorComputesRank0(config);
  if (computing && coordinatorKernels === undefined) throw new RangeError('the coordinator computes rank 0: startWsGroup needs its engine (coordinatorKernels)');
  const inner = computing ? await CoordinatorRankGroup.listen(options, coordinatorKernels!) : await WsGroup.listen(options);
  const group = inner instanceof CoordinatorRankGroup ? inner.workers : inner;
  const processes = wsWorkerProcesses(config);
  let workers: LocalWorkers | null = null;
  // Only until the workers have joined: from then on the command owns the signals.
  const onSignal = (s: NodeJS.Signals): void => {
    log(`${s} received while waiting for workers: stopping them`);
    void Promise.all([inner.close(), workers?.stop(500)]).finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    if (config.spawnWorkers) {
      // the local workers trust the very certificate served (enough for a self-signed one)
      workers = new LocalWorkers(processes, group.url, token, {
        dataDir: config.dataDir, ca: config.tlsCert, firstIndex: group.firstRank, hosts: hosts?.workers, log, onEarlyExit: (e) => group.abortWait(e),
      });
    } else {
      const ca = tls?.selfSigned ? ` --ca ${config.tlsCert}` : '';
      const ranks = computing ? `; it computes rank 0 of ${config.workers} itself` : '';
      log(`coordinator: listening on ${group.url}, waiting for ${processes} worker${processes === 1 ? '' : 's'} (data ${config.dataMode}${tls ? `, TLS with ${config.tlsCert}` : ''}${ranks})`);
      if (config.token === null) log(`coordinator: token ${token}  (start workers with: DPT_TOKEN=${token} dpt worker --connect ${group.url}${ca})`);
    }
    await group.waitForWorkers(config.joinTimeout * 1000);
  } catch (e) {
    await inner.close();
    await workers?.stop(500);
    throw e;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  return new LaunchedGroup(inner, workers);
}
