/**
 * Runs the emulated-hosts plan on this machine: checks what it needs (root, ip, tc, a cpu
 * cgroup controller), builds the namespaces, links and cgroups, and removes them again — its own
 * at the end of a run, and those a killed run left behind. Everything here is synchronous so it
 * can also run from a process 'exit' handler.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { ConfigError, type EmulateSpec } from '../src/config.js';
import {
  cgroupWrites, deadRunIds, EMULATE_PREFIX, setupCommands, type CpuCgroupRoot, type EmulationPlan,
} from './emulated-hosts.js';

/** Where the cpu controller is mounted: v2 with cpu enabled first, then v1's cpu hierarchy. */
export function findCpuCgroup(): CpuCgroupRoot | null {
  for (const root of ['/sys/fs/cgroup', '/sys/fs/cgroup/unified']) {
    const controllers = `${root}/cgroup.controllers`;
    if (existsSync(controllers) && readFileSync(controllers, 'utf8').split(/\s+/).includes('cpu')) return { version: 2, root };
  }
  for (const root of ['/sys/fs/cgroup/cpu', '/sys/fs/cgroup/cpu,cpuacct']) {
    if (existsSync(`${root}/cpu.cfs_quota_us`)) return { version: 1, root };
  }
  return null;
}

function found(tool: string): boolean {
  return !spawnSync(tool, ['-V'], { stdio: 'ignore' }).error;
}

/**
 * One line saying what this machine lacks for `spec` and how to get it, or null when nothing is
 * missing. `command` is the dpt command being run with --emulate; `uid` this process's user.
 */
export function missingPrerequisite(spec: EmulateSpec, command: 'launch' | 'train' | 'bench' = 'launch', uid = process.getuid?.()): string | null {
  if (uid !== 0) return `--emulate needs root (network namespaces, tc and cgroups): run dpt ${command} --emulate as root, e.g. with sudo`;
  for (const tool of ['ip', 'tc']) {
    if (!found(tool)) return `--emulate needs the '${tool}' command: install iproute2 (e.g. apt-get install iproute2)`;
  }
  if (spec.cpu !== null && findCpuCgroup() === null) {
    return '--emulate cpu=… needs the cgroup cpu controller (cgroup v2 with cpu in cgroup.controllers, or v1 mounted at /sys/fs/cgroup/cpu): enable it, or leave cpu= out';
  }
  return null;
}

function run(argv: string[]): { ok: boolean; out: string; err: string } {
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8' });
  return { ok: r.status === 0, out: r.stdout ?? '', err: (r.stderr ?? '').trim() || (r.error?.message ?? '') };
}

/** Whether this kernel has sch_netem, tried on the loopback of a throwaway namespace. */
export function netemAvailable(runId: string): boolean {
  const probe = `${EMULATE_PREFIX}${runId}-probe`;
  if (!run(['ip', 'netns', 'add', probe]).ok) return false;
  try {
    return run(['tc', '-n', probe, 'qdisc', 'add', 'dev', 'lo', 'root', 'netem', 'delay', '1ms']).ok;
  } finally {
    run(['ip', 'netns', 'del', probe]);
  }
}

/** Builds the plan's network and cgroups; on a failure throws naming the command (the caller removes what was built). */
export function buildHosts(plan: EmulationPlan, netem: boolean): void {
  for (const cmd of setupCommands(plan, netem)) {
    const r = run(cmd);
    if (!r.ok) throw new ConfigError(`--emulate: '${cmd.join(' ')}' failed: ${r.err}`);
  }
  for (const w of cgroupWrites(plan)) {
    mkdirSync(w.dir, { recursive: true });
    try {
      writeFileSync(`${w.dir}/${w.file}`, w.value);
    } catch (e) {
      throw new ConfigError(`--emulate: could not write ${w.value} to ${w.dir}/${w.file}: ${(e as Error).message}`);
    }
  }
}

/** The namespaces on this machine whose names start with `prefix`. */
export function namespacesWith(prefix: string): string[] {
  return run(['ip', 'netns', 'list']).out.split('\n').map((l) => l.split(' ')[0]!).filter((n) => n.startsWith(prefix));
}

/** The cgroup folders directly under the cpu controller whose names start with `prefix`. */
export function cgroupsWith(prefix: string, root: CpuCgroupRoot | null = findCpuCgroup()): string[] {
  if (root === null || !existsSync(root.root)) return [];
  return readdirSync(root.root).filter((n) => n.startsWith(prefix)).map((n) => `${root.root}/${n}`);
}

function killAll(pids: string): void {
  for (const pid of pids.split(/\s+/).filter(Boolean)) {
    try {
      process.kill(Number(pid), 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

const pause = (ms: number): void => {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
};

/**
 * Removes every namespace and cgroup of run `runId`, ending any process still inside them.
 * Returns what could not be removed (empty when all is gone).
 */
export function removeRun(runId: string): string[] {
  const prefix = `${EMULATE_PREFIX}${runId}-`;
  const left: string[] = [];
  for (const ns of namespacesWith(prefix)) {
    killAll(run(['ip', 'netns', 'pids', ns]).out);
    const r = run(['ip', 'netns', 'del', ns]);
    if (!r.ok) left.push(`namespace ${ns} (${r.err})`);
  }
  for (const dir of cgroupsWith(prefix)) {
    // a killed process leaves its cgroup a moment after the signal
    for (let attempt = 0; ; attempt++) {
      try {
        killAll(readFileSync(`${dir}/cgroup.procs`, 'utf8'));
        rmdirSync(dir);
        break;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') break;
        if (attempt >= 100) {
          left.push(`cgroup ${dir} (${(e as Error).message})`);
          break;
        }
        pause(20);
      }
    }
  }
  return left;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Removes what runs whose launcher died (kill -9) left behind; returns their run ids. */
export function removeDeadRuns(): string[] {
  const ids = deadRunIds([...namespacesWith(EMULATE_PREFIX), ...cgroupsWith(EMULATE_PREFIX).map((d) => d.split('/').at(-1)!)], alive);
  for (const id of ids) removeRun(id);
  return ids;
}
