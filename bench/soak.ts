/**
 * Soak: trains Nielsen's 784-30-10 on the 50,000 MNIST training images with 3 WebSocket worker
 * processes while one of them is killed (SIGKILL) every few seconds, round-robin, and restarted
 * half a second later (it joins the vacant rank between steps). Reports steps completed, failures
 * survived, shards re-assigned, and examples lost — which must be 0: every finished epoch must
 * count exactly its 50,000 examples, and the interrupted last epoch exactly its steps' examples.
 * Then replays the same number of steps in-process with the same 3-shard partition and checks
 * the parameters are bit-identical (a loss must not change the arithmetic).
 *
 *   node dist/bench/soak.js [--seconds 300] [--kill-every 3] [--no-replay]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { cpus } from 'node:os';
import { cliPath } from '../coordinator/launch.js';
import { InProcessGroup } from '../coordinator/inproc-group.js';
import { openSession, trainingRun } from '../coordinator/session.js';
import { runTraining, type TrainingPosition } from '../coordinator/trainer.js';
import { WsGroup } from '../coordinator/ws-group.js';
import { maxAbsDiff } from '../coordinator/equivalence.js';
import { DEFAULTS, parsePositiveInt, type TrainConfig } from '../src/config.js';
import { generateToken } from '../src/protocol/auth.js';

const args = process.argv.slice(2);
const flag = (name: string, d: number) => (args.includes(name) ? parsePositiveInt(name, args[args.indexOf(name) + 1] ?? '') : d);
const seconds = flag('--seconds', 300);
const killEvery = flag('--kill-every', 3);
const replay = !args.includes('--no-replay');
const WORLD = 3;

const config: TrainConfig = { ...DEFAULTS, transport: 'ws', workers: WORLD, epochs: 1_000_000 };
const session = await openSession(config);
const token = generateToken();
const events: string[] = [];
const group = await WsGroup.listen({
  spec: config.spec, train: session.train, world: WORLD, maxBatch: config.batch, kernels: config.kernels, data: 'local', token,
  log: (l) => events.push(l),
});

// the worker processes, one slot per rank; a slot's process is killed and replaced
const cli = cliPath();
const slots: (ChildProcess | null)[] = new Array(WORLD).fill(null);
let stopping = false;
let restarts = 0;
function startWorker(slot: number): void {
  const child = spawn(process.execPath, [cli, 'worker', '--connect', group.url], { env: { ...process.env, DPT_TOKEN: token }, stdio: 'ignore' });
  slots[slot] = child;
  // a restarted worker that found no free rank yet (the coordinator had not seen the loss) exits: start it again
  child.on('exit', (_code, signal) => {
    if (!stopping && signal !== 'SIGKILL' && slots[slot] === child) setTimeout(() => startWorker(slot), 200);
  });
}
for (let i = 0; i < WORLD; i++) startWorker(i);
await group.waitForWorkers(60_000);

let kills = 0;
const killer = setInterval(() => {
  const slot = kills % WORLD;
  const child = slots[slot];
  if (child === null || child.exitCode !== null) return;
  child.kill('SIGKILL');
  kills++;
  setTimeout(() => {
    if (stopping) return;
    restarts++;
    startWorker(slot);
  }, 500);
}, killEvery * 1000);

const t0 = performance.now();
const run = trainingRun(session, group);
run.stopRequested = () => performance.now() - t0 > seconds * 1000;
let last: TrainingPosition | null = null;
run.events = { afterStep(p) { last = p; } };
const result = await runTraining(run);
const trainSeconds = (performance.now() - t0) / 1000;
clearInterval(killer);
stopping = true;
await group.close();
for (const c of slots) if (c && c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');

// exactly-once accounting: what each epoch (and the unfinished one) should have counted
const epochSize = session.train.count;
let lost = 0;
for (const e of result.epochs) lost += Math.abs(epochSize - e.examples);
const partial = result.interrupted ?? (last as TrainingPosition | null);
if (result.interrupted) lost += Math.abs(Math.min(epochSize, result.interrupted.stepInEpoch * config.batch) - result.interrupted.epochExamples);

console.log(`Soak: 784-30-10, batch ${config.batch}, ws x ${WORLD} (data local), ${cpus().length} cores, ${seconds} s, one worker SIGKILLed every ${killEvery} s (round-robin) and restarted 0.5 s later`);
console.log(`  steps completed      ${result.steps} (${(result.steps / trainSeconds).toFixed(0)} steps/s)`);
console.log(`  epochs completed     ${result.epochs.length}, examples per epoch: ${[...new Set(result.epochs.map((e) => e.examples))].join(', ') || '-'} (epoch size ${epochSize})`);
if (partial) console.log(`  unfinished epoch     ${partial.epoch}: ${partial.epochExamples} examples in ${partial.stepInEpoch} steps`);
console.log(`  workers killed       ${kills}, restarted ${restarts}`);
console.log(`  failures survived    ${group.lostWorkers} worker losses seen by the coordinator, ${group.reassignedShards} shards re-assigned to survivors`);
console.log(`  test accuracy        ${result.epochs.at(-1) ? `${result.epochs.at(-1)!.testCorrect} / ${result.epochs.at(-1)!.testTotal} after epoch ${result.epochs.at(-1)!.epoch}` : '-'}`);
console.log(`  examples lost        ${lost}`);

if (replay) {
  // the same steps with no failure: 3 shards in-process, summed in shard order
  const again = await openSession({ ...config, transport: 'inproc' });
  const inproc = new InProcessGroup(config.spec, again.kernels, again.train, WORLD, config.batch);
  const r2 = trainingRun(again, inproc);
  r2.maxSteps = result.steps;
  const t1 = performance.now();
  await runTraining(r2);
  const d = maxAbsDiff(session.params, again.params);
  console.log(`  replay without kills ${result.steps} steps in-process x ${WORLD} (${((performance.now() - t1) / 1000).toFixed(0)} s): max |Δparam| = ${d}${d === 0 ? ' (bit-identical)' : ''}`);
  if (d !== 0) process.exitCode = 1;
}
if (lost !== 0) process.exitCode = 1;
const tail = events.filter((l) => /left|re-assigned|did not answer/.test(l)).slice(0, process.env.SOAK_EVENTS ? 1e9 : 3);
console.log(`  first events:\n${tail.map((l) => `    ${l}`).join('\n')}`);
