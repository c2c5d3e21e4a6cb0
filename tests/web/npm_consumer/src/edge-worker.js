import 'onnx-edgecloud-web/edge-worker.js';
