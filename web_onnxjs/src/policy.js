// Where a request runs: pure functions of the privacy mode, the request and what we know about
// the device, the edge and the network. The handler tries the places in the order given here.

export const PRIVACY_MODES = Object.freeze(['auto', 'prefer-edge', 'prefer-cloud', 'local-only']);

export const DEFAULT_POLICY = Object.freeze({
  privacy: 'auto',
  autoEdgeMaxElements: 65536, // auto: bigger inputs go to the cloud first
  minCores: 2, // auto: fewer logical cores than this → cloud first
  minMemoryGb: 1, // auto: navigator.deviceMemory below this → cloud first
  edgeTimeoutMs: 10000, // one edge inference; past it the worker is restarted and the cloud answers
  cloudTimeoutMs: 10000, // one cloud request (and the model's health check)
  healthTtlMs: 5000, // how long the model's health verdict (a check or a failed request) is kept
  onnxjsBackends: ['wasm', 'cpu', 'webgl'], // ONNX.js backends in order of preference
});

/** What the auto mode weighs about this device (navigator values; a policy may override them). */
export function deviceCapability(env = globalThis.navigator ?? {}) {
  return {
    cores: env.hardwareConcurrency ?? 1,
    memoryGb: env.deviceMemory ?? null,
    online: env.onLine !== false,
    saveData: Boolean(env.connection && env.connection.saveData),
  };
}

/**
 * {order: ['edge'|'cloud', ...], reason} for one request.
 * edgeState is 'ready' | 'loading' | 'unavailable'; hasCloud says whether a cloud URL is set.
 */
export function decideRoute({ privacy, elements, device, edgeState, hasCloud, policy }) {
  if (!PRIVACY_MODES.includes(privacy)) {
    throw new Error(`unknown privacy mode ${JSON.stringify(privacy)}; use one of ${PRIVACY_MODES.join(', ')}`);
  }
  if (privacy === 'local-only') return { order: ['edge'], reason: 'local-only: the input never leaves this device' };
  if (!hasCloud) return { order: ['edge'], reason: 'no cloud is configured' };
  if (privacy === 'prefer-edge') return { order: ['edge', 'cloud'], reason: 'prefer-edge' };
  if (privacy === 'prefer-cloud') return { order: ['cloud', 'edge'], reason: 'prefer-cloud' };
  const cloudFirst = (why) => ({ order: ['cloud', 'edge'], reason: `auto: ${why}` });
  const edgeFirst = (why) => ({ order: ['edge', 'cloud'], reason: `auto: ${why}` });
  if (!device.online) return edgeFirst('the browser is offline');
  if (edgeState === 'unavailable') return cloudFirst('the edge cannot run this model');
  if (device.saveData) return edgeFirst('the user asked to save data');
  if (elements > policy.autoEdgeMaxElements) {
    return cloudFirst(`input of ${elements} numbers > ${policy.autoEdgeMaxElements}`);
  }
  if (device.cores < policy.minCores) return cloudFirst(`${device.cores} core(s) < ${policy.minCores}`);
  if (device.memoryGb !== null && device.memoryGb < policy.minMemoryGb) {
    return cloudFirst(`${device.memoryGb} GB device memory < ${policy.minMemoryGb}`);
  }
  return edgeFirst(`input of ${elements} numbers ≤ ${policy.autoEdgeMaxElements} on a capable device`);
}

/**
 * "runtime/backend" → passed, from the table `edgecloud verify` records in model.json's
 * `edge.verified` ({file, results: [{runtime, backend, passed}]}). A verification of another file
 * than the edge file says nothing.
 */
export function verdicts(edge) {
  const verified = edge.verified ?? {};
  const found = new Map();
  if (verified.file && verified.file !== edge.file) return found;
  for (const row of Array.isArray(verified.results) ? verified.results : []) {
    found.set(`${row.runtime}/${row.backend}`, row.passed === true);
  }
  return found;
}

/**
 * {runtime, backends} for model.json's edge entry. ONNX.js when it is marked for it, on the
 * backends the browser verification passed (or, before any, those the static check left
 * unblocked in `edge.backends`); onnxruntime-web (wasm) for the rest, including a model marked
 * for ONNX.js whose every ONNX.js backend failed verification. Throws when no edge file is named.
 */
export function chooseEdgeRuntime(manifest, policy) {
  const edge = manifest.edge;
  if (!edge || !edge.file) throw new Error(`model.json of ${manifest.name} v${manifest.version} names no edge file`);
  const ort = { runtime: 'onnxruntime-web', backends: ['wasm'] };
  if (edge.runtime !== 'onnxjs') return ort;
  const judged = verdicts(edge);
  let backends = policy.onnxjsBackends.filter((b) => judged.get(`onnxjs/${b}`) !== false);
  if (!backends.some((b) => judged.get(`onnxjs/${b}`))) {
    const unblocked = Array.isArray(edge.backends) ? edge.backends : policy.onnxjsBackends;
    backends = backends.filter((b) => unblocked.includes(b));
  } else {
    backends = backends.filter((b) => judged.get(`onnxjs/${b}`));
  }
  if (backends.length === 0 && judged.get('onnxruntime-web/wasm') !== false) return ort;
  return { runtime: 'onnxjs', backends };
}
