"""The training step as an ONNX graph (docs/training.md): export side and an onnxruntime runner."""
