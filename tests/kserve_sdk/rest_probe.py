"""Talk OIP V2 to a server with the kserve SDK's own REST client, unchanged; run by the kserve venv.

Reads {"url", "model", "inputs": {NAME: nested list}} as JSON on stdin and prints
{"live", "ready", "model_ready", "outputs": {NAME: {"shape", "data"}}}; an HTTP error is printed
as {"status", "body"} with exit code 1.
"""

from __future__ import annotations

import asyncio
import json
import sys

import httpx
import numpy as np
from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig


async def probe(url: str, model: str, inputs: dict[str, list]) -> dict:
    async with InferenceRESTClient(RESTConfig(protocol="v2", retries=0, timeout=30)) as client:
        report = {
            "live": await client.is_server_live(url),
            "ready": await client.is_server_ready(url),
            "model_ready": await client.is_model_ready(url, model),
        }
        tensors = []
        for name, value in inputs.items():
            array = np.asarray(value, dtype=np.float32)
            tensor = InferInput(name, list(array.shape), "FP32")
            tensor.set_data_from_numpy(array, binary_data=False)
            tensors.append(tensor)
        answer = await client.infer(url, InferRequest(model, tensors), model_name=model)
        report["outputs"] = {o.name: {"shape": list(o.shape), "data": o.as_numpy().tolist()} for o in answer.outputs}
        return report


def main() -> int:
    request = json.load(sys.stdin)
    try:
        report = asyncio.run(probe(request["url"], request["model"], request["inputs"]))
    except httpx.HTTPStatusError as error:
        print(json.dumps({"status": error.response.status_code, "body": error.response.text}))
        return 1
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
