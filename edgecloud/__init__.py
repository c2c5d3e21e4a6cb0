"""onnx-edgecloud: one ONNX model served by Multi Model Server and run in the browser.

This package is the command line and the pipeline that strings the stages together; the
work itself lives in `export` (framework → ONNX) and `mms_handlers` (the MMS side).
"""

__version__ = "0.1.0"
