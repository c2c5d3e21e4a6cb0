// The cloud side: Multi Model Server's REST API, plain JSON format.

import { flatten, nest } from './tensors.js';
import { CODES, EdgecloudError } from './errors.js';

/** POST plain tensors to /predictions/NAME; plain tensors back, or an Error with MMS's message. */
export async function predictCloud(cloudUrl, name, feeds, { signal } = {}) {
  return (await cloudAnswer(cloudUrl, name, feeds, { signal })).outputs;
}

/** As predictCloud, plus the version that computed the answer (the handler's `model_version`, null if absent). */
export async function cloudAnswer(cloudUrl, name, feeds, { signal } = {}) {
  const inputs = Object.fromEntries(Object.entries(feeds).map(([k, t]) => [k, nest(t.data, t.shape)]));
  const response = await fetch(`${cloudUrl}/predictions/${encodeURIComponent(name)}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ inputs }),
    signal,
  });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const error = new Error(`cloud answered ${response.status}: ${body.message ?? response.statusText}`);
    error.status = response.status;
    throw error;
  }
  const outputs = Object.fromEntries(Object.entries(body.outputs).map(([k, v]) => [k, flatten(v)]));
  return { outputs, modelVersion: body.model_version ?? null };
}

/** The health word from /ping's body ("Healthy", ...); /ping is always HTTP 200. */
export async function cloudHealth(cloudUrl, { signal } = {}) {
  const response = await fetch(`${cloudUrl}/ping`, { signal });
  return (await response.json()).status;
}

/**
 * One model on one MMS, with the time budget and a short-lived /ping verdict, so the handler can
 * tell *why* the cloud cannot answer (offline, unreachable, timeout, unhealthy, 5xx) and fall back.
 */
export class CloudEndpoint {
  constructor(url, name, { timeoutMs = 10000, healthTtlMs = 5000, environment = globalThis.navigator } = {}) {
    this.url = url.replace(/\/+$/, '');
    this.name = name;
    this.timeoutMs = timeoutMs;
    this.healthTtlMs = healthTtlMs;
    this.environment = environment ?? {};
    this.lastHealth = null; // {status, at}
  }

  async #withTimeout(what, work) {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), this.timeoutMs);
    try {
      return await work(controller.signal);
    } catch (error) {
      if (error instanceof EdgecloudError || error.status) throw error;
      if (controller.signal.aborted) {
        throw new EdgecloudError(CODES.CLOUD_TIMEOUT, `${what} gave no answer within ${this.timeoutMs} ms`);
      }
      throw new EdgecloudError(CODES.CLOUD_UNREACHABLE, `${what} failed: ${error.message}`);
    } finally {
      clearTimeout(timer);
    }
  }

  /** "Healthy" or throws cloud-unreachable / cloud-timeout / cloud-unhealthy (verdict cached healthTtlMs). */
  async ensureHealthy() {
    if (this.environment.onLine === false) {
      throw new EdgecloudError(CODES.CLOUD_UNREACHABLE, 'the browser is offline');
    }
    const now = performance.now();
    if (!this.lastHealth || now - this.lastHealth.at > this.healthTtlMs) {
      try {
        const status = await this.#withTimeout(`${this.url}/ping`, (signal) => cloudHealth(this.url, { signal }));
        this.lastHealth = { status, at: now };
      } catch (error) {
        this.lastHealth = { status: error.code, error, at: now };
      }
    }
    if (this.lastHealth.error) throw this.lastHealth.error;
    if (this.lastHealth.status !== 'Healthy') {
      throw new EdgecloudError(CODES.CLOUD_UNHEALTHY, `${this.url}/ping says ${JSON.stringify(this.lastHealth.status)}`);
    }
  }

  /** {outputs, modelVersion}; 5xx → cloud-error, 4xx → bad-input (the request is wrong, not the cloud). */
  async predict(feeds) {
    await this.ensureHealthy();
    try {
      return await this.#withTimeout(`POST /predictions/${this.name}`, (signal) =>
        cloudAnswer(this.url, this.name, feeds, { signal }),
      );
    } catch (error) {
      if (error.status >= 500) {
        this.lastHealth = null; // ask /ping again next time
        throw new EdgecloudError(CODES.CLOUD_ERROR, error.message);
      }
      if (error.status >= 400) throw new EdgecloudError(CODES.BAD_INPUT, error.message);
      this.lastHealth = { status: error.code, error, at: performance.now() };
      throw error;
    }
  }
}
