"""What a node reads, counting its subgraphs (a Loop body reads tensors of the enclosing graph by name).

ONNX lets a Loop/If/Scan body use any tensor of an enclosing scope without listing it as an input;
cutting the graph (compose.py) and choosing the trainable tail (trainable.py) must count those reads.
"""

from __future__ import annotations

import onnx


def subgraphs(node: onnx.NodeProto) -> list[onnx.GraphProto]:
    found: list[onnx.GraphProto] = []
    for attribute in node.attribute:
        found += [attribute.g] if attribute.type == onnx.AttributeProto.GRAPH else list(attribute.graphs)
    return found


def _outer_reads(graph: onnx.GraphProto) -> set[str]:
    """Names a subgraph (Loop/If/Scan body) reads from its enclosing scopes, not made inside it."""
    local = {value.name for value in graph.input} | {init.name for init in graph.initializer}
    local |= {name for node in graph.node for name in node.output}
    read = {name for node in graph.node for name in reads(node)}
    return {name for name in read if name and name not in local}


def reads(node: onnx.NodeProto) -> list[str]:
    """A node's inputs plus the outer-scope names its subgraphs read (a Loop body may read a
    tensor of the main graph without listing it as an input: the cut must keep its producer)."""
    implicit: list[str] = []
    for graph in subgraphs(node):
        implicit.extend(sorted(_outer_reads(graph)))
    return [*node.input, *implicit]
