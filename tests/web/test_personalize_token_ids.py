"""Issue 28 in the page, on token ids: the PyTorch embedding + LayerNorm + attention text classifier
exported with `--trainable all` personalises in Chromium on onnxruntime-web (wasm), feeding the ids
as int64 (BigInt64Array), and the browser's parameters and losses equal onnxruntime running
train.onnx in Python; the personalised model predicts as the same parameters do in Python (its
edge file folded the LayerNorm's scale, so the page writes them into the cloud file and runs it on
onnxruntime-web). A float where an id is expected and an id outside the vocabulary are `bad-input`,
one message each."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from tests.export.train.torch_layer_models import CLASSES, TOKENS, VOCAB, text_classifier

from .trainer_driver import TrainerDriver

pytestmark = [pytest.mark.integration, pytest.mark.torch]

NAME, BATCH, RATE = "token-ids-text", 4, 0.01


@pytest.fixture(scope="session")
def text_model(registry: Path) -> Path:
    import torch

    from export.torch_module import export_torch_module

    result = export_torch_module(
        text_classifier(),
        torch.randint(0, VOCAB, (1, TOKENS)),
        name=NAME,
        version="1",
        out=registry,
        trainable="all",
        loss="cross-entropy",
        learning_rate=RATE,
        train_batch=BATCH,
    )
    return result.version_dir


@pytest.fixture
def trainer(page, site, mms, text_model) -> TrainerDriver:
    return TrainerDriver(page, site, mms).open()


def test_token_ids_personalise_on_onnxruntime_web_like_onnxruntime(trainer, text_model: Path) -> None:
    from export.train.runner import base_parameters, personalized_model, train

    trainer.create(NAME, cloud=False)
    rng = np.random.default_rng(9)
    ids = rng.integers(0, VOCAB, (6, TOKENS))
    labels = rng.integers(0, CLASSES, 6)
    result = trainer.personalize(ids.tolist(), labels.tolist(), epochs=2, learningRate=RATE, shuffle=False)
    assert "error" not in result, result
    assert result["backend"].startswith("onnxruntime-web/wasm") and result["steps"] == 4
    got = trainer.parameters()
    ours = train(text_model, ids, labels, epochs=2, learning_rate=RATE)
    base = base_parameters(text_model)
    assert set(got) == set(ours.parameters) == set(base)
    for name in got:
        assert np.abs(got[name] - ours.parameters[name]).max() <= 1e-5, name
    assert np.abs(got["embedding.weight"] - base["embedding.weight"]).max() > 1e-4  # the table trained
    np.testing.assert_allclose(result["loss"], ours.losses, atol=1e-5)

    probe = rng.integers(0, VOCAB, (2, TOKENS))
    answer = trainer.predict(probe.tolist(), "local-only")
    assert "error" not in answer and answer["personalized"], answer
    session = ort.InferenceSession(personalized_model(text_model, ours.parameters), providers=["CPUExecutionProvider"])
    want = session.run(None, {"input": probe})[0]
    np.testing.assert_allclose(np.asarray(answer["outputs"]["output"]["data"]).reshape(want.shape), want, atol=1e-5)
    assert trainer.page.errors == []


@pytest.mark.parametrize(
    "ids, message",
    [
        ([[1, 2.5, 3, 4, 5, 6]], "input 'input': expected int64[?, 6], got fractional numbers (2.5 at index [0, 1])"),
        ([[1, 2, 3, 4, 5, VOCAB]], f"input 'input': id {VOCAB} (row 0) is outside the vocabulary [0, {VOCAB - 1}]"),
    ],
)
def test_bad_ids_are_bad_input_in_one_message(trainer, ids: list, message: str) -> None:
    trainer.create(NAME, cloud=False)
    result = trainer.personalize(ids, [0])
    assert result == {"error": message, "code": "bad-input"}
