#!/usr/bin/env node
// onnx-edgecloud-web-assets DIR: copy the runtime files a page must serve itself (nothing comes from
// a CDN) out of the installed onnxjs and onnxruntime-web packages, into DIR/onnxjs/ and
// DIR/onnxruntime-web/: the folders `PredictionHandler.create({assets: {onnxjs, onnxruntimeWeb}})`
// points at. Only the files the handler loads: ONNX.js's script and wasm, onnxruntime-web's wasm
// build (its loader, its emscripten glue, its ~14 MB binary).

import { copyFileSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);

/** Folder → [package's dist folder, files]; the dist folders found the way Node resolves the packages. */
const RUNTIME_FILES = {
  onnxjs: [() => join(dirname(require.resolve('onnxjs/package.json')), 'dist'), ['onnx.min.js', 'onnx-wasm.wasm']],
  'onnxruntime-web': [
    () => dirname(require.resolve('onnxruntime-web/wasm')),
    ['ort.wasm.min.mjs', 'ort-wasm-simd-threaded.mjs', 'ort-wasm-simd-threaded.wasm'],
  ],
};

const [target, ...extra] = process.argv.slice(2);
if (!target || extra.length || target.startsWith('-')) {
  console.error('usage: onnx-edgecloud-web-assets DIR  (copies DIR/onnxjs/ and DIR/onnxruntime-web/)');
  process.exit(2);
}
try {
  for (const [folder, [distOf, files]] of Object.entries(RUNTIME_FILES)) {
    const dist = distOf();
    mkdirSync(join(target, folder), { recursive: true });
    for (const file of files) copyFileSync(join(dist, file), join(target, folder, file));
    console.log(`${join(target, folder)}/: ${files.join(', ')}`);
  }
} catch (error) {
  console.error(`onnx-edgecloud-web-assets: ${error.message}`);
  process.exit(1);
}
