"""Incremental mode end to end on the embedded data: grow, show, export, load, predict, and
the mistakes that must leave everything stored untouched."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import cli
from tests.conftest import GROW_ROOT as ROOT
TINY = ["--root-epochs", "0.5", "--epochs", "0.5", "--leaf-budget", "2",
        "--leaf-epochs", "0.5", "--device", "cpu"]


def run(capsys, *args):
    with pytest.raises(SystemExit) as exit_info:
        cli.main([str(a) for a in args])
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


def exported_model(folder: Path, class_names: list[str], input_shape=(1, 28, 28)) -> Path:
    """An exported model folder as `automl export` writes it (untrained weights)."""
    import search_spaces
    from safetensors.torch import save_file

    from automl.reporting.cards import CARD_FORMAT, sha256_of

    space = search_spaces.get("mobile")
    genome = space.parse(ROOT)
    torch.manual_seed(0)
    model = space.build(genome, input_shape, len(class_names))
    folder.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "model.safetensors"))
    card = {"format": CARD_FORMAT, "version": 1, "space": "mobile", "genome": ROOT, "genes": dict(genome),
            "input_shape": list(input_shape), "class_names": class_names,
            "normalisation": {"mean": [0.13] * input_shape[0], "std": [0.3] * input_shape[0], "scale": "pixels / 255"},
            "files": {"safetensors": {"file": "model.safetensors", "sha256": sha256_of(folder / "model.safetensors")}}}
    (folder / "card.json").write_text(json.dumps(card))
    return folder


@pytest.fixture(scope="module")
def grown(tmp_path_factory):
    """A two-task stream grown through the CLI; alpha1 0 makes every new class join an output,
    so branches are created (each by a search) and the second can warm-start from the first."""
    import os

    root = tmp_path_factory.mktemp("grow")
    old = os.getcwd()
    os.chdir(root)
    try:
        model = exported_model(root / "model", [str(d) for d in range(10)])
        with pytest.raises(SystemExit) as done:
            cli.main(["grow", "--from", str(model), "--tasks", "0-3/4,5", "--tree-study", "tree", "--alpha1", "0",
                      "--json", *TINY])
        assert done.value.code == 0
        yield root
    finally:
        os.chdir(old)


def test_the_tree_is_recorded_one_trial_per_node_training(grown, monkeypatch):
    from automl.grow.structure import Tree
    from automl.store.study import StudyStore

    monkeypatch.chdir(grown)
    store = StudyStore.open("tree")
    tree = Tree.from_dict(store.study.user_attrs["tree"], "test")
    assert sorted(tree.classes) == [0, 1, 2, 3, 4, 5] and tree.tasks == [[0, 1, 2, 3], [4, 5]]
    roles = [t.user_attrs["tree_role"] for t in store.trials()]
    assert roles[:2] == ["root", "root-output-layer"]
    assert roles.count("new-branch") + roles.count("branch") == len(tree.branches()) >= 1
    for number in (node.trial for node in tree.nodes.values()):
        assert store.trials()[number].user_attrs["weights_artifact"]
    searched = [t for t in store.trials() if t.user_attrs["tree_role"] == "new-branch"]
    assert all(len(t.user_attrs["search"]) == 2 for t in searched)
    for branch in searched:  # candidates the engine does not warm-start start from the root (Net2Net)
        assert any(c["warm_start"] == "root" for c in branch.user_attrs["search"])
    reports = store.study.user_attrs["grow_reports"]
    assert reports[1]["accuracy"]["old"] is not None and reports[1]["effort"] > 0


def test_new_branches_can_start_from_the_largest_sibling_instead(in_tmp, capsys):
    from automl.store.study import StudyStore

    model = exported_model(in_tmp / "model", [str(d) for d in range(10)])
    code, _, _ = run(capsys, "grow", "--from", model, "--tasks", "0-1/2,3/4,5", "--tree-study", "sib",
                     "--alpha1", "0", "--leaf-warm-start", "sibling", "--json", *TINY)
    assert code == 0
    searched = [t for t in StudyStore.open("sib").trials() if t.user_attrs["tree_role"] == "new-branch"]
    assert searched and not any(c["warm_start"] == "root" for t in searched for c in t.user_attrs["search"])
    if len(searched) >= 2:  # a later branch's candidates start from an earlier one
        earlier = {t.user_attrs["tree_node"] for t in searched[:-1]}
        assert any(c["warm_start"] in earlier for c in searched[-1].user_attrs["search"])


def test_lineage_shows_the_tree(grown, monkeypatch, capsys):
    monkeypatch.chdir(grown)
    code, out, _ = run(capsys, "lineage", "--study", "tree")
    assert code == 0 and "Tree-CNN" in out and "branch" in out
    code, out, _ = run(capsys, "lineage", "--study", "tree", "--json")
    assert code == 0 and json.loads(out)["tree"]["format"] == "automl-tree"


def test_export_load_and_predict_the_whole_tree(grown, monkeypatch, capsys):
    import automl
    from PIL import Image

    from automl.data import load_mnist5k
    from automl.grow.model import FLOOR

    monkeypatch.chdir(grown)
    code, out, err = run(capsys, "export", "--study", "tree", "--out", "shipped", "--json")
    assert code == 0, err
    card = json.loads(out)[0]
    folder = Path(card["folder"])
    assert card["kind"] == "tree" and card["files"]["onnx"]["max_abs_diff_vs_torch"] <= 1e-4
    assert "refused" in card["files"]["pt2"]
    assert set(card["files"]["nodes"]) == set(card["tree"]["nodes"])
    assert card["mflops_mean"] >= card["mflops_per_path"][min(card["mflops_per_path"])] * 0.999
    model = automl.load_model(folder)
    data = load_mnist5k()
    keep = data.test.y < 6
    x = data.test.x[keep][:200]
    with torch.no_grad():
        scores = model(x)
    assert (scores.exp().sum(dim=1) <= 1 + 1e-5).all()  # path probabilities of the routed output
    assert ((scores > FLOOR / 2).sum(dim=1) >= 1).all()  # the routed output's classes; the rest at FLOOR
    names = card["class_names"]
    pixels = ((x * data.std[0] + data.mean[0]) * 255).round().clamp(0, 255).to(torch.uint8)
    paths = []
    for i, image in enumerate(pixels[:20]):
        paths.append(grown / f"{i}.png")
        Image.fromarray(image[0].numpy()).save(paths[-1])
    code, out, _ = run(capsys, "predict", folder, *paths, "--json")
    rows = json.loads(out)
    expected = [names[i] for i in scores[:20].argmax(dim=1).tolist()]
    agree = sum(r["class"] == e for r, e in zip(rows, expected))
    assert code == 0 and agree >= 18  # PNG rounding may move an input across a boundary
    assert all(0 < r["probability"] <= 1 for r in rows)


def test_a_damaged_tree_file_is_one_line_and_exit_2(grown, monkeypatch, capsys, tmp_path):
    import shutil

    monkeypatch.chdir(grown)
    if not (grown / "shipped" / "tree").exists():
        assert run(capsys, "export", "--study", "tree", "--out", "shipped", "--quiet")[0] == 0
    broken = tmp_path / "broken"
    shutil.copytree(grown / "shipped" / "tree", broken)
    card = json.loads((broken / "card.json").read_text())
    card["tree"]["outputs"][0]["classes"] = []
    (broken / "card.json").write_text(json.dumps(card))
    code, _, err = run(capsys, "predict", broken, "x.png")
    assert code == 2 and err.count("\n") == 1 and "no class" in err
    node = next(iter(card["files"]["nodes"].values()))["file"]
    shutil.copytree(grown / "shipped" / "tree", tmp_path / "flipped")
    (tmp_path / "flipped" / node).write_bytes(b"not weights")
    code, _, err = run(capsys, "predict", tmp_path / "flipped", "x.png")
    assert code == 2 and err.count("\n") == 1 and "sha256" in err


@pytest.mark.parametrize("args, words", [
    (["--tasks", "0-4/4,5"], "appears in task 1 and task 2"),
    (["--tasks", "0-4/5,11"], "unknown class '11'"),
    (["--tasks", "0-4/5", "--alpha1", "2"], "--alpha1"),
    (["--tasks", "0-4/5", "--max-children", "1"], "--max-children"),
    (["--tasks", "0-4/5", "--leaf-warm-start", "parent"], "--leaf-warm-start"),
    (["--tasks", "0-4/5", "--head-fit", "lbfgs"], "--head-fit"),
    (["--tasks", "0-4/5", "--head-epochs", "2"], "--head-fit sgd"),
])
def test_bad_streams_leave_nothing_stored(args, words, in_tmp, capsys):
    model = exported_model(in_tmp / "model", [str(d) for d in range(10)])
    code, _, err = run(capsys, "grow", "--from", model, "--tree-study", "t", *args)
    assert code == 2 and words in err and err.count("\n") == 1
    assert not (in_tmp / "studies").exists()


def test_a_model_whose_classes_do_not_match_the_data_is_refused(in_tmp, capsys):
    model = exported_model(in_tmp / "model", ["cat", "dog"])
    code, _, err = run(capsys, "grow", "--from", model, "--tasks", "0-4/5", "--tree-study", "t")
    assert code == 2 and "class 'cat'" in err and err.count("\n") == 1
    assert not (in_tmp / "studies").exists()
    wrong_shape = exported_model(in_tmp / "rgb", [str(d) for d in range(10)], (3, 32, 32))
    code, _, err = run(capsys, "grow", "--from", wrong_shape, "--tasks", "0-4/5", "--tree-study", "t")
    assert code == 2 and "shape" in err and not (in_tmp / "studies").exists()
    code, _, err = run(capsys, "grow", "--tasks", "0-4/5")
    assert code == 2 and "--from" in err


def test_an_existing_tree_study_and_a_missing_dataset_are_one_line_with_grows_own_options(grown, monkeypatch,
                                                                                         capsys):
    monkeypatch.chdir(grown)
    model = grown / "model"
    code, _, err = run(capsys, "grow", "--from", model, "--tasks", "0-3/4,5", "--tree-study", "tree")
    assert code == 2 and err.count("\n") == 1 and "choose another --tree-study" in err and "--resume" not in err
    code, _, err = run(capsys, "grow", "--from", model, "--tasks", "0-4/5", "--dataset", "cifar10",
                       "--data-root", grown / "no-data")
    assert code == 2 and err.count("\n") == 1 and "pass --download" in err and "download=True" not in err
    with pytest.raises(SystemExit):  # the option the hint names exists
        cli.main(["grow", "--help"])
    assert "--download" in capsys.readouterr().out
