"""Framework → ONNX export, parity checks against the source framework, and model.json.

The public entry is :func:`export.pipeline.export_model` (and, for a live PyTorch module,
:func:`export.torch_module.export_torch_module`); one converter module per framework (`keras.py`,
`torch.py`, `sklearn.py`, `mxnet.py` with its shims in `mxnet_compat.py`) turns a saved model
into an ONNX graph plus a callable that runs the source framework, so parity is checked the
same way for all.
"""
