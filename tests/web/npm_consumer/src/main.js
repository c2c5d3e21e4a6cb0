// A page as an author writes it after `npm install onnx-edgecloud-web`: the handler comes from the
// package by name, esbuild bundles it, and the page serves the worker bundles and the runtime files
// (copied with `npx onnx-edgecloud-web-assets runtimes`) itself. The test drives `window.app`.
import { CODES, EdgecloudError, PredictionHandler } from 'onnx-edgecloud-web';

const ASSETS = {
  onnxjs: './runtimes/onnxjs/',
  onnxruntimeWeb: './runtimes/onnxruntime-web/',
  edgeWorker: './edge-worker.js',
  trainWorker: './train-worker.js',
};

let handler = null;

/** Errors come back as {error, code, isEdgecloudError} so the test can read them through Playwright. */
async function answer(call) {
  try {
    return await call();
  } catch (error) {
    return { error: error.message, code: error.code ?? null, isEdgecloudError: error instanceof EdgecloudError };
  }
}

window.app = {
  codes: CODES,
  start: (options) => answer(async () => {
    if (handler) handler.dispose();
    handler = await PredictionHandler.create({ ...options, assets: ASSETS, update: { enabled: false } });
    return handler.edgeReady();
  }),
  predict: (input, privacy) => answer(() => handler.predict(input, { privacy })),
  personalize: (data, options) => answer(() => handler.personalize(data, options)),
  personalization: () => handler.personalization(),
  status: () => handler.status(),
};
document.getElementById('state').textContent = 'ready';
