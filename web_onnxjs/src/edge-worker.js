// The edge model runs here, in a module Web Worker, so a long inference never freezes the page.
// Protocol (one reply per message, matched by id):
//   {id, type: 'load', candidates: [{runtime, backend}], model: ArrayBuffer, inputs: [spec], assets: {onnxjs, onnxruntimeWeb}}
//       → {backend: 'runtime/backend', attempts: [{backend, error}]}
//   {id, type: 'run', feeds} → {outputs, workerMs}
// Replies are {id, ok: true, result} or {id, ok: false, error}.

import { useAssets } from './assets.js';
import { messageOf, serveMessages } from './worker-channel.js';
import { createOnnxjsSession, loadOnnxjs, runOnnxjs } from './onnxjs-runtime.js';
import { createOrtSession, runOrt } from './ortweb-runtime.js';
import { zeroFeeds } from './feeds.js';

let active = null; // {run(feeds) → outputs}
const MAX_SHAPES = 4; // ONNX.js sessions kept per loaded model, one per input shape

async function openSession(runtime, backend, model, inputNames) {
  if (runtime === 'onnxjs') {
    const onnx = await loadOnnxjs();
    // Already off the main thread: ONNX.js must not spawn its own wasm workers (it would look
    // for onnx-worker.js next to this file).
    onnx.backend.wasm.worker = 0;
    // An ONNX.js session keeps the input shapes of its first run and refuses any other
    // ("input tensor[0] check failed: expected shape '[1,512]'"): keep one session per shape.
    const sessions = new Map();
    const bytes = new Uint8Array(model);
    return {
      async run(feeds) {
        const key = inputNames.map((name) => (feeds[name] ? feeds[name].shape.join('x') : '')).join('|');
        let session = sessions.get(key);
        if (!session) {
          session = await createOnnxjsSession(bytes, backend);
          if (sessions.size >= MAX_SHAPES) sessions.delete(sessions.keys().next().value);
          sessions.set(key, session);
        }
        return runOnnxjs(session, feeds, inputNames);
      },
    };
  }
  if (runtime === 'onnxruntime-web') {
    if (backend !== 'wasm') throw new Error(`onnxruntime-web backend ${backend} is not offered (wasm only)`);
    const session = await createOrtSession(model);
    return { run: (feeds) => runOrt(session, feeds) };
  }
  throw new Error(`unknown edge runtime ${runtime}`);
}

/** Try each (runtime, backend) in order; the first that loads the model AND runs it once on zeros wins. */
async function load({ candidates, model, inputs, assets }) {
  active = null;
  useAssets(assets);
  const inputNames = inputs.map((spec) => spec.name);
  const attempts = [];
  for (const { runtime, backend } of candidates) {
    try {
      const session = await openSession(runtime, backend, model, inputNames);
      await session.run(zeroFeeds(inputs));
      active = session;
      return { backend: `${runtime}/${backend}`, attempts };
    } catch (error) {
      attempts.push({ backend: `${runtime}/${backend}`, error: messageOf(error) });
    }
  }
  const detail = attempts.map((a) => `${a.backend}: ${a.error}`).join('; ');
  const runtimes = [...new Set(candidates.map((c) => c.runtime))].join(' or ') || 'edge';
  throw new Error(`no ${runtimes} backend could run the model (${detail || 'no backend to try'})`);
}

let queue = Promise.resolve();

/** One run at a time: neither runtime's sessions may be run concurrently. */
function run({ feeds }) {
  const next = queue.then(async () => {
    if (!active) throw new Error('no model is loaded in the edge worker');
    const start = performance.now();
    const outputs = await active.run(feeds);
    return { outputs, workerMs: performance.now() - start };
  });
  queue = next.catch(() => {});
  return next;
}

serveMessages({ load, run });
