/**
 * The piscina task of bench/threads-exchange: a worker that computes nothing, so a round trip
 * is pure exchange. It copies the parameters into its own buffer and returns a gradient-sized
 * buffer, in one of the ways the thread group could: shared slots, transfer, structured clone,
 * or a resident task signalled through Atomics. Compiled to dist/bench/threads-exchange-task.js.
 */
import { move, workerData } from 'piscina';

export interface ExchangeSetup {
  params: Float32Array;
  /** [world, n] */
  grads: Float32Array;
  /** [GEN, DONE, STOP] for the resident variant */
  control: Int32Array;
  n: number;
}

export type ExchangeTask =
  | { kind: 'shared'; rank: number }
  | { kind: 'transfer'; rank: number; params: Float32Array }
  | { kind: 'clone'; rank: number; params: Float32Array }
  | { kind: 'resident'; rank: number };

export const GEN = 0;
export const DONE = 1;
export const STOP = 2;

// (the coordinator imports the constants above too, where workerData is undefined)
const setup = workerData as ExchangeSetup;
const local = new Float32Array(setup?.n ?? 0);

export default function exchange(task: ExchangeTask): unknown {
  switch (task.kind) {
    case 'shared':
      local.set(setup.params);
      setup.grads.subarray(task.rank * setup.n, (task.rank + 1) * setup.n).set(local);
      return task.rank;
    case 'transfer': {
      local.set(task.params);
      const out = new Float32Array(local);
      return move(out);
    }
    case 'clone':
      local.set(task.params);
      return local;
    case 'resident':
      return resident(task.rank);
  }
}

/** Stays inside one piscina task, woken per round by the coordinator bumping GEN. */
function resident(rank: number): number {
  const c = setup.control;
  let gen = Atomics.load(c, GEN);
  // tell the coordinator which generation we wait on, or its first bump could come before our wait
  Atomics.add(c, DONE, 1);
  Atomics.notify(c, DONE);
  let rounds = 0;
  for (;;) {
    Atomics.wait(c, GEN, gen);
    gen = Atomics.load(c, GEN);
    if (Atomics.load(c, STOP) !== 0) return rounds;
    local.set(setup.params);
    setup.grads.subarray(rank * setup.n, (rank + 1) * setup.n).set(local);
    rounds++;
    Atomics.add(c, DONE, 1);
    Atomics.notify(c, DONE);
  }
}
