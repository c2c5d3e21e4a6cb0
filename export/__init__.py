"""Framework → ONNX export, parity checks against the source framework, and model.json.

The public entry is :func:`export.pipeline.export_model`; one converter module per framework
(`keras.py`, later `torch.py`, `sklearn.py`, `mxnet.py`) turns a saved model into an ONNX
graph plus a callable that runs the source framework, so parity is checked the same way for all.
"""
