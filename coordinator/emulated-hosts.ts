/**
 * Emulated hosts for `dpt launch --emulate`, as pure data: the plan (one network namespace per
 * host on a bridge that lives in a namespace of its own, one cpu cgroup per host) and the exact
 * `ip`/`tc` commands and cgroup writes that build and remove it. Nothing here touches the system
 * (emulated-hosts-system.ts runs these), so tests can check every command.
 */
import { ConfigError, type EmulateSpec } from '../src/config.js';

/** Every name a run creates starts with this, then the launcher's pid: a later run can tell a dead run's leftovers. */
export const EMULATE_PREFIX = 'dpt-emu-';
/** Private addresses that exist only inside the run's namespaces; the coordinator is .1, worker i is .(i+2). */
export const EMULATE_SUBNET = '10.231.0';
export const COORDINATOR_PORT = 7070;
const BRIDGE = 'br0';
/** Each host's end of its link, inside its namespace: `ip -n NS link set eth0 down` cuts the host off. */
export const HOST_LINK = 'eth0';
/**
 * A short CFS period: a capped host runs a little of every 5 ms instead of being stopped for
 * most of a 100 ms period, so each step is slowed evenly rather than stalled now and then.
 */
export const CPU_PERIOD_US = 5000;
/** The kernel refuses quotas below 1 ms; a smaller cap gets a longer period instead. */
const MIN_QUOTA_US = 1000;

/** Where the cpu controller is: cgroup v2 (cpu.max) or v1 (cpu.cfs_quota_us / cpu.cfs_period_us). */
export interface CpuCgroupRoot { version: 1 | 2; root: string }

export interface EmulatedHost {
  /** 'c' for the coordinator, 'w1'… for the workers */
  role: string;
  netns: string;
  address: string;
  /** the switch's end of this host's link, inside the switch namespace */
  switchPort: string;
  /** this host's cgroup folder, or null without a cpu cap */
  cgroup: string | null;
}

export interface EmulationPlan {
  runId: string;
  switchNetns: string;
  hosts: EmulatedHost[];
  spec: EmulateSpec;
  cgroupRoot: CpuCgroupRoot | null;
}

/** `workers`: the worker hosts (processes). The names of run `runId` (the launcher's pid): namespaces `dpt-emu-<pid>-sw`, `-c`, `-w1`…, cgroups alike. */
export function planHosts(runId: string, workers: number, spec: EmulateSpec, cgroupRoot: CpuCgroupRoot | null): EmulationPlan {
  if (workers > 253) throw new ConfigError(`--emulate gives every host an address in ${EMULATE_SUBNET}.0/24: at most 253 worker hosts, got ${workers}: lower --workers`);
  const name = (role: string) => `${EMULATE_PREFIX}${runId}-${role}`;
  const roles = ['c', ...Array.from({ length: workers }, (_, i) => `w${i + 1}`)];
  const hosts = roles.map((role, i) => ({
    role, netns: name(role), address: `${EMULATE_SUBNET}.${i + 1}`, switchPort: `v-${role}`,
    cgroup: spec.cpu !== null && cgroupRoot !== null ? `${cgroupRoot.root}/${name(role)}` : null,
  }));
  return { runId, switchNetns: name('sw'), hosts, spec, cgroupRoot };
}

/**
 * tbf's bucket: about 1 ms of line rate and at least 16 KiB. A larger bucket lets small messages
 * through unshaped; a smaller one cannot hold a 64 KiB GSO packet's worth of credit at high rates.
 */
export function tbfBurstBytes(bitsPerS: number): number {
  return Math.max(16384, Math.ceil(bitsPerS / 8 / 1000));
}

/** The quota and period for a cap of `cpu` cores. */
export function cpuQuota(cpu: number): { quotaUs: number; periodUs: number } {
  const periodUs = Math.max(CPU_PERIOD_US, Math.ceil(MIN_QUOTA_US / cpu));
  return { quotaUs: Math.round(cpu * periodUs), periodUs };
}

/**
 * Refuses caps that add up to more than the machine's cores: hosts would share cores and the cap
 * would mean less. Every host counts, the coordinator's too, whether it computes rank 0 or only averages.
 */
export function checkCpuBudget(cpu: number, hosts: { workers: number; coordinatorComputes: boolean }, cores: number): void {
  const count = hosts.workers + 1;
  const total = cpu * count;
  if (total > cores + 1e-9) {
    const coordinator = hosts.coordinatorComputes ? 'the coordinator, computing rank 0,' : 'the coordinator';
    throw new ConfigError(`--emulate cpu=${cpu} for ${count} hosts (${coordinator} and ${hosts.workers} worker${hosts.workers === 1 ? '' : 's'}) is ${+total.toFixed(3)} cores, `
      + `but this machine has ${cores}: use cpu=${Math.floor((cores / count) * 100) / 100} or fewer --workers`);
  }
}

/** The tc command that shapes one end of a link (`-n NS` picks the namespace). */
function shape(netns: string, dev: string, spec: EmulateSpec, netem: boolean): string[][] {
  const cmds: string[][] = [];
  let parent = ['root'];
  // netem only on the host's own end, so a message between two hosts is delayed once
  const delay = netem && spec.latencyMs !== null && dev === HOST_LINK;
  if (delay) {
    cmds.push(['tc', '-n', netns, 'qdisc', 'add', 'dev', dev, 'root', 'handle', '1:', 'netem', 'delay', `${Math.round(spec.latencyMs! * 1000)}us`]);
    parent = ['parent', '1:1', 'handle', '10:'];
  }
  if (spec.bandwidthBitsPerS !== null) {
    const rate = Math.round(spec.bandwidthBitsPerS);
    cmds.push(['tc', '-n', netns, 'qdisc', 'add', 'dev', dev, ...parent, 'tbf', 'rate', `${rate}bit`, 'burst', `${tbfBurstBytes(rate)}`, 'latency', '200ms']);
  }
  return cmds;
}

/**
 * The commands that build the network, in order: the switch namespace and its bridge, then per
 * host a namespace, a veth pair from the bridge into it, its address, and both ends shaped.
 */
export function setupCommands(plan: EmulationPlan, netem: boolean): string[][] {
  const sw = plan.switchNetns;
  const cmds: string[][] = [
    ['ip', 'netns', 'add', sw],
    ['ip', '-n', sw, 'link', 'add', BRIDGE, 'type', 'bridge'],
    ['ip', '-n', sw, 'link', 'set', BRIDGE, 'up'],
  ];
  for (const h of plan.hosts) {
    cmds.push(
      ['ip', 'netns', 'add', h.netns],
      ['ip', '-n', h.netns, 'link', 'set', 'lo', 'up'],
      ['ip', '-n', sw, 'link', 'add', h.switchPort, 'type', 'veth', 'peer', 'name', HOST_LINK, 'netns', h.netns],
      ['ip', '-n', sw, 'link', 'set', h.switchPort, 'master', BRIDGE, 'up'],
      ['ip', '-n', h.netns, 'addr', 'add', `${h.address}/24`, 'dev', HOST_LINK],
      ['ip', '-n', h.netns, 'link', 'set', HOST_LINK, 'up'],
      ...shape(h.netns, HOST_LINK, plan.spec, netem),
      ...shape(sw, h.switchPort, plan.spec, netem),
    );
  }
  return cmds;
}

/** The cgroup folders to create and the files to write in them, in order (the period before the quota). */
export function cgroupWrites(plan: EmulationPlan): { dir: string; file: string; value: string }[] {
  if (plan.spec.cpu === null || plan.cgroupRoot === null) return [];
  const { quotaUs, periodUs } = cpuQuota(plan.spec.cpu);
  return plan.hosts.flatMap((h) => plan.cgroupRoot!.version === 2
    ? [{ dir: h.cgroup!, file: 'cpu.max', value: `${quotaUs} ${periodUs}` }]
    : [{ dir: h.cgroup!, file: 'cpu.cfs_period_us', value: `${periodUs}` }, { dir: h.cgroup!, file: 'cpu.cfs_quota_us', value: `${quotaUs}` }]);
}

/** The namespaces of a run, hosts first: deleting a host's namespace also deletes its veth pair. */
export function namespacesOf(plan: EmulationPlan): string[] {
  return [...plan.hosts.map((h) => h.netns), plan.switchNetns];
}

/**
 * The argv that runs `command` as host h: with a cap, a shell writes its own pid to the host's
 * cgroup.procs and execs (so the process is capped from its first instruction and keeps the pid
 * the launcher signals); then `ip netns exec` enters the namespace and execs the command. The
 * cgroup comes first because `ip netns exec` mounts a sysfs of the namespace over /sys.
 */
export function hostCommand(h: Pick<EmulatedHost, 'netns' | 'cgroup'>, command: string[]): string[] {
  const inNetns = ['ip', 'netns', 'exec', h.netns, ...command];
  return h.cgroup === null ? inNetns : ['sh', '-c', 'echo $$ > "$0" && exec "$@"', `${h.cgroup}/cgroup.procs`, ...inNetns];
}

/** The run ids among `names` (namespaces or cgroup folders) whose launcher is no longer alive. */
export function deadRunIds(names: string[], alive: (pid: number) => boolean): string[] {
  const ids = new Set<string>();
  for (const n of names) {
    const m = new RegExp(`^${EMULATE_PREFIX}(\\d+)-`).exec(n);
    if (m && !alive(Number(m[1]))) ids.add(m[1]!);
  }
  return [...ids];
}

/**
 * `dpt bench --emulate` runs the real bench inside the coordinator host and tells it the worker
 * hosts through this variable; wherever it then spawns ws worker processes, worker i runs in
 * worker host i and the group listens on the coordinator host's address.
 */
export const WORKER_HOSTS_ENV = 'DPT_EMULATED_WORKER_HOSTS';

/** What the bench inside the coordinator host needs to know of the hosts built around it. */
export interface WorkerHostsPlan {
  spec: EmulateSpec;
  /** whether the latency of spec was applied (the kernel has sch_netem) */
  netem: boolean;
  /** the coordinator host's address, which the ws group listens on */
  coordinator: string;
  /** worker process i of a ws group runs in workers[i] */
  workers: Pick<EmulatedHost, 'netns' | 'cgroup'>[];
}

/**
 * The worker-hosts plan of a built emulation, as the value of WORKER_HOSTS_ENV for the bench run
 * inside the coordinator host by the process `launcherPid`. That bench cannot see the cgroups
 * where they are: `ip netns exec` mounted the namespace's own sysfs over its /sys. It reaches
 * them through the launcher's root (/proc/PID/root), which keeps the machine's mounts and lives
 * as long as the bench.
 */
export function workerHostsValue(plan: EmulationPlan, netem: boolean, launcherPid: number): string {
  const [coordinator, ...workers] = plan.hosts;
  const value: WorkerHostsPlan = {
    spec: plan.spec, netem, coordinator: coordinator!.address,
    workers: workers.map((h) => ({ netns: h.netns, cgroup: h.cgroup === null ? null : `/proc/${launcherPid}/root${h.cgroup}` })),
  };
  return JSON.stringify(value);
}

/** The worker-hosts plan in `env`, or null when this process does not run on emulated hosts. */
export function workerHostsFrom(env: NodeJS.ProcessEnv): WorkerHostsPlan | null {
  const text = env[WORKER_HOSTS_ENV];
  if (text === undefined || text === '') return null;
  let v: Partial<WorkerHostsPlan>;
  try {
    v = JSON.parse(text) as Partial<WorkerHostsPlan>;
  } catch {
    v = {};
  }
  const validHost = (h: unknown): boolean => typeof h === 'object' && h !== null && typeof (h as EmulatedHost).netns === 'string'
    && ((h as EmulatedHost).cgroup === null || typeof (h as EmulatedHost).cgroup === 'string');
  if (typeof v.coordinator !== 'string' || !Array.isArray(v.workers) || !v.workers.every(validHost) || typeof v.spec !== 'object' || v.spec === null) {
    throw new ConfigError(`${WORKER_HOSTS_ENV} is set but is not the plan dpt bench --emulate writes ({"spec":…,"coordinator":"10.231.0.1","workers":[{"netns":…,"cgroup":…}]}): `
      + `unset it, or run dpt bench --emulate`);
  }
  return { spec: v.spec, netem: v.netem === true, coordinator: v.coordinator, workers: v.workers };
}
