/**
 * `dpt evaluate --model FILE`: accuracy of a saved model on the test (or validation) images.
 */
import { ConfigError, type EvalSet, type KernelChoice } from '../src/config.js';
import { loadMnist } from '../src/data/mnist.js';
import { Network } from '../src/model/network.js';
import { loadIntoParams, readModelFile, specFromMetadata } from '../src/model/safetensors.js';
import { describeSpec, type NetworkSpec } from '../src/model/spec.js';
import { createKernels } from '../src/tensor/engines.js';

export interface EvaluateOptions {
  model: string;
  dataDir: string | null;
  set: EvalSet;
  kernels: KernelChoice;
  /** used when the file carries no dpt metadata (e.g. written by PyTorch) */
  spec: NetworkSpec;
  json: boolean;
}

export async function evaluateCommand(o: EvaluateOptions, out: (line: string) => void = (l) => console.log(l)): Promise<{ correct: number; total: number }> {
  const file = readModelFile(o.model);
  const spec = specFromMetadata(file.metadata, o.model) ?? o.spec;
  const { kernels } = await createKernels(o.kernels);
  const network = new Network(spec, kernels);
  const params = network.allocParams();
  loadIntoParams(file.tensors, network.layout, params, o.model);
  const mnist = loadMnist(o.dataDir ?? undefined);
  const set = o.set === 'test' ? mnist.test : mnist.validation;
  if (set.count === 0) throw new ConfigError(`the ${o.set} set is empty in ${mnist.dir}`);
  const t0 = performance.now();
  const correct = network.evaluate(params, network.createWorkspace(1000), set);
  const seconds = (performance.now() - t0) / 1000;
  if (o.json) {
    out(JSON.stringify({ event: 'evaluate', model: o.model, set: o.set, correct, total: set.count, accuracy: correct / set.count, seconds }));
  } else {
    out(`${o.model}: ${describeSpec(spec)}`);
    out(`${o.set}: ${correct} / ${set.count} (${((100 * correct) / set.count).toFixed(2)}%) in ${seconds.toFixed(2)} s`);
  }
  return { correct, total: set.count };
}
