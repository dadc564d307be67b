/**
 * `dpt launch --emulate cpu=C,bandwidth=B`: the coordinator and each worker run as a host of
 * their own — a network namespace on a shaped link to a bridge, a cpu cgroup — so one machine
 * shows what slower links and smaller hosts do to a run. This launcher builds the hosts, starts
 * `dpt coordinator` and `dpt worker` processes in them (which know nothing of namespaces),
 * forwards their output, relays Ctrl-C to the coordinator so it checkpoints, and removes the
 * hosts when all have exited, on a failure, or at the next run after a kill -9.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { createInterface } from 'node:readline';
import { ConfigError, coordinatorComputesRank0, wsWorkerProcesses, type EmulateSpec } from '../src/config.js';
import { generateToken, tokenFrom } from '../src/protocol/auth.js';
import { cliPath } from '../coordinator/launch.js';
import { checkCpuBudget, COORDINATOR_PORT, HOST_LINK, hostCommand, planHosts, type EmulatedHost } from '../coordinator/emulated-hosts.js';
import { buildHosts, findCpuCgroup, missingPrerequisite, netemAvailable, removeDeadRuns, removeRun } from '../coordinator/emulated-hosts-system.js';

export interface EmulatedLaunch {
  spec: EmulateSpec;
  /** ranks (--workers); the coordinator computes rank 0 unless averageOnly, so one worker host fewer */
  workers: number;
  averageOnly: boolean;
  /** the `dpt launch` arguments to pass on to `dpt coordinator` (without --emulate, --listen, --token) */
  coordinatorArgs: string[];
  token?: string;
  dataDir: string | null;
  log?: (line: string) => void;
}

/**
 * Emulated hosts stand for separate machines, so their workers behave as hand-started ones do:
 * a worker whose link is cut and restored reconnects and rejoins instead of exiting. They still
 * belong to this run: the finally below kills any still reconnecting when the coordinator is done.
 */
export const EMULATED_RECONNECT_S = 60;

/** The options the launcher consumes itself, taken out of the arguments it passes on. */
const OWN_OPTIONS = ['--emulate', '--listen', '--token'];

/** `args` without the launcher's own options (as `--opt value` or `--opt=value`). */
export function withoutOwnOptions(args: string[]): string[] {
  const kept: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (OWN_OPTIONS.includes(a)) i++;
    else if (!OWN_OPTIONS.some((o) => a.startsWith(`${o}=`))) kept.push(a);
  }
  return kept;
}

/** Runs the emulated launch; resolves with the exit code (the coordinator's). */
export async function launchEmulated(o: EmulatedLaunch): Promise<number> {
  const log = o.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const computing = coordinatorComputesRank0(o);
  const workerHostCount = wsWorkerProcesses(o);
  // every host is capped alike, the coordinator's too (computing rank 0 or averaging)
  if (o.spec.cpu !== null) checkCpuBudget(o.spec.cpu, { workers: workerHostCount, coordinatorComputes: computing }, availableParallelism());
  const missing = missingPrerequisite(o.spec);
  if (missing !== null) throw new ConfigError(missing);
  const runId = String(process.pid);
  const stale = removeDeadRuns();
  if (stale.length > 0) log(`emulate: removed the hosts left by run${stale.length > 1 ? 's' : ''} ${stale.join(', ')} (launcher no longer running)`);
  const plan = planHosts(runId, workerHostCount, o.spec, o.spec.cpu !== null ? findCpuCgroup() : null);
  // From here on, whatever happens, the hosts go: at the end, on a failure, or as this process exits.
  const removeOnExit = (): void => void removeRun(runId);
  process.on('exit', removeOnExit);
  const children: ChildProcess[] = [];
  let signals = 0;
  const onSignal = (s: NodeJS.Signals): void => {
    signals++;
    const coordinator = children[0];
    // the coordinator finishes its step and checkpoints on the first; a second stops it at once
    if (coordinator && coordinator.exitCode === null) coordinator.kill(s);
    if (signals > 1) for (const c of children.slice(1)) c.kill('SIGKILL');
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    let netem = false;
    if (o.spec.latencyMs !== null) {
      netem = netemAvailable(runId);
      if (!netem) log('--emulate latency: this kernel has no sch_netem; the link latency is left to the cost model (--what-if latency=...)');
    }
    buildHosts(plan, netem);
    const [coordinatorHost, ...workerHosts] = plan.hosts;
    const url = `ws://${coordinatorHost!.address}:${COORDINATOR_PORT}`;
    log(`emulate: ${plan.hosts.length} hosts on ${coordinatorHost!.address.replace(/\.\d+$/, '.0/24')}: ${describe(o.spec)}; the coordinator listens on ${url}`);
    // worker hosts are named by the first rank they may take (which one each holds depends on the order they join)
    const firstWorkerRank = computing ? 1 : 0;
    log(`emulate: hosts ${plan.hosts.map((h, i) => `${h.netns} ${h.address} (${i === 0 ? (computing ? 'coordinator, rank 0' : 'coordinator') : `worker ${i - 1 + firstWorkerRank}`})`).join(', ')}; `
      + `each host's link is ${HOST_LINK} (cut one with: ip -n NAMESPACE link set ${HOST_LINK} down)`);
    if (signals > 0) return 130;
    const token = tokenFrom(o.token) ?? generateToken();
    const node = [process.execPath, cliPath()];
    const env = { ...process.env, DPT_TOKEN: token };
    children.push(start(coordinatorHost!, [...node, 'coordinator', ...o.coordinatorArgs, '--listen', `${coordinatorHost!.address}:${COORDINATOR_PORT}`], env, null));
    workerHosts.forEach((h, i) => {
      children.push(start(h, [...node, 'worker', '--connect', url, '--reconnect-timeout', String(EMULATED_RECONNECT_S), ...(o.dataDir ? ['--data-dir', o.dataDir] : [])], env, (l) => log(`[worker ${i + firstWorkerRank}] ${l}`)));
    });
    const code = await exitOf(children[0]!);
    // workers stop on the coordinator's stop message; one cut off from it (still reconnecting) is not waited for long
    await Promise.race([Promise.all(children.slice(1).map(exitOf)), new Promise((r) => setTimeout(r, 5000).unref())]);
    return code;
  } finally {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await Promise.all(children.map(exitOf));
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    const left = removeRun(runId);
    process.off('exit', removeOnExit);
    if (left.length > 0) log(`emulate: could not remove ${left.join(', ')}`);
  }
}

function describe(spec: EmulateSpec): string {
  const parts = [
    spec.cpu !== null ? `${spec.cpu} cores each` : 'no cpu cap',
    spec.bandwidthBitsPerS !== null ? `links of ${spec.bandwidthBitsPerS / 1e6} Mbit/s both ways` : 'links not shaped',
  ];
  return parts.join(', ');
}

/**
 * Starts `argv` as host h. Detached, in a process group of its own: a terminal's Ctrl-C reaches
 * the launcher only, which passes it to the coordinator (the workers stop when it tells them).
 * `prefix` null: the output is the run's own (the coordinator's) and passes through unchanged.
 */
function start(h: EmulatedHost, argv: string[], env: NodeJS.ProcessEnv, prefixed: ((line: string) => void) | null): ChildProcess {
  const cmd = hostCommand(h, argv);
  const child = spawn(cmd[0]!, cmd.slice(1), { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  if (prefixed === null) {
    child.stdout!.pipe(process.stdout);
    child.stderr!.pipe(process.stderr);
  } else {
    for (const stream of [child.stdout!, child.stderr!]) createInterface({ input: stream }).on('line', prefixed);
  }
  return child;
}

function exitOf(c: ChildProcess): Promise<number> {
  if (c.exitCode !== null || c.signalCode !== null) return Promise.resolve(c.exitCode ?? 1);
  return new Promise((r) => {
    c.once('exit', (code, signal) => r(code ?? (signal === 'SIGINT' ? 130 : 1)));
    c.once('error', () => r(1));
  });
}
