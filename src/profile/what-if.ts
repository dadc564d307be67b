/**
 * `--what-if latency=500us,bandwidth=1Gbit,workers=8`: the parser. Keys: latency (one-way per
 * message: ns, us/µs, ms, s), bandwidth (bit/s: 100Mbit, 1Gbit, 10Gbps; or bytes: 125MB/s),
 * workers, batch, cores (cores the workers may use, e.g. one machine each), cpu (each host's share
 * of one of this machine's cores, as `--emulate cpu=C` caps them: 0.5 runs every CPU part of a step
 * at half speed, the network's time unchanged), sizes (784-100-10), transport, average-every
 * (local SGD: one exchange per K steps) and wire (fp32, fp16, bf16: the format of parameters and
 * gradients on a wire). Anything left out keeps the measured configurations' values: averaging
 * every step, fp32, hosts as fast as this machine.
 */
import { ConfigError } from '../config-error.js';

/**
 * The formats of --wire (src/config.ts WireFormat; spelled out here because config.ts imports this
 * parser, and importing it back would close a circle), with the bytes one element takes.
 */
export const WIRE_ELEMENT_BYTES = { fp32: 4, fp16: 2, bf16: 2 } as const;
export type WireName = keyof typeof WIRE_ELEMENT_BYTES;

/** Transports whose workers receive parameters and send gradients over a wire (the others read shared memory). */
export const WIRE_TRANSPORTS: readonly string[] = ['ws'];

export interface WhatIf {
  latencyMs: number | null;
  bandwidthBitsPerS: number | null;
  workers: number[] | null;
  batch: number[] | null;
  cores: number | null;
  /** each host's CPU as a fraction of one of this machine's cores (null: 1, as measured) */
  cpu: number | null;
  sizes: number[] | null;
  transport: string | null;
  /** local SGD: steps per exchange, K ≥ 1 (null: 1, as measured) */
  averageEvery: number | null;
  /** format of parameters and gradients on the wire (null: fp32, as measured) */
  wire: WireName | null;
}

const LATENCY_UNITS: Record<string, number> = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, ms: 1, s: 1000 };
const PREFIX: Record<string, number> = { '': 1, k: 1e3, K: 1e3, m: 1e6, M: 1e6, g: 1e9, G: 1e9, t: 1e12, T: 1e12 };

export const LATENCY_HINT = (value: string): string => `latency needs a unit: ns, us, ms or s, got '${value}'`;
export const BANDWIDTH_HINT = (value: string): string => `bandwidth must be a positive rate like 100Mbit, 1Gbit, 10Gbps or 125MB/s, got '${value}'`;

/** A one-way latency like 500us or 2ms, in milliseconds; null when it is not one. */
export function parseLatencyMs(value: string): number | null {
  const m = /^(\d+(?:\.\d+)?)\s*(ns|us|µs|ms|s)$/.exec(value);
  return m ? Number(m[1]) * LATENCY_UNITS[m[2]!]! : null;
}

/** A positive rate like 100Mbit, 1Gbit, 10Gbps or 125MB/s, in bits per second; null when it is not one. */
export function parseBitsPerS(value: string): number | null {
  const m = /^(\d+(?:\.\d+)?)\s*([kKmMgGtT]?)(bit|bit\/s|bps|B\/s|B)$/.exec(value);
  if (!m || Number(m[1]) <= 0) return null;
  return Number(m[1]) * PREFIX[m[2]!]! * (m[3]!.startsWith('B') ? 8 : 1);
}

export function parseWhatIf(text: string): WhatIf {
  const w: WhatIf = { latencyMs: null, bandwidthBitsPerS: null, workers: null, batch: null, cores: null, cpu: null, sizes: null, transport: null, averageEvery: null, wire: null };
  const bad = (why: string): never => {
    throw new ConfigError(`--what-if '${text}': ${why} (e.g. --what-if latency=500us,bandwidth=1Gbit,workers=8)`);
  };
  for (const part of text.split(',').map((p) => p.trim()).filter((p) => p !== '')) {
    const eq = part.indexOf('=');
    if (eq < 0) bad(`'${part}' is not key=value`);
    const key = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    switch (key) {
      case 'latency':
        w.latencyMs = parseLatencyMs(value) ?? bad(LATENCY_HINT(value));
        break;
      case 'bandwidth':
        w.bandwidthBitsPerS = parseBitsPerS(value) ?? bad(BANDWIDTH_HINT(value));
        break;
      case 'workers':
      case 'batch':
        w[key] = value.split(/[;/ ]+/).map((v) => positiveInt(key, v, bad));
        break;
      case 'cores':
        w.cores = positiveInt(key, value, bad);
        break;
      case 'cpu': {
        const cpu = /^\d*\.?\d+$/.test(value) ? Number(value) : NaN;
        if (!(cpu > 0 && cpu <= 1)) bad(`cpu must be a host's share of one core, above 0 and at most 1 (0.5: half a core, as --emulate cpu=0.5), got '${value}'`);
        w.cpu = cpu;
        break;
      }
      case 'sizes': {
        const sizes = value.split(/[-;/ ]+/).map((v) => positiveInt(key, v, bad));
        if (sizes.length < 2 || sizes[0] !== 784 || sizes.at(-1) !== 10) bad(`sizes must run from 784 to 10, like 784-100-10, got '${value}'`);
        w.sizes = sizes;
        break;
      }
      case 'transport':
        w.transport = value;
        break;
      case 'average-every':
        if (!/^\d+$/.test(value) || Number(value) < 1) bad(`average-every must be a whole number of steps per exchange, at least 1 (1: every step, as measured; 16: local SGD with one exchange per 16 steps), got '${value}'`);
        w.averageEvery = Number(value);
        break;
      case 'wire':
        if (!Object.hasOwn(WIRE_ELEMENT_BYTES, value)) bad(`wire must be fp32, fp16 or bf16, got '${value}'`);
        w.wire = value as WireName;
        break;
      default:
        bad(`unknown key '${key}'; use latency, bandwidth, workers, batch, cores, cpu, sizes, transport, average-every, wire`);
    }
  }
  const network = w.bandwidthBitsPerS !== null;
  if (w.wire !== null && w.transport !== null && !network && !WIRE_TRANSPORTS.includes(w.transport)) {
    bad(`wire=${w.wire} sets the format on the WebSocket, and transport=${w.transport} sends nothing over a wire (its workers read the parameters in place): drop wire=, use transport=ws, or add bandwidth= to ask about a network`);
  }
  if ((w.latencyMs === null) !== (w.bandwidthBitsPerS === null)) {
    if (w.latencyMs === null) w.latencyMs = 0;
    else bad('a network needs a bandwidth too, e.g. bandwidth=1Gbit');
  }
  return w;
}

function positiveInt(key: string, v: string, bad: (why: string) => never): number {
  if (!/^\d+$/.test(v) || Number(v) < 1) bad(`${key} must be a positive integer, got '${v}'`);
  return Number(v);
}

/**
 * A wire key needs a transport with a wire: ws, or any over a what-if network. Checked before the
 * bench runs, against the transports it will measure, so a what-if it cannot answer fails at once.
 */
export function checkWhatIfWire(w: WhatIf, measured: readonly string[]): void {
  if (w.wire === null || w.bandwidthBitsPerS !== null || w.transport !== null) return;
  if (!measured.some((t) => WIRE_TRANSPORTS.includes(t))) {
    throw new ConfigError(`--what-if wire=${w.wire}: none of the measured transports (${measured.join(', ')}) sends over a wire (their workers read the parameters in place): add --transport ws, or add bandwidth= to the what-if to ask about a network`);
  }
}
