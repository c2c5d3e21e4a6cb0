// The training step (train.onnx, docs/training.md) runs here, in a module Web Worker, a chunk of
// steps per message, so the page never blocks. The worker holds the examples, the parameters and
// the optimizer state between chunks; the page decides which rows make each batch (its shuffle
// state is checkpointed there) and stores what each chunk returns.
// Protocol (one reply per message, matched by id; same shape as edge-worker.js):
//   {id, type: 'load', runtime, backends, model: ArrayBuffer, training, examples, params, state,
//    assets: {onnxjs, onnxruntimeWeb}}
//       → {backend, attempts}
//   {id, type: 'chunk', batches: [[row, ...], ...], firstStep, learningRate}
//       → {losses: [...], params: {NAME: Float32Array}, state: {NAME: Float32Array}}
//   {id, type: 'parameters'} → {params, state}
// Replies are {id, ok: true, result} or {id, ok: false, error}.

import { useAssets } from './assets.js';
import { messageOf, serveMessages } from './worker-channel.js';
import { createOnnxjsSession, loadOnnxjs, runOnnxjs } from './onnxjs-runtime.js';
import { createOrtSession, runOrt } from './ortweb-runtime.js';
import { batchFeeds } from './train-data.js';

let job = null; // {run(feeds) → outputs, training, examples, params, state}

async function openSession(runtime, backend, model) {
  if (runtime === 'onnxjs') {
    const onnx = await loadOnnxjs();
    onnx.backend.wasm.worker = 0; // already off the main thread (see edge-worker.js)
    const session = await createOnnxjsSession(new Uint8Array(model), backend);
    return (feeds) => runOnnxjs(session, feeds); // by name: the step's input order is the graph's business
  }
  if (runtime === 'onnxruntime-web') {
    if (backend !== 'wasm') throw new Error(`onnxruntime-web backend ${backend} is not offered (wasm only)`);
    const session = await createOrtSession(model);
    return (feeds) => runOrt(session, feeds);
  }
  throw new Error(`unknown edge runtime ${runtime}`);
}

const tensor = (shape, data) => ({ dtype: 'float32', shape, data });

/** One optimizer step on `rows`: the loss before it; params and state replaced by the step's outputs. */
async function step(current, rows, stepNumber, learningRate) {
  const { training } = current;
  const feeds = batchFeeds(current.examples, rows, training);
  feeds[training.inputs.learning_rate] = tensor([1], Float32Array.of(learningRate));
  if (training.inputs.step) feeds[training.inputs.step] = tensor([1], Float32Array.of(stepNumber));
  for (const p of training.parameters) feeds[p.input] = tensor(p.shape, current.params[p.name]);
  for (const s of training.state) feeds[s.input] = tensor(s.shape, current.state[s.name]);
  const outputs = await current.run(feeds);
  const take = (name) => {
    if (!outputs[name]) throw new Error(`the step graph gave no output '${name}'`);
    return Float32Array.from(outputs[name].data);
  };
  const loss = take(training.outputs.loss)[0];
  const params = Object.fromEntries(training.parameters.map((p) => [p.name, take(p.output)]));
  const state = Object.fromEntries(training.state.map((s) => [s.name, take(s.output)]));
  return { loss, params, state };
}

/** Try each backend in order; the first that loads the step AND runs it once (result discarded) wins. */
async function load({ runtime, backends, model, training, examples, params, state, assets }) {
  job = null;
  useAssets(assets);
  const attempts = [];
  for (const backend of backends) {
    try {
      const candidate = { run: await openSession(runtime, backend, model), training, examples, params, state };
      const probe = await step(candidate, [0], 1, 0);
      if (!Number.isFinite(probe.loss)) throw new Error(`the step's loss on the first example is ${probe.loss}`);
      job = candidate;
      return { backend: `${runtime}/${backend}`, attempts };
    } catch (error) {
      attempts.push({ backend: `${runtime}/${backend}`, error: messageOf(error) });
    }
  }
  const detail = attempts.map((a) => `${a.backend}: ${a.error}`).join('; ');
  throw new Error(`no ${runtime} backend could run the training step (${detail || 'no backend to try'})`);
}

async function chunk({ batches, firstStep, learningRate }) {
  if (!job) throw new Error('no training step is loaded in the worker');
  const losses = [];
  for (const [i, rows] of batches.entries()) {
    const next = await step(job, rows, firstStep + i, learningRate);
    if (!Number.isFinite(next.loss)) throw new Error(`the loss is ${next.loss} at step ${firstStep + i}: training diverged (try a smaller learningRate)`);
    job.params = next.params;
    job.state = next.state;
    losses.push(next.loss);
  }
  return { losses, params: job.params, state: job.state };
}

function parameters() {
  if (!job) throw new Error('no training step is loaded in the worker');
  return { params: job.params, state: job.state };
}

serveMessages({ load, chunk, parameters });
