// The page's side of the edge worker: one module Worker holding one loaded model. A run that
// exceeds its time budget cannot be interrupted inside the runtime, so the worker is terminated
// and a fresh one reloads the same model in the background.

import { CODES, EdgecloudError } from './errors.js';
import { WorkerChannel } from './worker-channel.js';

const WORKER_URL = new URL('./edge-worker.js', import.meta.url);

export class EdgeRunner {
  /** model: verified ArrayBuffer; plan: {candidates: [{runtime, backend}]} (policy.js); inputs: model.json input specs. */
  constructor({ model, plan, inputs }) {
    this.loadMessage = { type: 'load', candidates: plan.candidates, model, inputs };
    this.channel = null;
    this.backend = null; // 'runtime/backend' that won
    this.attempts = []; // [{backend, error}] of the candidates tried before it
    this.ready = null; // promise of the current load
  }

  /** Start (or restart) the worker and load the model; resolves the backend that won. */
  load() {
    this.channel = new WorkerChannel(WORKER_URL, 'the edge worker');
    this.ready = this.channel.call(this.loadMessage).then(
      (result) => {
        this.backend = result.backend;
        this.attempts = result.attempts ?? [];
        return result.backend;
      },
      (error) => {
        this.terminate();
        throw new EdgecloudError(CODES.EDGE_UNAVAILABLE, error.message);
      },
    );
    return this.ready;
  }

  /** Outputs of one run, or edge-error / edge-timeout (then the worker restarts in the background). */
  async run(feeds, timeoutMs) {
    await this.ready;
    let timer;
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new EdgecloudError(CODES.EDGE_TIMEOUT, `no answer within ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      return await Promise.race([this.channel.call({ type: 'run', feeds }), timeout]);
    } catch (error) {
      if (error.code === CODES.EDGE_TIMEOUT) {
        this.terminate();
        this.load().catch(() => {}); // the next request waits for it (or learns it failed)
        throw error;
      }
      throw new EdgecloudError(CODES.EDGE_ERROR, error.message);
    } finally {
      clearTimeout(timer);
    }
  }

  terminate() {
    if (this.channel) this.channel.terminate();
  }
}
