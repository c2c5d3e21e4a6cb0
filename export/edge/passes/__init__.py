"""Lowering passes. Each is `run(model, sample) -> ModelProto | None` (None: nothing to do) and
edits a copy it is given; `export.edge.lowering` checks every result against the unlowered model."""
