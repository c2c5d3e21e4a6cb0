// One error type for the whole browser API: `code` is stable (tests and callers branch on it),
// `message` is for people. The codes double as the prefixes of `fallbackReason`.

export const CODES = Object.freeze({
  BAD_INPUT: 'bad-input', // the request itself is wrong (the page's check, or our MMS handler's 4xx): never a reason to fall back
  BAD_MODEL: 'bad-model', // the registry's model.json / latest.json is not what the schema says (manifest-check.js)
  EDGE_UNAVAILABLE: 'edge-unavailable', // no edge runtime could load the model (or none is marked)
  EDGE_INTEGRITY: 'edge-integrity', // the model file's SHA-256 does not match model.json
  EDGE_ERROR: 'edge-error', // the edge runtime threw while running
  EDGE_SHAPE: 'edge-shape', // the browser file was pinned to other input shapes at export (model.json edge.inputs)
  EDGE_TIMEOUT: 'edge-timeout', // the edge ran past the time budget (its worker is restarted)
  CLOUD_UNAVAILABLE: 'cloud-unavailable', // no cloud URL configured
  CLOUD_UNREACHABLE: 'cloud-unreachable', // offline or a network error
  CLOUD_TIMEOUT: 'cloud-timeout', // no answer within the cloud time budget
  CLOUD_UNHEALTHY: 'cloud-unhealthy', // the health check (OPTIONS /predictions/NAME) got an answer that is no "serving"
  CLOUD_MODEL_MISSING: 'cloud-model-missing', // MMS has no such model (not registered, still loading, being replaced)
  CLOUD_BUSY: 'cloud-busy', // MMS has no worker free for the model (503 ServiceUnavailableException) or no memory (507)
  CLOUD_ERROR: 'cloud-error', // any other 5xx, or a 4xx that is not our handler's verdict on the input
  NO_ANSWER: 'no-answer', // every allowed place failed
  NOT_ALLOWED: 'not-allowed', // the page's settings forbid it (local-only, no federated URL)
  TRAINING_ERROR: 'training-error', // the training step failed in the worker (or the personalised model did not load)
  TRAINING_ABORTED: 'training-aborted', // stopped by its signal, a reset or a new version (the checkpoint stays)
  TRAINING_BUSY: 'training-busy', // personalize() while another personalisation runs
});

export class EdgecloudError extends Error {
  constructor(code, message) {
    super(message);
    this.name = 'EdgecloudError';
    this.code = code;
  }

  /** "code: message", the form used in fallbackReason. */
  get reason() {
    return `${this.code}: ${this.message}`;
  }
}

/** Wrap anything thrown into an EdgecloudError with the given code (keeps one that already has a code). */
export function asEdgecloudError(error, code) {
  if (error instanceof EdgecloudError) return error;
  return new EdgecloudError(code, String(error && error.message ? error.message : error));
}
