/**
 * `dpt launch --emulate cpu=C,bandwidth=B`: the coordinator and each worker run as a host of
 * their own — a network namespace on a shaped link to a bridge, a cpu cgroup — so one machine
 * shows what slower links and smaller hosts do to a run. This launcher builds the hosts, starts
 * `dpt coordinator` and `dpt worker` processes in them (which know nothing of namespaces),
 * forwards their output, relays Ctrl-C to the coordinator so it checkpoints, and removes the
 * hosts when all have exited, on a failure, or at the next run after a kill -9.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { coordinatorComputesRank0, wsWorkerProcesses, type EmulateSpec } from '../src/config.js';
import { generateToken, tokenFrom } from '../src/protocol/auth.js';
import { cliPath } from '../coordinator/launch.js';
import { COORDINATOR_PORT, hostCommand, type EmulatedHost } from '../coordinator/emulated-hosts.js';
import { removeRun } from '../coordinator/emulated-hosts-system.js';
import { buildEmulatedHosts, checkEmulation, describeSpec, exitOf, removeDeadRunsSaying, removeHostsSaying } from './emulated-setup.js';

export interface EmulatedLaunch {
  spec: EmulateSpec;
  /** ranks (--workers); the coordinator computes rank 0 unless averageOnly, so one worker host fewer */
  workers: number;
  averageOnly: boolean;
  /** the `dpt launch` arguments to pass on to `dpt coordinator` (without --emulate, --listen, --token) */
  coordinatorArgs: string[];
  token?: string;
  dataDir: string | null;
  /** the command run with --emulate, for the messages */
  command?: 'launch' | 'train';
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
  return withoutOptions(args, OWN_OPTIONS);
}

/** `args` without `options`, each given as `--opt value` or `--opt=value`. */
export function withoutOptions(args: string[], options: string[]): string[] {
  const kept: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (options.includes(a)) i++;
    else if (!options.some((o) => a.startsWith(`${o}=`))) kept.push(a);
  }
  return kept;
}

/** Runs the emulated launch; resolves with the exit code (the coordinator's). */
export async function launchEmulated(o: EmulatedLaunch): Promise<number> {
  const log = o.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const computing = coordinatorComputesRank0(o);
  const workerHostCount = wsWorkerProcesses(o);
  // every host is capped alike, the coordinator's too (computing rank 0 or averaging)
  checkEmulation(o.spec, { workers: workerHostCount, coordinatorComputes: computing }, o.command ?? 'launch');
  const runId = String(process.pid);
  removeDeadRunsSaying(log);
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
    const { plan } = buildEmulatedHosts(runId, o.spec, workerHostCount, log, computing);
    const firstWorkerRank = computing ? 1 : 0;
    const [coordinatorHost, ...workerHosts] = plan.hosts;
    const url = `ws://${coordinatorHost!.address}:${COORDINATOR_PORT}`;
    log(`emulate: ${plan.hosts.length} hosts on ${coordinatorHost!.address.replace(/\.\d+$/, '.0/24')}: ${describeSpec(o.spec)}; the coordinator listens on ${url}`);
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
    removeHostsSaying(runId, log);
    process.off('exit', removeOnExit);
  }
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
