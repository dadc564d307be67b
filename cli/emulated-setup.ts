/**
 * What `dpt launch --emulate` and `dpt bench --emulate` share around the processes they run:
 * the checks made before anything is built, the removal of what killed runs left, building this
 * run's hosts and saying what they are, and removing them again. The callers start, signal and
 * wait for their own processes.
 */
import type { ChildProcess } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { ConfigError, type EmulateSpec } from '../src/config.js';
import { checkCpuBudget, HOST_LINK, planHosts, type EmulationPlan } from '../coordinator/emulated-hosts.js';
import { buildHosts, findCpuCgroup, missingPrerequisite, netemAvailable, removeDeadRuns, removeRun } from '../coordinator/emulated-hosts-system.js';

/** Refuses, before anything is built, cpu caps beyond the cores of the coordinator's and the workers' hosts, and a machine without what --emulate needs. */
export function checkEmulation(spec: EmulateSpec, hosts: { workers: number; coordinatorComputes: boolean }, command: 'launch' | 'train' | 'bench'): void {
  if (spec.cpu !== null) checkCpuBudget(spec.cpu, hosts, availableParallelism());
  const missing = missingPrerequisite(spec, command);
  if (missing !== null) throw new ConfigError(missing);
}

/** Removes the hosts of runs whose launcher is gone (kill -9), saying whose. */
export function removeDeadRunsSaying(log: (line: string) => void): void {
  const stale = removeDeadRuns();
  if (stale.length > 0) log(`emulate: removed the hosts left by run${stale.length > 1 ? 's' : ''} ${stale.join(', ')} (launcher no longer running)`);
}

/**
 * Builds the coordinator host and `workers` worker hosts of run `runId` and names them (the
 * coordinator as rank 0 when it computes); on a
 * failure throws, and the caller's removeHostsSaying removes what was built.
 */
export function buildEmulatedHosts(runId: string, spec: EmulateSpec, workers: number, log: (line: string) => void,
  coordinatorComputes = false): { plan: EmulationPlan; netem: boolean } {
  const plan = planHosts(runId, workers, spec, spec.cpu !== null ? findCpuCgroup() : null);
  let netem = false;
  if (spec.latencyMs !== null) {
    netem = netemAvailable(runId);
    if (!netem) log('--emulate latency: this kernel has no sch_netem; the link latency is left to the cost model (--what-if latency=...)');
  }
  buildHosts(plan, netem);
  // worker hosts are named by the first rank they may take (which one each holds depends on the order they join)
  const firstWorkerRank = coordinatorComputes ? 1 : 0;
  log(`emulate: hosts ${plan.hosts.map((h, i) => `${h.netns} ${h.address} (${i === 0 ? (coordinatorComputes ? 'coordinator, rank 0' : 'coordinator') : `worker ${i - 1 + firstWorkerRank}`})`).join(', ')}; `
    + `each host's link is ${HOST_LINK} (cut one with: ip -n NAMESPACE link set ${HOST_LINK} down)`);
  return { plan, netem };
}

/** Removes every namespace and cgroup of run `runId`, saying what could not be removed. */
export function removeHostsSaying(runId: string, log: (line: string) => void): void {
  const left = removeRun(runId);
  if (left.length > 0) log(`emulate: could not remove ${left.join(', ')}`);
}

/** "0.5 cores each, links of 100 Mbit/s both ways" */
export function describeSpec(spec: EmulateSpec): string {
  const parts = [
    spec.cpu !== null ? `${spec.cpu} cores each` : 'no cpu cap',
    spec.bandwidthBitsPerS !== null ? `links of ${spec.bandwidthBitsPerS / 1e6} Mbit/s both ways` : 'links not shaped',
  ];
  return parts.join(', ');
}

/** Resolves with a child's exit code (130 after SIGINT, 1 for another signal or a failed start). */
export function exitOf(c: ChildProcess): Promise<number> {
  if (c.exitCode !== null || c.signalCode !== null) return Promise.resolve(c.exitCode ?? (c.signalCode === 'SIGINT' ? 130 : 1));
  return new Promise((r) => {
    c.once('exit', (code, signal) => r(code ?? (signal === 'SIGINT' ? 130 : 1)));
    c.once('error', () => r(1));
  });
}
