// The {id, type, ...} → {id, ok, result | error} protocol that edge-worker.js and train-worker.js
// share, both ends: WorkerChannel on the page (id-matched calls, every pending call rejected when
// the worker fails or is terminated), serveMessages() inside the worker.

export class WorkerChannel {
  /** worker: a module Worker just started; what: how error messages name it ("the edge worker"). */
  constructor(worker, what) {
    this.pending = new Map();
    this.nextId = 1;
    this.what = what;
    this.worker = worker;
    this.worker.onmessage = ({ data }) => {
      const waiter = this.pending.get(data.id);
      if (!waiter) return;
      this.pending.delete(data.id);
      if (data.ok) waiter.resolve(data.result);
      else waiter.reject(new Error(data.error));
    };
    this.worker.onerror = (event) => {
      event.preventDefault();
      this.#failAll(new Error(`${what} failed: ${event.message || 'script error'}`));
    };
  }

  #failAll(error) {
    for (const waiter of this.pending.values()) waiter.reject(error);
    this.pending.clear();
  }

  /** Send one message; resolves its result or rejects with the worker's error message. */
  call(message, transfer = []) {
    if (!this.worker) return Promise.reject(new Error(`${this.what} was stopped`));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ ...message, id }, transfer);
    });
  }

  terminate() {
    if (this.worker) this.worker.terminate();
    this.worker = null;
    this.#failAll(new Error(`${this.what} was stopped`));
  }
}

/** An error's message as one string (what crosses the worker boundary). */
export function messageOf(error) {
  return String(error && error.message ? error.message : error);
}

/** Inside a worker: answer each {id, type, ...} with handlers[type]'s result or its error message. */
export function serveMessages(handlers) {
  self.onmessage = async ({ data }) => {
    const handler = handlers[data.type];
    try {
      if (!handler) throw new Error(`unknown message type ${data.type}`);
      self.postMessage({ id: data.id, ok: true, result: await handler(data) });
    } catch (error) {
      self.postMessage({ id: data.id, ok: false, error: messageOf(error) });
    }
  };
}
