"""Issue 28 on a PyTorch text classifier that reads int64 token ids (nn.Embedding → LayerNorm →
self-attention → mean → Linear): `--trainable all` trains every module parameter, the embedding
table included, equal to torch.optim.Adam after 1 and 10 steps (≤ 1e-5) and on the personalised
model's predictions; the default head step trains on ids with SGD; ids outside the vocabulary or
that are not whole numbers are one-line errors; the step's edge entry says why ONNX.js cannot run it;
`edgecloud verify` feeds the step ids from the vocabulary; an op the step cannot differentiate in
`all` is one line, exit 2, nothing written."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from export.train.reference import match
from export.train.runner import base_parameters, personalized_model, train
from export.train.torch_reference import TorchTrainer

from .torch_layer_models import CLASSES, TOKENS, VOCAB, text_classifier

pytestmark = pytest.mark.torch
BATCH, RATE = 4, 0.01


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, object]]:
    import torch

    from export.torch_module import export_torch_module

    out = tmp_path_factory.mktemp("text-registry")
    found = {}
    for version, (trainable, optimizer) in enumerate([("all", "adam"), (None, "sgd")], start=1):
        module = text_classifier()
        result = export_torch_module(
            module,
            torch.randint(0, VOCAB, (1, TOKENS)),
            name="text",
            version=str(version),
            out=out,
            trainable=trainable,
            loss="cross-entropy",
            optimizer=optimizer,
            learning_rate=RATE,
            train_batch=BATCH,
        )
        found[trainable or "default"] = (result.version_dir, module)
    return found


def training(version_dir: Path) -> dict:
    return json.loads((version_dir / "model.json").read_text())["training"]


def test_all_trains_every_module_parameter_like_torch_adam(exported) -> None:
    version_dir, module = exported["all"]
    entry = training(version_dir)
    parameters = dict(module.named_parameters())
    listed = {p["name"]: p["shape"] for p in entry["parameters"]}
    assert entry["trainable"] == "all" and entry["trained"]["tensors"] == len(listed) == len(parameters)
    assert entry["trained"]["parameters"] == sum(p.numel() for p in parameters.values())
    # torch.onnx renames the Linear weights it transposes for a MatMul: each listed tensor is told by its values
    matched = match(base_parameters(version_dir), TorchTrainer(module, ["input"], ["output"]).variables())
    assert sorted(m.key for m in matched.values()) == sorted(parameters)
    assert {"embedding.weight", "norm.weight", "norm.bias", "head.weight", "head.bias"} <= set(listed)
    assert entry["inputs"]["data"] == [
        {"name": "input", "input": "input", "dtype": "int64", "shape": [BATCH, TOKENS], "range": [0, VOCAB - 1]}
    ]
    assert entry["parity"]["passed"] and set(entry["parity"]["steps"]) == {"1", "10"}
    assert max(entry["parity"]["steps"].values()) <= 1e-5, entry["parity"]


def test_the_default_head_step_trains_on_token_ids_like_torch_sgd(exported) -> None:
    version_dir, module = exported["default"]
    entry = training(version_dir)
    assert entry["trainable"] == "head" and sorted(p["name"] for p in entry["parameters"]) == ["head.bias", "head.weight"]
    assert entry["optimizer"]["kind"] == "sgd" and max(entry["parity"]["steps"].values()) <= 1e-5, entry["parity"]


def _torch_adam(module, ids: np.ndarray, labels: np.ndarray, steps: int):
    import torch

    trained = copy.deepcopy(module).eval()
    optimizer = torch.optim.Adam(trained.parameters(), lr=RATE)
    for step in range(steps):
        rows = slice(step * BATCH, (step + 1) * BATCH)
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(trained(torch.from_numpy(ids[rows])), torch.from_numpy(labels[rows]))
        loss.backward()
        optimizer.step()
    return trained


def test_the_runner_trains_the_embedding_table_like_torch_adam(exported) -> None:
    import torch

    version_dir, module = exported["all"]
    rng = np.random.default_rng(4)
    ids = rng.integers(0, VOCAB // 2, (2 * BATCH, TOKENS))  # the upper half of the vocabulary is never seen
    labels = rng.integers(0, CLASSES, 2 * BATCH)
    ours = train(version_dir, ids, labels, learning_rate=RATE)
    theirs = _torch_adam(module, ids, labels, steps=2)
    table, base = ours.parameters["embedding.weight"], module.embedding.weight.detach().numpy()
    np.testing.assert_allclose(table, theirs.embedding.weight.detach().numpy(), atol=1e-5)
    assert np.abs(table[: VOCAB // 2] - base[: VOCAB // 2]).max() > 1e-3  # seen ids moved
    np.testing.assert_array_equal(table[VOCAB // 2 :], base[VOCAB // 2 :])  # unseen ids: zero gradient, Adam moves nothing
    probe = rng.integers(0, VOCAB, (3, TOKENS))
    session = ort.InferenceSession(personalized_model(version_dir, ours.parameters), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        want = theirs(torch.from_numpy(probe)).numpy()
    np.testing.assert_allclose(session.run(None, {"input": probe})[0], want, atol=1e-5)


@pytest.mark.parametrize(
    "ids, message",
    [
        (np.full((2, TOKENS), VOCAB), f"input 'input': id {VOCAB} is outside the vocabulary \\[0, {VOCAB - 1}\\]"),
        (np.full((2, TOKENS), -1), f"input 'input': id -1 is outside the vocabulary \\[0, {VOCAB - 1}\\]"),
        (np.full((2, TOKENS), 1.5), "input 'input' takes int64 ids: got float64 values that are not whole numbers"),
    ],
)
def test_bad_ids_are_one_line_errors(exported, ids: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=f"^{message}$"):
        train(exported["all"][0], ids, np.zeros(2, np.int64))


def test_the_step_edge_entry_says_onnxjs_cannot_take_ids(exported) -> None:
    edge = training(exported["all"][0])["edge"]
    assert edge["runtime"] == "onnxruntime-web" and edge["file"] == "train.onnx" and edge["backends"] == []
    for reasons in edge["blockers"].values():
        assert reasons == ["integer input(s) input: ONNX.js has no int64 tensors, the step runs on onnxruntime-web"]


def test_verify_feeds_the_step_ids_from_the_vocabulary(exported) -> None:
    from edgecloud.train_verify import step_feeds
    from export.verify import onnxruntime_runner

    version_dir = exported["all"][0]
    manifest = json.loads((version_dir / "model.json").read_text())
    run = onnxruntime_runner(str(version_dir / "train.onnx"))
    for feeds in step_feeds(version_dir, manifest, count=3):
        ids = feeds["input"]
        assert ids.dtype == np.int64 and ids.shape == (BATCH, TOKENS) and 0 <= ids.min() and ids.max() <= VOCAB - 1
        assert np.isfinite(run(feeds)["loss"]).all()


def test_an_op_the_step_cannot_differentiate_is_one_line_exit_2_nothing_written(tmp_path: Path) -> None:
    """The same ids through an embedding, pooled by a max over tokens (ReduceMax, which the step has no
    gradient for), exported from a TorchScript file by the CLI with --trainable all."""
    import subprocess
    import sys

    import torch

    class MaxPooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embedding, self.head = torch.nn.Embedding(VOCAB, 4), torch.nn.Linear(4, CLASSES)

        def forward(self, ids):
            return self.head(self.embedding(ids).amax(dim=1))

    torch.manual_seed(0)
    sample = np.random.default_rng(0).integers(0, VOCAB, (1, TOKENS))
    torch.jit.trace(MaxPooled().eval(), torch.from_numpy(sample)).save(str(tmp_path / "max.pt"))
    np.save(tmp_path / "ids.npy", sample)
    command = [sys.executable, "-m", "edgecloud", "export", str(tmp_path / "max.pt"), "--sample", str(tmp_path / "ids.npy")]
    done = subprocess.run(
        [*command, "--name", "max", "--out", str(tmp_path / "out"), "--trainable", "all"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("edgecloud export: error")]
    assert len(lines) == 1 and "uses ReduceMax, which the training step cannot differentiate" in lines[0], done.stderr
    assert "Traceback" not in done.stderr and not any((tmp_path / "out").rglob("model.json"))
