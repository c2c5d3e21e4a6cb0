// The page's side of the training worker (train-worker.js): spawn it, load the step with the
// examples and the starting parameters, run chunks, stop it. A chunk cannot be interrupted inside
// the runtime; stopping means terminating the worker (the last checkpoint stays in IndexedDB).

import { CODES, EdgecloudError } from './errors.js';
import { WorkerChannel } from './worker-channel.js';

const WORKER_URL = new URL('./train-worker.js', import.meta.url);

export class TrainRunner {
  /** model: verified step-graph bytes; plan: {runtime, backends}; training: model.json's entry. */
  constructor({ model, plan, training }) {
    Object.assign(this, { model, plan, training });
    this.channel = null;
    this.backend = null;
  }

  /** Start the worker with the examples and the params/state to continue from; resolves the backend. */
  async load({ examples, params, state }) {
    this.channel = new WorkerChannel(WORKER_URL, 'the training worker');
    try {
      const { backend } = await this.channel.call({
        type: 'load', runtime: this.plan.runtime, backends: this.plan.backends, model: this.model,
        training: this.training, examples, params, state,
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
