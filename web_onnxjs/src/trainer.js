// The page's side of the training worker (train-worker.js): spawn it, load the step with the
// examples and the starting parameters, run chunks, stop it. A chunk cannot be interrupted inside
// the runtime; stopping means terminating the worker (the last checkpoint stays in IndexedDB).

import { CODES, EdgecloudError } from './errors.js';
import { WorkerChannel } from './worker-channel.js';

/** The training worker from `url` (assets.trainWorker), else the one next to this module (see edge-client.js). */
function startWorker(url) {
  if (url) return new Worker(url, { type: 'module' });
  return new Worker(new URL('./train-worker.js', import.meta.url), { type: 'module' });
}

export class TrainRunner {
  /** model: verified step-graph bytes; plan: {runtime, backends}; training: model.json's entry; assets: as EdgeRunner's. */
  constructor({ model, plan, training, assets }) {
    Object.assign(this, { model, plan, training, assets });
    this.channel = null;
    this.backend = null;
  }

  /** Start the worker with the examples and the params/state to continue from; resolves the backend. */
  async load({ examples, params, state }) {
    const { onnxjs, onnxruntimeWeb, trainWorker } = this.assets;
    this.channel = new WorkerChannel(startWorker(trainWorker), 'the training worker');
    try {
      const { backend } = await this.channel.call({
        type: 'load', runtime: this.plan.runtime, backends: this.plan.backends, model: this.model,
        training: this.training, examples, params, state, assets: { onnxjs, onnxruntimeWeb },
      });
      this.backend = backend;
      return backend;
    } catch (error) {
      this.terminate();
      throw new EdgecloudError(CODES.TRAINING_ERROR, error.message);
    }
  }

  /** Run one optimizer step per batch of rows: {losses, params, state} after the last one. */
  async chunk(batches, firstStep, learningRate) {
    try {
      return await this.channel.call({ type: 'chunk', batches, firstStep, learningRate });
    } catch (error) {
      throw new EdgecloudError(CODES.TRAINING_ERROR, error.message);
    }
  }

  terminate() {
    if (this.channel) this.channel.terminate();
  }
}
