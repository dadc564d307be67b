/**
 * How `dpt bench --emulate`'s hosts are named in its output (text, verdict, HTML report): what
 * each host had and which configurations ran where. The baseline ran on an emulated host too,
 * so every speedup compares emulated hosts with one emulated host alone.
 */
import type { EmulatedHosts } from './bench-facts.js';
import { fmtMs, fmtRate } from './format.js';

/** Transports whose workers each ran on an emulated host of their own: processes, which the bench starts in worker hosts. */
export const HOST_PER_WORKER_TRANSPORTS: readonly string[] = ['ws'];

/** "0.5 cores each, links of 100 Mbit/s both ways, 1.00 ms one-way latency" */
export function emulatedSpec(e: EmulatedHosts): string {
  const parts = [
    e.cpu !== null ? `${e.cpu} cores each` : 'no cpu cap',
    e.bandwidthBitsPerS !== null ? `links of ${fmtRate(e.bandwidthBitsPerS)} both ways` : 'links not shaped',
  ];
  if (e.latencyMs !== null) parts.push(e.netem ? `${fmtMs(e.latencyMs)} one-way latency` : `no latency added (asked ${fmtMs(e.latencyMs)}: this kernel has no sch_netem)`);
  return parts.join(', ');
}

/** The line under the bench's header that says where every configuration ran. */
export function emulatedHostsLine(e: EmulatedHosts): string {
  return `On emulated hosts (dpt bench --emulate: ${emulatedSpec(e)}): the bench and every inproc and threads configuration, ` +
    `the single-node baseline among them, on the coordinator host; each ws worker process on a worker host of its own ` +
    `(${e.workerHosts} built); the hosts are network namespaces on a bridge, each in a cpu cgroup. Speedups compare with one such host alone.`;
}
