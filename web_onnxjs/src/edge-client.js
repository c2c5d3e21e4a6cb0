// The page's side of the edge worker: one module Worker holding one loaded model. A run that
// exceeds its time budget cannot be interrupted inside the runtime, so the worker is terminated
// and a fresh one reloads the same model in the background.

import { CODES, EdgecloudError } from './errors.js';

const WORKER_URL = new URL('./edge-worker.js', import.meta.url);

export class EdgeRunner {
  /** model: verified ArrayBuffer; plan: {runtime, backends}; inputs: model.json input specs. */
  constructor({ model, plan, inputs }) {
    this.loadMessage = { type: 'load', runtime: plan.runtime, backends: plan.backends, model, inputs };
    this.worker = null;
    this.pending = new Map();
    this.nextId = 1;
    this.backend = null;
    this.ready = null; // promise of the current load
  }

  #spawn() {
    const worker = new Worker(WORKER_URL, { type: 'module' });
    worker.onmessage = ({ data }) => {
      const waiter = this.pending.get(data.id);
      if (!waiter) return;
      this.pending.delete(data.id);
      if (data.ok) waiter.resolve(data.result);
      else waiter.reject(new Error(data.error));
    };
    worker.onerror = (event) => {
      event.preventDefault();
      this.#failAll(new Error(`the edge worker failed: ${event.message || 'script error'}`));
    };
    this.worker = worker;
  }

  #failAll(error) {
    for (const waiter of this.pending.values()) waiter.reject(error);
    this.pending.clear();
  }

  #call(message) {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ ...message, id });
    });
  }

  /** Start (or restart) the worker and load the model; resolves the backend that won. */
  load() {
    this.#spawn();
    this.ready = this.#call(this.loadMessage).then(
      (result) => {
        this.backend = result.backend;
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
      return await Promise.race([this.#call({ type: 'run', feeds }), timeout]);
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
    if (this.worker) this.worker.terminate();
    this.worker = null;
    this.#failAll(new Error('the edge worker was stopped'));
  }
}
