// Where a request runs: pure functions of the privacy mode, the request and what we know about
// the device, the edge and the network. The handler tries the places in the order given here.
// Which edge runtime runs it: pure functions of model.json's verification, ranking and the network.

import { CODES, EdgecloudError } from './errors.js';

export const PRIVACY_MODES = Object.freeze(['auto', 'prefer-edge', 'prefer-cloud', 'local-only']);

export const DEFAULT_POLICY = Object.freeze({
  privacy: 'auto',
  autoEdgeMaxElements: 65536, // auto: bigger inputs go to the cloud first
  minCores: 2, // auto: fewer logical cores than this → cloud first
  minMemoryGb: 1, // auto: navigator.deviceMemory below this → cloud first
  edgeTimeoutMs: 10000, // one edge inference; past it the worker is restarted and the cloud answers
  cloudTimeoutMs: 10000, // one cloud request (and the model's health check)
  healthTtlMs: 5000, // how long the model's health verdict (a check or a failed request) is kept
  onnxjsBackends: ['wasm', 'cpu', 'webgl'], // ONNX.js backends in order of preference (and the ones allowed)
  edgeRuntime: null, // force one: 'onnxjs', 'onnxruntime-web' or 'RUNTIME/BACKEND'; null = fastest verified
  slowDownlinkMbps: 1, // navigator.connection.downlink below this (Mb/s) is a slow connection
});

/** Every backend each edge runtime offers here (edge-worker.js runs onnxruntime-web on wasm only). */
export const EDGE_BACKENDS = Object.freeze({ onnxjs: ['cpu', 'wasm', 'webgl'], 'onnxruntime-web': ['wasm'] });
const SLOW_TYPES = ['slow-2g', '2g', '3g']; // navigator.connection.effectiveType values counted slow

/** What the auto mode weighs about this device (navigator values; a policy may override them). */
export function deviceCapability(env = globalThis.navigator ?? {}) {
  return {
    cores: env.hardwareConcurrency ?? 1,
    memoryGb: env.deviceMemory ?? null,
    online: env.onLine !== false,
    saveData: Boolean(env.connection && env.connection.saveData),
    effectiveType: env.connection?.effectiveType ?? null,
    downlinkMbps: env.connection?.downlink ?? null,
  };
}

/** Why a big download should wait (data saver, a 2g/3g or low-downlink connection), or null. */
export function slowNetwork(device, policy) {
  if (device.saveData) return 'data saver is on';
  if (SLOW_TYPES.includes(device.effectiveType)) return `the connection is ${device.effectiveType}`;
  if (device.downlinkMbps != null && device.downlinkMbps < policy.slowDownlinkMbps) {
    return `the connection's downlink is ${device.downlinkMbps} Mb/s < ${policy.slowDownlinkMbps}`;
  }
  return null;
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
 * `edge.verified` ({file, results: [{runtime, backend, passed, file?}]}), about the edge file:
 * a verification of another file, or a row naming another `file`, says nothing about it.
 * With `{ anyFile: true }` the keys are "runtime/backend@file" and every row counts.
 */
export function verdicts(edge, { anyFile = false } = {}) {
  const verified = edge.verified ?? {};
  const found = new Map();
  if (verified.file && verified.file !== edge.file) return found;
  for (const row of Array.isArray(verified.results) ? verified.results : []) {
    const file = row.file ?? edge.file;
    if (anyFile) found.set(`${row.runtime}/${row.backend}@${file}`, row.passed === true);
    else if (file === edge.file) found.set(`${row.runtime}/${row.backend}`, row.passed === true);
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

/**
 * model.json's `edge.ranking` (written by `edgecloud verify`: the pairs that passed, fastest first;
 * a row's `file` is the edge file unless it names another, such as the cloud file onnxruntime-web
 * also ran) as [{runtime, backend, file, medianMs, downloadBytes}], keeping only pairs this page
 * allows (ONNX.js backends in `policy.onnxjsBackends`) and whose verification of that file passed;
 * null when there is no ranking, or the verification is about another file than the edge file.
 */
export function rankedRuntimes(edge, policy) {
  if (!Array.isArray(edge.ranking)) return null;
  if (edge.verified?.file && edge.verified.file !== edge.file) return null;
  const judged = verdicts(edge, { anyFile: true });
  const allowed = (row) =>
    (EDGE_BACKENDS[row.runtime] ?? []).includes(row.backend) &&
    (row.runtime !== 'onnxjs' || policy.onnxjsBackends.includes(row.backend)) &&
    judged.get(`${row.runtime}/${row.backend}@${row.file ?? edge.file}`) === true;
  return edge.ranking.filter(allowed).map((row) => ({
    runtime: row.runtime,
    backend: row.backend,
    file: row.file ?? edge.file,
    medianMs: row.median_ms,
    downloadBytes: row.download_bytes ?? null,
  }));
}

/** policy.edgeRuntime as {runtime, backend|null}, or a bad-input EdgecloudError naming what is allowed. */
export function parseEdgeRuntime(value) {
  const [runtime, backend = null, ...rest] = typeof value === 'string' ? value.split('/') : [];
  if (!EDGE_BACKENDS[runtime] || rest.length || (backend !== null && !EDGE_BACKENDS[runtime].includes(backend))) {
    const pairs = Object.entries(EDGE_BACKENDS).flatMap(([r, backends]) => backends.map((b) => `${r}/${b}`));
    throw new EdgecloudError(
      CODES.BAD_INPUT,
      `policy.edgeRuntime ${JSON.stringify(value)} is not a browser runtime; use ${Object.keys(EDGE_BACKENDS).join(', ')} ` +
        `or one of ${pairs.join(', ')} (or null for the fastest verified)`,
    );
  }
  return { runtime, backend };
}

/** "runtime/backend", plus " on FILE" for a candidate that runs another file than the edge file. */
const pairName = (c, edgeFile) => `${c.runtime}/${c.backend}` + (c.file && c.file !== edgeFile ? ` on ${c.file}` : '');
const bytes = (c) => c.downloadBytes ?? Infinity; // an unknown size never counts as small
const ms = (c) => (typeof c.medianMs === 'number' ? `${c.medianMs.toFixed(2)} ms` : 'time not measured');
const megabytes = (c) => (typeof c.downloadBytes === 'number' ? `${(c.downloadBytes / 1e6).toFixed(1)} MB` : 'size unknown');

/** The candidates a forced policy.edgeRuntime leaves, or a bad-input error when it is not verified. */
function forced(candidates, value, manifest, verifiedRanking) {
  const { runtime, backend } = parseEdgeRuntime(value);
  const kept = candidates.filter((c) => c.runtime === runtime && (backend === null || c.backend === backend));
  if (kept.length === 0) {
    const allowed = candidates.length ? candidates.map((c) => pairName(c, manifest.edge.file)).join(', ') : 'none';
    const what = verifiedRanking ? 'verified' : 'allowed (no browser verification is recorded; run edgecloud verify)';
    throw new EdgecloudError(
      CODES.BAD_INPUT,
      `policy.edgeRuntime ${JSON.stringify(value)} is not verified for ${manifest.name} v${manifest.version}; ${what}: ${allowed}`,
    );
  }
  return { candidates: kept, reason: `policy.edgeRuntime forces ${value}` };
}

/**
 * The runtimes whose cache state planEdgeRuntime would weigh (pass it `cached` for these): on a
 * slow network and with nothing forced, the ranked runtimes bigger than the smallest download.
 */
export function runtimesToProbe({ manifest, policy, device }) {
  if (policy.edgeRuntime != null || !manifest.edge || !slowNetwork(device, policy)) return [];
  const ranked = rankedRuntimes(manifest.edge, policy) ?? [];
  const smallest = Math.min(...ranked.map(bytes));
  return [...new Set(ranked.filter((c) => bytes(c) > smallest).map((c) => c.runtime))];
}

/**
 * Which edge runtime/backend pairs to try, in order, on which file, and why:
 * {candidates: [{runtime, backend, file}], reason}.
 *   - `policy.edgeRuntime` set: only the pairs it names (bad-input when none of them is verified);
 *   - else the fastest verified pair (model.json's `edge.ranking`, measured by `edgecloud verify`);
 *     but on a slow network (see slowNetwork) a pair whose runtime is neither the smallest download
 *     nor in `cached` (runtime → its files are in the HTTP cache) goes after the ones that are;
 *   - a model with no ranking yet: what chooseEdgeRuntime allows (model.json's `edge.runtime`).
 * The worker tries the candidates in order; the first that loads and runs once wins.
 */
export function planEdgeRuntime({ manifest, policy, device, cached = {} }) {
  const edge = manifest.edge;
  if (!edge || !edge.file) throw new Error(`model.json of ${manifest.name} v${manifest.version} names no edge file`);
  const ranked = rankedRuntimes(edge, policy);
  if (!ranked || ranked.length === 0) {
    const plan = chooseEdgeRuntime(manifest, policy);
    const candidates = plan.backends.map((backend) => ({ runtime: plan.runtime, backend, file: edge.file }));
    if (policy.edgeRuntime != null) return forced(candidates, policy.edgeRuntime, manifest, false);
    const why = ranked ? 'no runtime passed the browser verification' : 'no browser ranking in model.json (edgecloud verify writes it)';
    return { candidates, reason: `${why}: ${plan.runtime} as model.json's edge entry allows` };
  }
  const plain = (list) => list.map(({ runtime, backend, file }) => ({ runtime, backend, file }));
  const name = (c) => pairName(c, edge.file);
  if (policy.edgeRuntime != null) {
    const choice = forced(ranked, policy.edgeRuntime, manifest, true);
    return { candidates: plain(choice.candidates), reason: choice.reason };
  }
  const fastest = ranked[0];
  const others = ranked.length > 1 ? ` (next: ${name(ranked[1])}, ${ms(ranked[1])})` : '';
  const slow = slowNetwork(device, policy);
  if (!slow) return { candidates: plain(ranked), reason: `fastest verified: ${name(fastest)}, ${ms(fastest)}${others}` };
  const smallest = Math.min(...ranked.map(bytes));
  const affordable = (c) => cached[c.runtime] === true || bytes(c) <= smallest;
  const order = [...ranked.filter(affordable), ...ranked.filter((c) => !affordable(c))];
  const pick = order[0];
  if (pick === fastest) {
    const why = cached[fastest.runtime] === true ? 'its files are cached' : 'it is also the smallest download';
    return { candidates: plain(order), reason: `fastest verified: ${name(fastest)}, ${ms(fastest)}; ${slow} but ${why}` };
  }
  return {
    candidates: plain(order),
    reason: `${slow} and ${fastest.runtime}'s ${megabytes(fastest)} are not cached: ${name(pick)} (${megabytes(pick)}, ` +
      `${ms(pick)}) instead of the fastest verified, ${name(fastest)} (${ms(fastest)})`,
  };
}
