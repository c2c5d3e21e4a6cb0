// Entry points that `edgecloud verify` and the tests call through page.evaluate().

import { createOnnxjsSession, runOnnxjs } from '../src/onnxjs-runtime.js';
import { predictCloud } from '../src/cloud.js';
import { createOrtSession, runOrt } from '../src/ortweb-runtime.js';

async function timeRuns(run, repeats) {
  const times = [];
  let outputs;
  for (let i = 0; i < repeats; i += 1) {
    const start = performance.now();
    outputs = await run();
    times.push(performance.now() - start);
  }
  times.sort((a, b) => a - b);
  return { outputs, medianMs: times[Math.floor(times.length / 2)] };
}

window.harness = {
  /** Run a model on one ONNX.js backend; errors come back as {error} so a test can assert on them. */
  async runOnnxjs({ modelUrl, backend, feeds, inputNames, repeats = 1 }) {
    try {
      const session = await createOnnxjsSession(modelUrl, backend);
      return await timeRuns(() => runOnnxjs(session, feeds, inputNames), repeats);
    } catch (error) {
      return { error: String(error && error.message ? error.message : error) };
    }
  },
  /** Same on onnxruntime-web (wasm). */
  async runOrtWeb({ modelUrl, feeds, repeats = 1 }) {
    try {
      const session = await createOrtSession(modelUrl);
      return await timeRuns(() => runOrt(session, feeds), repeats);
    } catch (error) {
      return { error: String(error && error.message ? error.message : error) };
    }
  },
  /**
   * Many inputs on one model (for `edgecloud verify`): outputs per input, median latency of
   * `repeats` runs of the first input. `runtime` is 'onnxjs' (with `backend`) or 'ortweb'. An
   * ONNX.js session refuses any input shape but its first run's, so ONNX.js gets one session per
   * shape, as the edge worker does (verify also sends a batch of several examples).
   */
  async runMany({ runtime, modelUrl, backend, feedsList, inputNames, repeats = 10 }) {
    const sessions = new Map();
    const sessionFor = async (feeds) => {
      const key = runtime === 'onnxjs' ? inputNames.map((name) => feeds[name]?.shape.join('x') ?? '').join('|') : '';
      if (!sessions.has(key)) {
        sessions.set(key, runtime === 'onnxjs' ? await createOnnxjsSession(modelUrl, backend) : await createOrtSession(modelUrl));
      }
      return sessions.get(key);
    };
    try {
      await sessionFor(feedsList[0]);
    } catch (error) {
      return { loads: false, error: String(error && error.message ? error.message : error) };
    }
    const run = async (feeds) => {
      const session = await sessionFor(feeds);
      return runtime === 'onnxjs' ? runOnnxjs(session, feeds, inputNames) : runOrt(session, feeds);
    };
    try {
      const outputs = [];
      for (const feeds of feedsList) outputs.push(await run(feeds));
      const { medianMs } = await timeRuns(() => run(feedsList[0]), repeats);
      return { loads: true, outputs, medianMs };
    } catch (error) {
      return { loads: true, error: String(error && error.message ? error.message : error) };
    }
  },
  async predictCloud({ cloudUrl, name, feeds }) {
    try {
      return { outputs: await predictCloud(cloudUrl, name, feeds) };
    } catch (error) {
      return { error: String(error.message ?? error) };
    }
  },
};
window.harnessReady = true;
