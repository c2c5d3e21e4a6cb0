// The page's side of the edge worker: one module Worker holding one loaded model. A run that
// exceeds its time budget cannot be interrupted inside the runtime, so the worker is terminated
// and a fresh one reloads the same model in the background. The plan's candidates may run
// different files (onnxruntime-web the cloud file, ONNX.js the lowered edge file): each run of
// consecutive candidates on one file is one load message, its bytes asked for only when tried.

import { CODES, EdgecloudError } from './errors.js';
import { WorkerChannel } from './worker-channel.js';

/**
 * The edge worker from `url` (assets.edgeWorker), else the one next to this module, written as
 * `new Worker(new URL(...), ...)` so that bundlers which follow that form (Vite, webpack) bundle it.
 */
function startWorker(url) {
  if (url) return new Worker(url, { type: 'module' });
  return new Worker(new URL('./edge-worker.js', import.meta.url), { type: 'module' });
}

export class EdgeRunner {
  /**
   * plan: {candidates: [{runtime, backend, file}]} (policy.js); inputs: model.json input specs;
   * modelFor(file) → Promise of that file's verified bytes; assets: resolveAssets()'s answer
   * (where the worker script and the runtimes are served).
   */
  constructor({ plan, inputs, modelFor, assets }) {
    Object.assign(this, { candidates: plan.candidates, reason: plan.reason, inputs, modelFor });
    this.workerUrl = assets.edgeWorker;
    this.runtimeFolders = { onnxjs: assets.onnxjs, onnxruntimeWeb: assets.onnxruntimeWeb };
    this.channel = null;
    this.backend = null; // 'runtime/backend' that won
    this.attempts = []; // [{backend, error}] of the candidates tried before it
    this.file = null;
    this.ready = null; // promise of the current load
  }

  /** Start (or restart) the worker and load the model; resolves the backend that won. */
  load() {
    this.channel = new WorkerChannel(startWorker(this.workerUrl), 'the edge worker');
    this.ready = this.#loadFirstThatRuns().then(
      (result) => {
        this.backend = result.backend;
        this.attempts = result.attempts ?? [];
        this.file = result.file; // the model file it runs
        return result.backend;
      },
      (error) => {
        this.terminate();
        throw new EdgecloudError(CODES.EDGE_UNAVAILABLE, error.message);
      },
    );
    return this.ready;
  }

  /** Each file's candidates in turn; the worker's reply for the first group that loads. */
  async #loadFirstThatRuns() {
    const groups = [];
    for (const candidate of this.candidates) {
      if (groups.at(-1)?.file === candidate.file) groups.at(-1).candidates.push(candidate);
      else groups.push({ file: candidate.file, candidates: [candidate] });
    }
    const attempts = [];
    const errors = [];
    for (const { file, candidates } of groups) {
      try {
        const model = await this.modelFor(file);
        const result = await this.channel.call({ type: 'load', candidates, model, inputs: this.inputs, assets: this.runtimeFolders });
        return { backend: result.backend, attempts: [...attempts, ...result.attempts], file };
      } catch (error) {
        const names = candidates.map((c) => `${c.runtime}/${c.backend}`).join(', ');
        attempts.push({ backend: groups.length > 1 ? `${names} on ${file}` : names, error: error.message });
        errors.push(error.message);
      }
    }
    throw new Error(errors.join('; ') || 'no edge runtime to try');
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
