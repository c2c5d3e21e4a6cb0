"""The model registry's contract: its folder layout and the model.json / latest.json it holds (leaf package)."""
