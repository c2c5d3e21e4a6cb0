"""The model registry: its folder layout (`layout`) and the model.json / latest.json it holds (`model_json`),
owned in one place and importable from every package."""

from .layout import LATEST_NAME, MANIFEST_NAME, Registry, RegistryError, Staging, file_digest, parse_version, write_json_atomic

__all__ = ["LATEST_NAME", "MANIFEST_NAME", "Registry", "RegistryError", "Staging", "file_digest", "parse_version", "write_json_atomic"]
