/** The emulated-hosts plan and the exact commands it builds, checked without touching the system. */
import { describe, expect, it } from 'vitest';
import { parseEmulate } from '../../src/config.js';
import {
  cgroupWrites, checkCpuBudget, cpuQuota, deadRunIds, hostCommand, namespacesOf, planHosts, setupCommands, tbfBurstBytes,
  WORKER_HOSTS_ENV, workerHostsFrom, workerHostsValue,
} from '../../coordinator/emulated-hosts.js';
import { missingPrerequisite } from '../../coordinator/emulated-hosts-system.js';
import { LocalWorkers } from '../../coordinator/launch.js';
import { withoutOptions, withoutOwnOptions } from '../../cli/launch-emulated.js';
import { workerHostsFor } from '../../cli/bench-emulated.js';

const V1 = { version: 1 as const, root: '/sys/fs/cgroup/cpu' };
const TBF = (ns: string, dev: string) => ['tc', '-n', ns, 'qdisc', 'add', 'dev', dev, 'root', 'tbf', 'rate', '100000000bit', 'burst', '16384', 'latency', '200ms'];

describe('emulated hosts: plan and commands', () => {
  it('builds a bridge in its own namespace and one namespace per host, each link shaped at both ends', () => {
    const plan = planHosts('42', 1, parseEmulate('cpu=0.5,bandwidth=100Mbit'), V1);
    expect(setupCommands(plan, false)).toEqual([
      ['ip', 'netns', 'add', 'dpt-emu-42-sw'],
      ['ip', '-n', 'dpt-emu-42-sw', 'link', 'add', 'br0', 'type', 'bridge'],
      ['ip', '-n', 'dpt-emu-42-sw', 'link', 'set', 'br0', 'up'],
      ...[['c', '10.231.0.1'], ['w1', '10.231.0.2']].flatMap(([role, address]) => [
        ['ip', 'netns', 'add', `dpt-emu-42-${role}`],
        ['ip', '-n', `dpt-emu-42-${role}`, 'link', 'set', 'lo', 'up'],
        ['ip', '-n', 'dpt-emu-42-sw', 'link', 'add', `v-${role}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', `dpt-emu-42-${role}`],
        ['ip', '-n', 'dpt-emu-42-sw', 'link', 'set', `v-${role}`, 'master', 'br0', 'up'],
        ['ip', '-n', `dpt-emu-42-${role}`, 'addr', 'add', `${address}/24`, 'dev', 'eth0'],
        ['ip', '-n', `dpt-emu-42-${role}`, 'link', 'set', 'eth0', 'up'],
        TBF(`dpt-emu-42-${role}`, 'eth0'),
        TBF('dpt-emu-42-sw', `v-${role}`),
      ]),
    ]);
    expect(namespacesOf(plan)).toEqual(['dpt-emu-42-c', 'dpt-emu-42-w1', 'dpt-emu-42-sw']);
  });

  it('puts netem under tbf on the host end only, where the kernel has it', () => {
    const plan = planHosts('7', 1, parseEmulate('bandwidth=1Gbit,latency=2ms'), null);
    const tc = setupCommands(plan, true).filter((c) => c[0] === 'tc' && c[2] === 'dpt-emu-7-c');
    expect(tc).toEqual([
      ['tc', '-n', 'dpt-emu-7-c', 'qdisc', 'add', 'dev', 'eth0', 'root', 'handle', '1:', 'netem', 'delay', '2000us'],
      ['tc', '-n', 'dpt-emu-7-c', 'qdisc', 'add', 'dev', 'eth0', 'parent', '1:1', 'handle', '10:', 'tbf', 'rate', '1000000000bit', 'burst', '125000', 'latency', '200ms'],
    ]);
    expect(setupCommands(plan, false).flat()).not.toContain('netem');
  });

  it('caps each host with a 5 ms period (v1: period before quota; v2: cpu.max), and runs it in its cgroup before its namespace', () => {
    const plan = planHosts('9', 1, parseEmulate('cpu=0.6'), V1);
    expect(cgroupWrites(plan)).toEqual([
      { dir: '/sys/fs/cgroup/cpu/dpt-emu-9-c', file: 'cpu.cfs_period_us', value: '5000' },
      { dir: '/sys/fs/cgroup/cpu/dpt-emu-9-c', file: 'cpu.cfs_quota_us', value: '3000' },
      { dir: '/sys/fs/cgroup/cpu/dpt-emu-9-w1', file: 'cpu.cfs_period_us', value: '5000' },
      { dir: '/sys/fs/cgroup/cpu/dpt-emu-9-w1', file: 'cpu.cfs_quota_us', value: '3000' },
    ]);
    const v2 = planHosts('9', 1, parseEmulate('cpu=1.5'), { version: 2, root: '/sys/fs/cgroup' });
    expect(cgroupWrites(v2)[0]).toEqual({ dir: '/sys/fs/cgroup/dpt-emu-9-c', file: 'cpu.max', value: '7500 5000' });
    expect(hostCommand(plan.hosts[1]!, ['node', 'dpt.js', 'worker'])).toEqual(
      ['sh', '-c', 'echo $$ > "$0" && exec "$@"', '/sys/fs/cgroup/cpu/dpt-emu-9-w1/cgroup.procs', 'ip', 'netns', 'exec', 'dpt-emu-9-w1', 'node', 'dpt.js', 'worker']);
    expect(hostCommand(planHosts('9', 1, parseEmulate('bandwidth=1Gbit'), V1).hosts[0]!, ['x'])).toEqual(['ip', 'netns', 'exec', 'dpt-emu-9-c', 'x']);
    expect(cpuQuota(0.1)).toEqual({ quotaUs: 1000, periodUs: 10000 }); // the kernel's 1 ms minimum quota
  });

  it('sizes the tbf bucket at ~1 ms of line rate, at least 16 KiB', () => {
    expect(tbfBurstBytes(100e6)).toBe(16384);
    expect(tbfBurstBytes(1e9)).toBe(125000);
  });

  it('refuses cpu caps that add up to more than the cores, counting the coordinator\'s host, naming the numbers and the fix', () => {
    expect(() => checkCpuBudget(1, { workers: 2, coordinatorComputes: true }, 2))
      .toThrow(/cpu=1 for 3 hosts \(the coordinator, computing rank 0, and 2 workers\) is 3 cores, but this machine has 2: use cpu=0\.66 or fewer --workers/);
    expect(() => checkCpuBudget(1, { workers: 2, coordinatorComputes: false }, 2)).toThrow(/cpu=1 for 3 hosts \(the coordinator and 2 workers\)/);
    expect(() => checkCpuBudget(0.6, { workers: 2, coordinatorComputes: true }, 2)).not.toThrow();
    // --workers 2 with the coordinator computing: two hosts, one core each
    expect(() => checkCpuBudget(1, { workers: 1, coordinatorComputes: true }, 2)).not.toThrow();
  });

  it('finds the runs whose launcher is dead from names with the prefix', () => {
    const names = ['dpt-emu-100-c', 'dpt-emu-100-sw', 'dpt-emu-200-w1', 'other-300-c', 'dpt-emu-x-c'];
    expect(deadRunIds(names, (pid) => pid === 200)).toEqual(['100']);
  });

  it('parses --emulate and names the key in its errors', () => {
    expect(parseEmulate('cpu=0.5,bandwidth=100Mbit')).toEqual({ cpu: 0.5, bandwidthBitsPerS: 100e6, latencyMs: null });
    expect(() => parseEmulate('cpu=fast')).toThrow(/--emulate 'cpu=fast': cpu must be/);
    expect(() => parseEmulate('bandwidth=100')).toThrow(/bandwidth must be a positive rate/);
    expect(() => parseEmulate('disk=1')).toThrow(/unknown key 'disk'; use cpu, bandwidth, latency/);
  });

  it('passes the launch arguments on without the launcher\'s own options', () => {
    expect(withoutOwnOptions(['--workers', '2', '--emulate', 'cpu=1', '--listen=0.0.0.0:1', '--token', 's', '--epochs', '1'])).toEqual(['--workers', '2', '--epochs', '1']);
  });

  it('says a user other than root needs root, naming the command run with --emulate', () => {
    const spec = parseEmulate('cpu=0.5,bandwidth=100Mbit');
    expect(missingPrerequisite(spec, 'bench', 1000)).toBe('--emulate needs root (network namespaces, tc and cgroups): run dpt bench --emulate as root, e.g. with sudo');
    expect(missingPrerequisite(spec, 'launch', 1000)).toMatch(/run dpt launch --emulate as root/);
  });
});

describe('dpt bench --emulate: the worker hosts handed to the bench inside the coordinator host', () => {
  it('builds a worker host per worker of the largest ws configuration, none without ws', () => {
    // the coordinator computes rank 0 of ws x2 and more: ws x4 is three worker hosts
    expect(workerHostsFor(['inproc', 'ws'], [1, 2, 4], false)).toBe(3);
    expect(workerHostsFor(['ws', 'threads'], [3, 1], false)).toBe(2);
    expect(workerHostsFor(['ws'], [1], false)).toBe(1);
    expect(workerHostsFor(['inproc', 'ws'], [1, 2, 4], true)).toBe(4);
    expect(workerHostsFor(['inproc', 'threads'], [1, 2, 4], false)).toBe(0);
  });

  it('passes the bench\'s own arguments on without --emulate, in either form', () => {
    expect(withoutOptions(['--transport', 'ws', '--emulate', 'cpu=0.5', '--workers', '1,2', '--emulate=bandwidth=1Gbit', '--json'], ['--emulate']))
      .toEqual(['--transport', 'ws', '--workers', '1,2', '--json']);
  });

  it('hands over the coordinator\'s address and each worker host, its cgroup reached through the launcher\'s root', () => {
    const plan = planHosts('42', 2, parseEmulate('cpu=0.5,bandwidth=100Mbit,latency=1ms'), V1);
    const hosts = workerHostsFrom({ [WORKER_HOSTS_ENV]: workerHostsValue(plan, false, 42) });
    expect(hosts).toEqual({
      spec: { cpu: 0.5, bandwidthBitsPerS: 100e6, latencyMs: 1 }, netem: false, coordinator: '10.231.0.1',
      workers: [
        { netns: 'dpt-emu-42-w1', cgroup: '/proc/42/root/sys/fs/cgroup/cpu/dpt-emu-42-w1' },
        { netns: 'dpt-emu-42-w2', cgroup: '/proc/42/root/sys/fs/cgroup/cpu/dpt-emu-42-w2' },
      ],
    });
    expect(hostCommand(hosts!.workers[1]!, ['node', 'dpt.js', 'worker'])).toEqual(
      ['sh', '-c', 'echo $$ > "$0" && exec "$@"', '/proc/42/root/sys/fs/cgroup/cpu/dpt-emu-42-w2/cgroup.procs', 'ip', 'netns', 'exec', 'dpt-emu-42-w2', 'node', 'dpt.js', 'worker']);
    const uncapped = workerHostsFrom({ [WORKER_HOSTS_ENV]: workerHostsValue(planHosts('42', 1, parseEmulate('bandwidth=1Gbit'), null), true, 42) });
    expect(uncapped!.workers).toEqual([{ netns: 'dpt-emu-42-w1', cgroup: null }]);
    expect(workerHostsFrom({})).toBeNull();
  });

  it('refuses a malformed plan, naming the variable and the fix', () => {
    expect(() => workerHostsFrom({ [WORKER_HOSTS_ENV]: 'not json' })).toThrow(new RegExp(`${WORKER_HOSTS_ENV} is set but is not the plan dpt bench --emulate writes.*unset it`));
    expect(() => workerHostsFrom({ [WORKER_HOSTS_ENV]: '{"coordinator":"10.231.0.1","workers":[{"cgroup":null}],"spec":{}}' })).toThrow(/is not the plan/);
  });

  it('refuses to start more worker processes than there are worker hosts, before starting any', () => {
    const hosts = [{ netns: 'dpt-emu-1-w1', cgroup: null }];
    expect(() => new LocalWorkers(2, 'ws://10.231.0.1:1', 'token', { dataDir: null, hosts, log: () => {}, onEarlyExit: () => {} }))
      .toThrow(/2 worker processes asked for, but the emulated hosts were built for 1/);
  });
});
