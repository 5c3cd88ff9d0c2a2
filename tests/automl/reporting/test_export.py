"""`automl export`, `automl.load_model` and `automl predict` on a small real study."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import automl
import cli
import search_spaces
from automl.core.errors import AutomlError
from automl.reporting.cards import load_card
from automl.reporting.export import export_study
from automl.core.pareto import DEFAULT_OBJECTIVES
from automl.store.study import StudyStore
from tests.conftest import SMALLEST_MOBILE


def _record_study(name: str, genomes: list[str], epochs: float) -> StudyStore:
    """A study recorded exactly as `automl search` records one (settings, trials, weights), for
    chosen small genomes: the engine's choices are not what these tests are about."""
    from automl import __version__
    from automl.app.config import SearchSettings
    from automl.data import load_mnist5k
    from automl.evaluate.cnn import CNNEvaluator
    from automl.app.runner import STORED
    from automl.train.loop import TrainConfig

    settings = SearchSettings(study=name, budget=len(genomes), population=2, epochs=epochs, device="cpu")
    data, config = load_mnist5k(), TrainConfig(epochs=epochs)
    space = search_spaces.get("mobile")
    store = StudyStore.create(name, None, DEFAULT_OBJECTIVES,
                              {**{k: getattr(settings, k) for k in STORED}, "budget": len(genomes), "study": name,
                               "version": __version__, "train": config.as_dict(), "data": data.describe()})
    evaluator = CNNEvaluator(space, data, config, seed=0)
    for text in genomes:
        genome = space.parse(text)
        trial = store.start(genome, space.genes(), {"key": genome.key(), "genome": space.format(genome),
                                                    "generation": 0, "parents": [], "strategy": "nsga2"})
        evaluation = evaluator(genome)
        store.complete(trial, evaluation.values, evaluation.attrs, evaluation.weights)
    return store


@pytest.fixture(scope="module")
def shipped(tmp_path_factory):
    """Two small trained trials (0.25 epochs each) and the export of their Pareto front in every format."""
    root = tmp_path_factory.mktemp("ship")
    before = os.getcwd()
    os.chdir(root)  # studies/ and its artifacts are relative to the working folder
    try:
        store = _record_study("ship", [SMALLEST_MOBILE, SMALLEST_MOBILE.replace("head128", "head256")], 0.25)
        cards = export_study(store, "out", formats="safetensors,onnx,pt2", device="cpu")
    finally:
        os.chdir(before)
    return root, cards


@pytest.fixture()
def in_ship(shipped, monkeypatch):
    root, cards = shipped
    monkeypatch.chdir(root)
    return root, StudyStore.open("ship"), cards


def run(capsys, *args):
    with pytest.raises(SystemExit) as exit_info:
        cli.main([str(a) for a in args])
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


def _study_model(store: StudyStore, number: int) -> torch.nn.Module:
    space = search_spaces.get("mobile")
    trial = store.study.trials[number]
    model = space.build(space.make(trial.params), (1, 28, 28), 10)
    model.load_state_dict(store.download_weights(trial))
    return model.eval()


def _inputs(n: int = 8) -> torch.Tensor:
    return torch.randn((n, 1, 28, 28), generator=torch.Generator().manual_seed(1))


def test_export_writes_the_pareto_front_with_complete_cards(in_ship):
    root, store, cards = in_ship
    assert [c["trial"] for c in cards] == [t.number for t in store.pareto()]
    for card in cards:
        folder = root / card["folder"]
        assert folder.name == f"trial-{card['trial']}"
        assert sorted(p.name for p in folder.iterdir()) == ["card.json", "model.onnx", "model.pt2",
                                                            "model.safetensors"]
        written = load_card(folder)
        trial = store.study.trials[card["trial"]]
        assert written["space"] == "mobile" and written["genome"] == trial.user_attrs["genome"]
        assert written["input_shape"] == [1, 28, 28] and written["class_names"] == [str(d) for d in range(10)]
        assert written["normalisation"]["mean"] == list(store.settings["data"]["mean"])
        assert written["validation_accuracy"] == trial.values[0]
        assert 0.0 <= written["test_accuracy"] <= 1.0 and written["test_samples"] == 750
        assert written["flops"] == trial.user_attrs["flops"] and written["params"] == trial.user_attrs["params"]
        assert written["search"]["accelerators"] == [] and written["weights"] == "search"
        assert written["files"]["onnx"]["max_abs_diff_vs_torch"] <= 1e-4


def test_load_model_gives_the_outputs_of_the_stored_weights(in_ship):
    root, store, cards = in_ship
    x = _inputs()
    for card in cards:
        loaded = automl.load_model(root / card["folder"])
        assert not loaded.training
        with torch.no_grad():
            difference = (loaded(x) - _study_model(store, card["trial"])(x)).abs().max().item()
        assert difference <= 1e-5


def test_onnx_and_torch_export_match_torch(in_ship):
    import onnxruntime

    root, _, cards = in_ship
    folder = root / cards[0]["folder"]
    model = automl.load_model(folder)
    x = _inputs(5)  # another batch size than the export's example: the batch axis is dynamic
    with torch.no_grad():
        expected = model(x)
    session = onnxruntime.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    got = session.run(None, {"input": x.numpy()})[0]
    assert np.abs(got - expected.numpy()).max() <= 1e-4
    program = torch.export.load(str(folder / "model.pt2"))
    with torch.no_grad():
        assert (program.module()(x) - expected).abs().max().item() <= 1e-5


def test_predict_classifies_test_images_at_the_cards_accuracy(in_ship, capsys, tmp_path):
    from PIL import Image

    from automl.data import load_mnist5k

    root, _, cards = in_ship
    card = cards[0]
    data = load_mnist5k()
    pixels = ((data.test.x * data.std[0] + data.mean[0]) * 255).round().clamp(0, 255).to(torch.uint8)
    paths = []
    for i, image in enumerate(pixels):  # every test image: the card's accuracy is over all 750
        paths.append(tmp_path / f"{i}.png")
        Image.fromarray(image[0].numpy()).save(paths[-1])
    code, out, _ = run(capsys, "predict", root / card["folder"], *paths, "--json")
    assert code == 0
    rows = json.loads(out)
    assert [r["image"] for r in rows] == [str(p) for p in paths]
    accuracy = np.mean([r["class"] == card["class_names"][int(y)] for r, y in zip(rows, data.test.y)])
    assert abs(accuracy - card["test_accuracy"]) <= 0.01
    code, out, _ = run(capsys, "predict", root / card["folder"], paths[0])
    assert code == 0 and out.split("\t")[1] == rows[0]["class"]


@pytest.mark.parametrize("damage, message", [
    ("delete weights", "is missing"),
    ("flip a weights byte", "sha256 differs"),
    ("garbage weights, card without sha256", "cannot be read"),
    ("delete card", "no model card"),
    ("truncate card", "not valid JSON"),
    ("card of another genome", "does not fit genome"),
])
def test_a_damaged_export_is_one_line_and_exit_code_2(in_ship, capsys, tmp_path, damage, message):
    root, _, cards = in_ship
    folder = tmp_path / "model"
    shutil.copytree(root / cards[0]["folder"], folder)
    card = json.loads((folder / "card.json").read_text())
    weights = folder / "model.safetensors"
    if damage == "delete weights":
        weights.unlink()
    elif damage == "flip a weights byte":
        data = bytearray(weights.read_bytes())
        data[-3] ^= 0xFF
        weights.write_bytes(bytes(data))
    elif damage == "garbage weights, card without sha256":
        weights.write_bytes(b"\xff" * 64)
        del card["files"]["safetensors"]["sha256"]
        (folder / "card.json").write_text(json.dumps(card))
    elif damage == "delete card":
        (folder / "card.json").unlink()
    elif damage == "truncate card":
        (folder / "card.json").write_text((folder / "card.json").read_text()[:100])
    else:
        card["genes"]["stem"] = 32 if card["genes"]["stem"] != 32 else 16
        (folder / "card.json").write_text(json.dumps(card))
    code, _, err = run(capsys, "predict", folder, "whatever.png")
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and message in lines[0] and "Traceback" not in err
    with pytest.raises(AutomlError, match=message):
        automl.load_model(folder)


def test_cli_export_of_named_trials_and_its_mistakes(in_ship, capsys):
    root, store, cards = in_ship
    number = cards[-1]["trial"]
    code, out, _ = run(capsys, "export", "--study", "ship", "--out", "named", "--trial", number,
                       "--format", "safetensors", "--quiet")
    assert code == 0 and out.split() == [str(Path("named") / f"trial-{number}")]
    assert sorted(p.name for p in (root / "named" / f"trial-{number}").iterdir()) == ["card.json",
                                                                                      "model.safetensors"]
    for args, message in [(["--trial", "99"], "has no trial 99"), (["--format", "tflite"], "unknown export format"),
                          (["--retrain-epochs", "0"], "--retrain-epochs must be a positive")]:
        code, _, err = run(capsys, "export", "--study", "ship", "--out", "bad", *args)
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (root / "bad").exists()  # nothing written for a bad request


def test_unstored_weights_are_refused_or_retrained(in_ship, capsys):
    """A trial whose weights the evaluator did not store (an accelerator reshaped its model)."""
    root, store, cards = in_ship
    source = store.study.trials[cards[0]["trial"]]
    space = search_spaces.get("mobile")
    genome = space.make(source.params)
    other = StudyStore.create("reshaped", None, DEFAULT_OBJECTIVES,
                              {k: v for k, v in store.settings.items() if k not in ("objectives", "artifacts")})
    reason = "not stored: the trained model no longer has its genome's shape"
    trial = other.start(genome, space.genes(), {"key": genome.key(), "genome": space.format(genome)})
    other.complete(trial, {"accuracy": 0.5, "flops": source.values[1]},
                   {"flops": source.user_attrs["flops"], "params": source.user_attrs["params"], "weights": reason,
                    "seed": 3})
    code, _, err = run(capsys, "export", "--study", "reshaped", "--out", "re")
    assert code == 2 and reason in err and "--retrain-epochs" in err and len(err.strip().splitlines()) == 1
    (card,) = export_study(StudyStore.open("reshaped"), "re", formats="safetensors", retrain_epochs=0.05,
                           device="cpu")
    assert card["weights"] == "retrained" and card["retrained"]["on"] == "train + validation"
    assert card["retrained"]["epochs"] == pytest.approx(0.05, abs=0.02) and 0 <= card["test_accuracy"] <= 1
    model = automl.load_model(root / card["folder"])
    from automl.data import load_mnist5k
    from automl.train.loop import evaluate

    assert evaluate(model, load_mnist5k().test) == pytest.approx(card["test_accuracy"], abs=1e-9)
