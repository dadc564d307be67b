/**
 * dpt against what a user would otherwise pick, in one run on one machine, one thread each:
 * PyTorch CPU (Debian's python3-torch) and a vectorised numpy version of Nielsen's network.py
 * (python3-numpy), on the same MNIST files, network, init, cost and plain SGD. Each workload is
 * trained for a few epochs per contestant; the median epoch's training seconds (the step loop,
 * without evaluation) is compared. This script installs nothing: without the Python packages it
 * says how to get them and times dpt alone.
 *
 *   node dist/bench/peers.js [--rounds 3] [--python /usr/bin/python3] [--engines wasm,blas]
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULTS, type KernelChoice, type TrainConfig } from '../src/config.js';
import { defaultMnistDir, loadMnist } from '../src/data/mnist.js';
import { openSession, startGroup, trainingRun } from '../coordinator/session.js';
import { runTraining } from '../coordinator/trainer.js';
import { loadBlas } from '../src/tensor/kernels-blas.js';
import { median } from '../src/profile/stats.js';

function flag(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback;
}

const rounds = Number(flag('--rounds', '3'));
const python = flag('--python', existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3');
const blas = loadBlas();
const engines = flag('--engines', blas instanceof Error ? 'wasm' : 'wasm,blas').split(',') as KernelChoice[];
// bench/peers/*.py sit beside this file in the sources; the compiled script runs from dist/bench
const here = dirname(fileURLToPath(import.meta.url));
const pyDir = [join(here, 'peers'), join(here, '..', '..', 'bench', 'peers')].find((d) => existsSync(join(d, 'torch_epoch.py')))!;

interface Workload {
  name: string;
  spec: TrainConfig['spec'];
  init: TrainConfig['init'];
  batch: number;
  eta: number;
  /** minimum speedup of dpt over each peer that the issue asks for (absent: no target) */
  targets: { pytorch?: number; numpy?: number };
}

const WORKLOADS: Workload[] = [
  { name: '784-30-10 sigmoid/quadratic, batch 10, eta 3.0', spec: DEFAULTS.spec, init: 'gaussian', batch: 10, eta: 3.0, targets: { pytorch: 5, numpy: 2 } },
  { name: '784-30-10 sigmoid/quadratic, batch 128, eta 3.0', spec: DEFAULTS.spec, init: 'gaussian', batch: 128, eta: 3.0, targets: { pytorch: 1.3 } },
  { name: '784-256-256-10 relu/cross-entropy, batch 128, eta 0.1', spec: { sizes: [784, 256, 256, 10], activation: 'relu', cost: 'cross-entropy' }, init: 'scaled', batch: 128, eta: 0.1, targets: { pytorch: 1 } },
  { name: '784-256-256-10 relu/cross-entropy, batch 1024, eta 0.1', spec: { sizes: [784, 256, 256, 10], activation: 'relu', cost: 'cross-entropy' }, init: 'scaled', batch: 1024, eta: 0.1, targets: { pytorch: 1 } },
];

/** Which Python peers can run, or the line that says how to install them. */
function pythonPeers(): { available: ('pytorch' | 'numpy')[]; notes: string[] } {
  const available: ('pytorch' | 'numpy')[] = [];
  const notes: string[] = [];
  const peers = [
    { peer: 'numpy', module: 'numpy', name: 'numpy', apt: 'python3-numpy' },
    { peer: 'pytorch', module: 'torch', name: 'PyTorch', apt: 'python3-torch' },
  ] as const;
  for (const p of peers) {
    const r = spawnSync(python, ['-c', `import ${p.module}; print(${p.module}.__version__)`], { encoding: 'utf8' });
    if (r.status === 0) {
      available.push(p.peer);
      notes.push(`${p.name} ${r.stdout.trim()}`);
    } else {
      notes.push(`${p.name} not found for ${python}: install it with apt-get install ${p.apt} (Debian/Ubuntu), or pass --python PATH`);
    }
  }
  return { available, notes };
}

interface EpochResult { seconds: number; accuracy: number }

async function timeDpt(w: Workload, kernels: KernelChoice, data: ReturnType<typeof loadMnist>, maxSteps: number | null = null): Promise<EpochResult[]> {
  const config: TrainConfig = { ...DEFAULTS, spec: w.spec, init: w.init, batch: w.batch, eta: w.eta, epochs: 1, kernels, maxSteps };
  const session = await openSession(config, data);
  const group = await startGroup(session);
  try {
    const result = await runTraining(trainingRun(session, group));
    return result.epochs.map((e) => ({ seconds: e.trainSeconds, accuracy: e.testCorrect / e.testTotal }));
  } finally {
    await group.close();
  }
}

function timePython(w: Workload, peer: 'pytorch' | 'numpy'): EpochResult[] {
  const script = join(pyDir, peer === 'pytorch' ? 'torch_epoch.py' : 'numpy_epoch.py');
  const args = [script, '--data-dir', defaultMnistDir(), '--sizes', w.spec.sizes.join(','), '--activation', w.spec.activation,
    '--cost', w.spec.cost, '--init', w.init, '--batch', String(w.batch), '--eta', String(w.eta), '--epochs', '1'];
  // one thread everywhere: OpenBLAS (numpy) and PyTorch's intra-op pool
  const env = { ...process.env, OPENBLAS_NUM_THREADS: '1', OMP_NUM_THREADS: '1', MKL_NUM_THREADS: '1' };
  const r = spawnSync(python, args, { encoding: 'utf8', env, cwd: pyDir, maxBuffer: 1 << 24 });
  if (r.status !== 0) throw new Error(`${peer} failed (exit ${r.status}): ${r.stderr.slice(-2000)}`);
  return r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { seconds: number; testCorrect: number; testTotal: number })
    .map((e) => ({ seconds: e.seconds, accuracy: e.testCorrect / e.testTotal }));
}

const peers = pythonPeers();
console.log(`# bench/peers: seconds per epoch (50,000 images, training loop only), one thread each; median of ${rounds} rounds, contestants alternating`);
console.log(`# machine: ${cpus().length} x ${cpus()[0]?.model ?? 'unknown CPU'}, node ${process.version}; python ${python}`);
console.log(`# ${[blas instanceof Error ? `blas: ${blas.message}` : blas.description, ...peers.notes].join('; ')}`);

const data = loadMnist();
const verdicts: string[] = [];
for (const w of WORKLOADS) {
  console.log('');
  console.log(`## ${w.name}`);
  console.log('| contestant | s/epoch (median) | min | max | test acc. after 1 epoch |');
  console.log('|---|---|---|---|---|');
  const times = new Map<string, number>();
  const contestants: { name: string; run: () => Promise<EpochResult[]> | EpochResult[] }[] = [
    ...engines.map((k) => ({ name: `dpt --kernels ${k}`, run: () => timeDpt(w, k, data) })),
    ...peers.available.map((p) => ({ name: p === 'pytorch' ? 'PyTorch (1 thread)' : 'numpy vectorised (1 thread)', run: () => timePython(w, p) })),
  ];
  for (const k of engines) await timeDpt(w, k, data, 300); // burn-in
  const results = new Map<string, EpochResult[]>(contestants.map((c) => [c.name, []]));
  for (let r = 0; r < rounds; r++) {
    for (const c of contestants) results.get(c.name)!.push(...(await c.run()));
  }
  for (const c of contestants) {
    const r = results.get(c.name)!;
    const s = r.map((e) => e.seconds);
    times.set(c.name, median(s));
    console.log(`| ${c.name} | ${median(s).toFixed(3)} | ${Math.min(...s).toFixed(3)} | ${Math.max(...s).toFixed(3)} | ${(100 * r.at(-1)!.accuracy).toFixed(2)}% |`);
  }
  const best = engines.map((k) => [k, times.get(`dpt --kernels ${k}`)!] as const).reduce((a, b) => (b[1] < a[1] ? b : a));
  for (const [peer, label] of [['pytorch', 'PyTorch (1 thread)'], ['numpy', 'numpy vectorised (1 thread)']] as const) {
    const t = times.get(label);
    if (t === undefined) continue;
    const parts = engines.map((k) => `${k} ${(t / times.get(`dpt --kernels ${k}`)!).toFixed(2)}x`);
    const target = w.targets[peer];
    const ratio = t / best[1];
    const verdict = target === undefined ? '' : ` — target >= ${target}x: ${ratio >= target ? 'MET' : 'NOT MET'} (${best[0]})`;
    console.log(`dpt speedup over ${label}: ${parts.join(', ')}${verdict}`);
    if (target !== undefined) verdicts.push(`${w.name} vs ${peer}: ${ratio.toFixed(2)}x with ${best[0]} (target ${target}x) ${ratio >= target ? 'MET' : 'NOT MET'}`);
  }
}
console.log('');
console.log('## targets');
for (const v of verdicts) console.log(`- ${v}`);
