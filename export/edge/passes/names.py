"""Node names made unique: ONNX.js refuses a graph with two nodes of one name ("duplicated node
name"), which onnx allows and spox writes (`F0::anon`); onnxruntime does not care."""

from __future__ import annotations

import onnx

from ...verify import Feeds
from ..graph import Names


def run(model: onnx.ModelProto, sample: Feeds) -> onnx.ModelProto | None:
    seen: set[str] = set()
    names = Names(model)
    changed = False
    for node in model.graph.node:
        if node.name in seen:
            node.name = names.fresh(node.name or node.op_type)
            changed = True
        seen.add(node.name)
    return model if changed else None
