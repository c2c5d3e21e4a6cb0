import 'onnx-edgecloud-web/train-worker.js';
