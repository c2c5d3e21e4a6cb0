"""Check KServe custom resources against the kserve SDK's own models; run by the kserve venv.

KServe's CRD YAML is not published on a package registry we can reach, so `kubernetes-validate`
cannot check an InferenceService. The kserve SDK's models are generated from the same OpenAPI
schema as the CRD: each class lists its fields (`attribute_map`) and their types
(`openapi_types`), and the core types they embed (V1Container, V1Volume…) are the kubernetes
client's pydantic models, which validate strictly and refuse unknown fields. Neither refuses an
unknown field of a KServe class when it deserialises, hence this walk.

Reads JSON documents (a list) on stdin; prints one problem per line and exits 1, or exits 0.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

import kserve.models
import kubernetes.client
import pydantic

PRIMITIVES: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "int": (int,),
    "bool": (bool,),
    "float": (int, float),
    "object": (object,),
    "datetime": (str,),
}
CUSTOM_RESOURCES = {("serving.kserve.io/v1beta1", "InferenceService"): "V1beta1InferenceService"}


def check(value: Any, type_name: str, path: str) -> list[str]:
    """Problems of `value` against the SDK type `type_name` (as written in `openapi_types`)."""
    if value is None:
        return []
    if match := re.fullmatch(r"list\[(.+)\]", type_name):
        if not isinstance(value, list):
            return [f"{path}: expected a list, got {type(value).__name__}"]
        return [p for i, item in enumerate(value) for p in check(item, match[1], f"{path}[{i}]")]
    if match := re.fullmatch(r"dict\(str, (.+)\)", type_name):
        if not isinstance(value, dict):
            return [f"{path}: expected a mapping, got {type(value).__name__}"]
        return [p for key, item in value.items() for p in check(item, match[1], f"{path}.{key}")]
    if type_name in PRIMITIVES:
        wrong = isinstance(value, bool) and type_name in ("int", "float")
        if wrong or not isinstance(value, PRIMITIVES[type_name]):
            return [f"{path}: expected {type_name}, got {value!r}"]
        return []
    if type_name == "ResourceQuantity":
        return [] if isinstance(value, (str, int, float)) and not isinstance(value, bool) else [f"{path}: not a quantity"]
    if hasattr(kserve.models, type_name):
        return check_kserve(value, getattr(kserve.models, type_name), path)
    core = getattr(kubernetes.client, type_name, None) or getattr(kubernetes.client, type_name.replace("K8sIoApiAppsV1", "V1"), None)
    if core is None:
        return [f"{path}: the SDK names a type it does not define: {type_name}"]
    try:
        core.model_validate(value)
    except pydantic.ValidationError as error:
        return [f"{path}.{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors()]
    return []


def check_kserve(value: Any, model: type, path: str) -> list[str]:
    if not isinstance(value, dict):
        return [f"{path}: expected an object ({model.__name__}), got {type(value).__name__}"]
    by_key = {key: attribute for attribute, key in model.attribute_map.items()}
    problems = [f"{path}.{key}: unknown field of {model.__name__}" for key in value if key not in by_key]
    for key, item in value.items():
        if key in by_key:
            problems += check(item, model.openapi_types[by_key[key]], f"{path}.{key}")
    return problems


def main() -> int:
    problems: list[str] = []
    for index, document in enumerate(json.load(sys.stdin)):
        name = CUSTOM_RESOURCES.get((document.get("apiVersion"), document.get("kind")))
        if name is None:
            problems.append(f"document {index}: not a custom resource this check knows")
            continue
        problems += check_kserve(document, getattr(kserve.models, name), document["kind"])
    print("\n".join(problems))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
