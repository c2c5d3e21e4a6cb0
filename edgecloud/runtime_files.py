"""What each browser runtime costs a first visit: the files the page fetches to run it, and their size.

The lists are the files Chromium fetches when the Prediction Handler loads each runtime
(tests/web/test_runtime_choice.py checks them against the requests it sees); sizes are read from
node_modules, uncompressed (the static server sends them as they are). `verify` records them in
model.json's `edge.ranking`, so the page can weigh a download against a speed-up before fetching it.
"""

from __future__ import annotations

from .paths import node_modules

# runtime → files under node_modules, in the order the page fetches them.
RUNTIME_FILES: dict[str, tuple[str, ...]] = {
    "onnxjs": ("onnxjs/dist/onnx.min.js", "onnxjs/dist/onnx-wasm.wasm"),
    "onnxruntime-web": (
        "onnxruntime-web/dist/ort.wasm.min.mjs",
        "onnxruntime-web/dist/ort-wasm-simd-threaded.mjs",
        "onnxruntime-web/dist/ort-wasm-simd-threaded.wasm",
    ),
}


def download_bytes(runtime: str) -> int | None:
    """Bytes a first visit downloads for `runtime`, or None when a file is missing from node_modules."""
    paths = [node_modules() / name for name in RUNTIME_FILES[runtime]]
    if not all(path.is_file() for path in paths):
        return None
    return sum(path.stat().st_size for path in paths)
