#!/usr/bin/env node
// onnx-edgecloud-web-assets DIR: copy the runtime files a page must serve itself (nothing comes from
// a CDN) out of the installed onnxjs and onnxruntime-web packages, into DIR/onnxjs/ and
// DIR/onnxruntime-web/: the folders `PredictionHandler.create({assets: {onnxjs, onnxruntimeWeb}})`
// points at. Only the files the handler loads: ONNX.js's script and wasm, onnxruntime-web's wasm
// build (its loader, its emscripten glue, its ~14 MB binary).

import { copyFileSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

import { RUNTIME_FILES } from '../src/assets.js';

const require = createRequire(import.meta.url);
const FOLDER_NAMES = { onnxjs: 'onnxjs', onnxruntimeWeb: 'onnxruntime-web' }; // DIR/<name>/, as the docs' assets example

/** The package's dist folder, found the way Node resolves it from here (onnxruntime-web's exports hide package.json). */
function distOf(runtime) {
  if (runtime === 'onnxruntime-web') return dirname(require.resolve('onnxruntime-web/wasm'));
  return join(dirname(require.resolve(`${runtime}/package.json`)), 'dist');
}

const [target, ...extra] = process.argv.slice(2);
if (!target || extra.length || target.startsWith('-')) {
  console.error('usage: onnx-edgecloud-web-assets DIR  (copies DIR/onnxjs/ and DIR/onnxruntime-web/)');
  process.exit(2);
}
try {
  for (const [runtime, { folder, files }] of Object.entries(RUNTIME_FILES)) {
    const dist = distOf(runtime);
    const into = join(target, FOLDER_NAMES[folder]);
    mkdirSync(into, { recursive: true });
    for (const file of files) copyFileSync(join(dist, file), join(into, file));
    console.log(`${into}/: ${files.join(', ')}`);
  }
} catch (error) {
  console.error(`onnx-edgecloud-web-assets: ${error.message}`);
  process.exit(1);
}
