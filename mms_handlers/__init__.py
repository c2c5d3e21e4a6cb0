"""The Multi Model Server side: the custom service (`service.handle`), engines, codecs, .mar, server control.

Nothing here imports `export` or a training framework: the worker only needs numpy, the
engine's runtime and the model folder (model.onnx + model.json) that the .mar carries.
"""
