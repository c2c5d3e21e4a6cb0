"""Browser lowering: rewrite a model into what ONNX.js 0.1.8 runs, checked pass by pass.

`rules` holds ONNX.js's operator/opset table as data and names what a backend cannot run;
`passes/` are the rewrites; `lowering.lower` strings them together; `artifact` decides which
files the registry keeps and what model.json says about the browser side.
"""
