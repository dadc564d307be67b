/**
 * `--what-if latency=500us,bandwidth=1Gbit,workers=8`: the parser. Keys: latency (one-way per
 * message: ns, us/µs, ms, s), bandwidth (bit/s: 100Mbit, 1Gbit, 10Gbps; or bytes: 125MB/s),
 * workers, batch, cores (cores the workers may use, e.g. one machine each), sizes (784-100-10),
 * transport. Anything left out keeps the measured configurations' values.
 */
import { ConfigError } from '../config-error.js';

export interface WhatIf {
  latencyMs: number | null;
  bandwidthBitsPerS: number | null;
  workers: number[] | null;
  batch: number[] | null;
  cores: number | null;
  sizes: number[] | null;
  transport: string | null;
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
  const w: WhatIf = { latencyMs: null, bandwidthBitsPerS: null, workers: null, batch: null, cores: null, sizes: null, transport: null };
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
      case 'sizes': {
        const sizes = value.split(/[-;/ ]+/).map((v) => positiveInt(key, v, bad));
        if (sizes.length < 2 || sizes[0] !== 784 || sizes.at(-1) !== 10) bad(`sizes must run from 784 to 10, like 784-100-10, got '${value}'`);
        w.sizes = sizes;
        break;
      }
      case 'transport':
        w.transport = value;
        break;
      default:
        bad(`unknown key '${key}'; use latency, bandwidth, workers, batch, cores, sizes, transport`);
    }
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
