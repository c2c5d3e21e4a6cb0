// One personalisation run, page side: check the data, find or start its checkpoint, run the step
// graph in the training worker chunk by chunk, pausing while the device's conditions say no, and
// checkpoint after every chunk. Adopting the result (the personalised edge file) is the handler's.
//
// A run always starts from the shared model's parameters (read from the verified edge file, or the
// cloud file when the lowering rewrote a trained tensor, at
// the byte ranges model.json records) with the optimizer state at its init, so its result depends
// only on (version, examples, options): the fingerprint that keys its checkpoint.

import { CODES, EdgecloudError } from './errors.js';
import { parameterFile, readParameters } from './parameters.js';
import { chooseEdgeRuntime, rankedRuntimes } from './policy.js';
import { seedState, shuffledOrder } from './prng.js';
import { trainingBlocker, DEFAULT_CONDITIONS } from './train-conditions.js';
import { trainingExamples, trainingOptions, trainingSpec } from './train-data.js';
import { TrainRunner } from './trainer.js';
import { dataFingerprint } from './training-store.js';

export const DEFAULT_CHUNK_STEPS = 4;

/**
 * {runtime, backends, file} for the step graph: the first runtime of its `ranking` (written by
 * `edgecloud verify` as for the inference file: the pairs that passed, fastest first; onnxruntime-web
 * trains the demo forecaster 2–6× faster than ONNX.js wasm and holds the page's timers up less),
 * with that runtime's other ranked backends after it; before any verification, its edge entry
 * judged like the inference file's.
 */
export function chooseTrainRuntime(manifest, policy) {
  const training = trainingSpec(manifest);
  const edge = training.edge ?? { file: training.file, runtime: 'onnxruntime-web' };
  const ranked = (rankedRuntimes(edge, policy) ?? []).filter((row) => row.file === edge.file);
  if (ranked.length === 0) return { ...chooseEdgeRuntime({ ...manifest, edge }, policy), file: edge.file };
  const { runtime } = ranked[0];
  return { runtime, backends: ranked.filter((row) => row.runtime === runtime).map((row) => row.backend), file: edge.file };
}

function abortError(signal) {
  const why = signal?.reason instanceof Error ? signal.reason.message : 'the signal was aborted';
  return new EdgecloudError(CODES.TRAINING_ABORTED, `personalisation stopped (${why}); its checkpoint is kept`);
}

function sleep(ms, signals) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    for (const signal of signals) signal?.addEventListener('abort', () => { clearTimeout(timer); resolve(); }, { once: true });
  });
}

export class Personalizer {
  /** store: ModelStore; trainingStore: TrainingStore; assets: resolveAssets()'s; options: {environment, conditions, chunkSteps}. */
  constructor({ store, trainingStore, policy, assets, environment, conditions = {}, chunkSteps = DEFAULT_CHUNK_STEPS }) {
    Object.assign(this, { store, trainingStore, policy, assets, environment });
    this.conditions = { ...DEFAULT_CONDITIONS, ...conditions };
    this.chunkSteps = chunkSteps;
    this.runner = null; // the TrainRunner of the run in progress
    this.state = { state: 'idle', reason: null, step: 0, steps: 0 };
  }

  /** Check everything before anything runs: a job, or one Error naming the problem (→ bad-input). */
  async prepare(version, manifest, data, rawOptions = {}) {
    const training = trainingSpec(manifest);
    if (rawOptions === null || typeof rawOptions !== 'object') throw new Error('personalize() options must be an object');
    const examples = trainingExamples(data, manifest);
    const options = trainingOptions(rawOptions, training);
    const file = parameterFile(training, manifest.edge.file);
    const base = readParameters(await this.store.verifiedFile(version, manifest, file), training, file);
    const fingerprint = await dataFingerprint(version, examples, options);
    return { version, manifest, training, examples, options, base, fingerprint,
             onProgress: rawOptions.onProgress, signal: rawOptions.signal }; // fmt: skip
  }

  #report(job, event) {
    Object.assign(this.state, event);
    try {
      job.onProgress?.({ ...this.state });
    } catch {
      // a page's progress callback must not stop the training
    }
  }

  async #whenAllowed(job, stop) {
    let paused = false;
    for (;;) {
      if (job.signal?.aborted) throw abortError(job.signal);
      if (stop.aborted) throw abortError(stop);
      const reason = await trainingBlocker(this.environment, this.conditions);
      if (!reason) {
        if (paused) this.#report(job, { state: 'training', reason: null });
        return;
      }
      if (!paused) this.#report(job, { state: 'paused', reason });
      paused = true;
      await sleep(this.conditions.pollMs, [job.signal, stop]);
    }
  }

  /** Train from the checkpoint (or the base): {params, losses, steps, epochs, samples, resumedFrom, backend}. */
  async run(job, stop) {
    const { version, manifest, training, examples, options } = job;
    const plan = chooseTrainRuntime(manifest, this.policy);
    const model = await this.store.verifiedFile(version, manifest, plan.file);
    const perEpoch = Math.ceil(examples.count / options.batchSize);
    const total = perEpoch * options.epochs;
    const saved = await this.trainingStore.checkpoint(version, job.fingerprint);
    const zeros = () => Object.fromEntries(training.state.map((s) => [s.name, new Float32Array(s.shape.reduce((a, b) => a * b, 1)).fill(s.init ?? 0)]));
    const at = saved ?? { step: 0, rng: seedState(options.seed), params: job.base, state: zeros(), losses: [] };
    const resumedFrom = at.step;
    this.state = { state: 'loading', reason: null, step: at.step, steps: total, epoch: Math.floor(at.step / perEpoch), epochs: options.epochs };
    const runner = new TrainRunner({ model, plan, training, assets: this.assets });
    this.runner = runner;
    try {
      await this.#whenAllowed(job, stop);
      const backend = await runner.load({ examples, params: at.params, state: at.state });
      this.#report(job, { state: 'training', backend });
      let order = null;
      while (at.step < total) {
        await this.#whenAllowed(job, stop);
        const inEpoch = at.step % perEpoch;
        order ??= options.shuffle ? shuffledOrder(examples.count, at.rng).order : [...Array(examples.count).keys()];
        const count = Math.min(this.chunkSteps, perEpoch - inEpoch);
        const batches = Array.from({ length: count }, (_, i) => order.slice((inEpoch + i) * options.batchSize, (inEpoch + i + 1) * options.batchSize));
        const done = await runner.chunk(batches, at.step + 1, options.learningRate);
        at.step += count;
        at.losses = [...at.losses, ...done.losses];
        at.params = done.params;
        at.state = done.state;
        if (at.step % perEpoch === 0) {
          if (options.shuffle) at.rng = shuffledOrder(examples.count, at.rng).state;
          order = null;
        }
        await this.trainingStore.saveCheckpoint(version, job.fingerprint, { ...at, steps: total, savedAt: new Date().toISOString() });
        this.#report(job, { state: 'training', step: at.step, epoch: Math.floor((at.step - 1) / perEpoch) + 1, loss: at.losses.at(-1) });
      }
      this.state = { ...this.state, state: 'idle', reason: null };
      return { params: at.params, losses: at.losses, steps: total, epochs: options.epochs, samples: examples.count, resumedFrom, backend,
               fingerprint: job.fingerprint }; // fmt: skip
    } catch (error) {
      this.state = { ...this.state, state: 'idle', reason: error.message };
      throw error;
    } finally {
      runner.terminate();
      if (this.runner === runner) this.runner = null;
    }
  }
}
