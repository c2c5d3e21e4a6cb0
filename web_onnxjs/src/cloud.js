// The cloud side: Multi Model Server's REST API, plain JSON format.
//
// Health is asked per model, never of the server: MMS 1.1.11's /ping says "Healthy" before any
// model is registered and "Partial Healthy" when another model lacks a worker. On the inference
// port, `OPTIONS /predictions/NAME` answers the model's OpenAPI description (200) only while NAME
// is registered, else 404 ModelNotFoundException (InferenceRequestHandler.predict); it never
// reaches a worker. Cross-origin, MMS answers that request's CORS preflight the same way, so a
// missing model shows as a network error: then a GET /ping (a simple request, no preflight) tells
// a server that is up, and lacks the model, from one that cannot be reached.
//
// The page asks for the version its edge runs, so both sides answer from the same parameters.
// It asks by name (`/predictions/NAME`, the newest version) and, when the answer's `model_version`
// is not its own, asks again for its version under the MMS name every serving replica gives it,
// `/predictions/NAME-vV` (docs/versions.md), and keeps asking there while the cloud has it. A
// cloud that no longer has V (retired: 404, or cross-origin a failed preflight) or serves no
// versions at all (a bare MMS) is asked by name from then on, and the answer's `model_version`
// says which version computed it (the handler's versionMismatch). Asking by name first means a
// page whose version is the newest never sends a request bound to fail.
//
// Error answers are told apart by their body. MMS's own are `{code, type, message}` with `type`
// the Java exception's simple name (ModelNotFoundException, ServiceUnavailableException,
// InternalServerException, OutOfMemoryError, ...): about the server, never about the input. Our
// handler (mms_handlers/errors.py) answers the same shape with its own `type` words; only those
// of a 4xx are a verdict on the input.

import { flatten, nest } from './tensors.js';
import { CODES, EdgecloudError } from './errors.js';

/** `type` of our handler's 4xx answers (mms_handlers/errors.py RequestError.kind): the input is wrong. */
export const HANDLER_INPUT_TYPES = Object.freeze(['BadRequest', 'PayloadTooLarge', 'UnsupportedMediaType', 'ClientError']);

/**
 * The EdgecloudError for a non-2xx answer `{code, type, message}` (or no JSON at all): bad-input
 * only for our handler's 4xx; MMS's missing model, busy server and every other failure are the cloud's.
 */
export function cloudAnswerError(what, status, body, statusText = '') {
  const type = body && typeof body.type === 'string' ? body.type : null;
  const message = body && typeof body.message === 'string' ? body.message : statusText || 'no message';
  const text = `${what} answered ${status}${type ? ` ${type}` : ''}: ${message}`;
  if (status >= 400 && status < 500 && HANDLER_INPUT_TYPES.includes(type) && body.code === status) {
    return new EdgecloudError(CODES.BAD_INPUT, text);
  }
  if (status === 404 && type === 'ModelNotFoundException') return new EdgecloudError(CODES.CLOUD_MODEL_MISSING, text);
  if ((status === 503 && type === 'ServiceUnavailableException') || status === 507) {
    return new EdgecloudError(CODES.CLOUD_BUSY, text);
  }
  return new EdgecloudError(CODES.CLOUD_ERROR, text);
}

/** The MMS name version `version` of model `name` is served under (mms_handlers/names.py version_name). */
export function versionName(name, version) {
  return `${name}-v${version}`;
}

/** POST plain tensors to /predictions/NAME; plain tensors back, or an EdgecloudError told by the answer's body. */
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
  if (!response.ok) throw cloudAnswerError('cloud', response.status, body, response.statusText);
  const outputs = Object.fromEntries(Object.entries(body.outputs).map(([k, v]) => [k, flatten(v)]));
  return { outputs, modelVersion: body.model_version ?? null };
}

/**
 * "serving" when MMS has model `name` registered (OPTIONS /predictions/NAME answers 200); else
 * throws cloud-model-missing, or cloud-unhealthy for any other answer. A network error is
 * rethrown when /ping cannot be reached either.
 */
export async function modelHealth(cloudUrl, name, { signal } = {}) {
  const path = `/predictions/${encodeURIComponent(name)}`;
  let response;
  try {
    response = await fetch(`${cloudUrl}${path}`, { method: 'OPTIONS', signal });
  } catch (error) {
    if (signal && signal.aborted) throw error;
    await fetch(`${cloudUrl}/ping`, { signal }); // throws when the server itself is out of reach
    throw new EdgecloudError(
      CODES.CLOUD_MODEL_MISSING,
      `${cloudUrl} answers /ping but OPTIONS ${path} failed (${error.message}): MMS answers it, and its CORS preflight, ` +
        `with 404 when it has no model ${name}`,
    );
  }
  if (response.ok) return 'serving';
  const failure = cloudAnswerError(`OPTIONS ${path}`, response.status, await response.json().catch(() => ({})), response.statusText);
  // No worker sees this request: whatever it answers, it is no verdict on an input.
  if (failure.code !== CODES.CLOUD_MODEL_MISSING) throw new EdgecloudError(CODES.CLOUD_UNHEALTHY, failure.message);
  throw failure;
}

/**
 * One model on one MMS, with the time budget and a short-lived per-model health verdict, so the
 * handler can tell *why* the cloud cannot answer (offline, unreachable, timeout, model missing,
 * busy, 5xx) and fall back. A failed prediction counts against the verdict like a failed check.
 */
export class CloudEndpoint {
  constructor(url, name, { timeoutMs = 10000, healthTtlMs = 5000, environment = globalThis.navigator } = {}) {
    this.url = url.replace(/\/+$/, '');
    this.name = name;
    this.timeoutMs = timeoutMs;
    this.healthTtlMs = healthTtlMs;
    this.environment = environment ?? {};
    this.lastHealth = null; // {status: 'serving' | an error code, error?, at}
    this.pinnedVersions = new Set(); // versions the cloud answered under their own MMS name
    this.missingVersions = new Set(); // versions the cloud did not have: asked for by name since
  }

  async #withTimeout(what, work) {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), this.timeoutMs);
    try {
      return await work(controller.signal);
    } catch (error) {
      if (error instanceof EdgecloudError) throw error;
      if (controller.signal.aborted) {
        throw new EdgecloudError(CODES.CLOUD_TIMEOUT, `${what} gave no answer within ${this.timeoutMs} ms`);
      }
      throw new EdgecloudError(CODES.CLOUD_UNREACHABLE, `${what} failed: ${error.message}`);
    } finally {
      clearTimeout(timer);
    }
  }

  #check() {
    return this.#withTimeout(`OPTIONS ${this.url}/predictions/${this.name}`, (signal) =>
      modelHealth(this.url, this.name, { signal }),
    );
  }

  #record(status, error = undefined) {
    this.lastHealth = { status, error, at: performance.now() };
  }

  /** Resolves when MMS serves this model, else throws why (the verdict is kept healthTtlMs). */
  async ensureHealthy() {
    if (this.environment.onLine === false) {
      throw new EdgecloudError(CODES.CLOUD_UNREACHABLE, 'the browser is offline');
    }
    if (!this.lastHealth || performance.now() - this.lastHealth.at > this.healthTtlMs) {
      try {
        this.#record(await this.#check());
      } catch (error) {
        this.#record(error.code, error);
      }
    }
    if (this.lastHealth.error) throw this.lastHealth.error;
  }

  /**
   * {outputs, modelVersion}. With `version`, answered by that version whenever the cloud has it (see the
   * top of this file). Our handler's 4xx → bad-input (the request is wrong, not the cloud); every other
   * failure is recorded as the verdict and thrown. A network error is explained by a fresh health
   * check: cross-origin, a model unregistered since the last check fails the preflight.
   */
  async predict(feeds, version = null) {
    await this.ensureHealthy();
    const wanted = version == null ? null : String(version);
    if (wanted !== null && this.pinnedVersions.has(wanted)) {
      const answer = await this.#pinned(feeds, wanted);
      if (answer) return answer;
    }
    const answer = await this.#ask(this.name, feeds);
    if (wanted === null || String(answer.modelVersion) === wanted || this.missingVersions.has(wanted)) return answer;
    return (await this.#pinned(feeds, wanted)) ?? answer;
  }

  /** The answer of version `version` under its MMS name, or null when the cloud does not have it (then never asked again). */
  async #pinned(feeds, version) {
    try {
      const answer = await this.#ask(versionName(this.name, version), feeds);
      this.pinnedVersions.add(version);
      return answer;
    } catch (error) {
      if (error.code !== CODES.CLOUD_MODEL_MISSING && error.code !== CODES.CLOUD_UNREACHABLE) throw error;
      this.pinnedVersions.delete(version);
      this.missingVersions.add(version);
      return null;
    }
  }

  async #ask(name, feeds) {
    try {
      const answer = await this.#withTimeout(`POST /predictions/${name}`, (signal) => cloudAnswer(this.url, name, feeds, { signal }));
      this.#record('serving');
      return answer;
    } catch (error) {
      if (error.code === CODES.BAD_INPUT) throw error;
      if (name !== this.name) throw error; // a version the cloud may have retired: the caller asks by name
      let failure = error;
      if (error.code === CODES.CLOUD_UNREACHABLE) {
        failure = await this.#check().then(
          () => error,
          (why) => (why.code === CODES.CLOUD_UNREACHABLE ? error : why),
        );
      }
      this.#record(failure.code, failure);
      throw failure;
    }
  }
}
