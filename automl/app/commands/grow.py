"""``automl grow`` (incremental mode, Tree-CNN) and ``automl bench grow``."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Optional

import typer

from automl.app.commands.console import err, out, verdict
from automl.core.errors import AutomlError

ALPHA1_HELP = ("Tree-CNN's routing threshold: a new class joins the root output whose mean softmax over "
               "the class's images leads the second by more than this.")
WARM_START_HELP = ("What a new branch's candidates inherit their weights from (Net2Net): 'root' or the "
                   "largest 'sibling' branch.")
HEAD_FIT_HELP = ("How the root's output layer is retrained on the frozen root's features: 'ridge' (closed "
                 "form, one pass) or 'sgd' (--head-epochs at learning rate 0.3).")
ALPHA2_HELP = "Else merge (or join) the two most likely outputs when the second leads the third by more."


def _settings(alpha1: float, alpha2: float, max_children: int, root_epochs: float, epochs: float,
              head_epochs: Optional[float], leaf_budget: int, leaf_epochs: float, leaf_max_flops: Optional[str],
              seed: int, leaf_warm_start: str, head_fit: str):
    from automl.app.config import parse_amount
    from automl.grow.grower import GrowSettings, check_head_fit, check_warm_start
    from automl.grow.placement import check_thresholds

    check_thresholds(alpha1, alpha2, max_children)
    if leaf_budget < 1:
        raise AutomlError(f"--leaf-budget must be at least 1 candidate, got {leaf_budget}")
    check_head_fit(head_fit)
    if head_epochs is not None and head_fit != "sgd":
        raise AutomlError("--head-epochs sets the epochs of --head-fit sgd; the closed form (ridge) has none")
    _check_positive(("--root-epochs", root_epochs), ("--epochs", epochs), ("--head-epochs", head_epochs),
                    ("--leaf-epochs", leaf_epochs))
    check_warm_start(leaf_warm_start)
    limit = parse_amount(leaf_max_flops, "--leaf-max-flops") if leaf_max_flops is not None else None
    return GrowSettings(alpha1=alpha1, alpha2=alpha2, max_children=max_children, root_epochs=root_epochs,
                        epochs=epochs, head_fit=head_fit,
                        head_epochs=GrowSettings.head_epochs if head_epochs is None else head_epochs,
                        leaf_budget=leaf_budget, leaf_epochs=leaf_epochs, leaf_warm_epochs=leaf_epochs / 2,
                        leaf_warm_start=leaf_warm_start, leaf_max_flops=limit, seed=seed)


def _check_positive(*named: tuple[str, Optional[float]]) -> None:
    """Each option given (None: left at its default) must be a positive number."""
    for name, value in named:
        if value is not None and not value > 0:
            raise AutomlError(f"{name} must be a positive number, got {value}")


def _root(from_dir: Optional[Path], study: Optional[str], storage: Optional[str], trial: Optional[int]):
    if (from_dir is None) == (study is None):
        raise AutomlError("name the model to grow with --from DIR (an exported model) or --study S --trial N")
    if from_dir is not None:
        from automl.reporting.tree import root_from_export

        return root_from_export(from_dir)
    if trial is None:
        raise AutomlError("--study needs --trial N (the trial whose model becomes the root)")
    from automl.grow.record import root_from_trial

    return root_from_trial(study, storage, trial)


def grow(
    from_dir: Optional[Path] = typer.Option(None, "--from", help="An exported model folder (OUT/trial-N)."),
    study: Optional[str] = typer.Option(None, help="Or a search's study (with --trial)."),
    trial: Optional[int] = typer.Option(None, help="The trial of --study whose model is the root."),
    storage: Optional[str] = typer.Option(None, help="Storage of --study and of the new tree's study. "
                                          "(default: sqlite:///studies/STUDY.db)"),
    dataset: str = typer.Option("mnist5k", help="Dataset whose classes arrive in --tasks."),
    data_root: str = typer.Option("data", help="Folder of torchvision datasets."),
    download: bool = typer.Option(False, "--download", help="Download a torchvision dataset if missing."),
    tasks: str = typer.Option(..., help="The class stream: tasks separated by '/', e.g. 0-4/5,6/7-9."),
    out_study: Optional[str] = typer.Option(None, "--tree-study", help="Study to record the tree in. "
                                            "(default: grow-DATASET-TIMESTAMP)"),
    alpha1: float = typer.Option(0.1, help=ALPHA1_HELP),
    alpha2: float = typer.Option(0.1, help=ALPHA2_HELP),
    max_children: int = typer.Option(5, help="Most classes under one branch."),
    root_epochs: float = typer.Option(2.0, help="Epochs to train the root on task 1 (only when the "
                                      "model was not trained on exactly those classes)."),
    epochs: float = typer.Option(1.0, help="Epochs to fine-tune each branch that receives classes."),
    head_fit: str = typer.Option("ridge", help=HEAD_FIT_HELP),
    head_epochs: Optional[float] = typer.Option(None, help="With --head-fit sgd: epochs of the root's output "
                                                "layer. (default: 3)"),
    leaf_budget: int = typer.Option(4, help="Candidates of each new branch's architecture search."),
    leaf_epochs: float = typer.Option(2.0, help="Epochs of a search candidate (warm-started ones: half)."),
    leaf_max_flops: Optional[str] = typer.Option(None, help="FLOPs limit of a new branch (its candidates are "
                                                 "anyway no larger than the root in any gene)."),
    leaf_warm_start: str = typer.Option("root", help=WARM_START_HELP),
    seed: int = typer.Option(0, help="Seed."),
    device: str = typer.Option("auto", help="auto, cpu or cuda[:N]."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Grow a trained model into a Tree-CNN as new classes arrive (Roy, Panda & Roy 2018)."""
    from automl.data import load_dataset
    from automl.data.streams import parse_tasks
    from automl.evaluate.devices import pick_device
    from automl.grow.grower import Grower
    from automl.grow.record import grow_into_study
    from automl.store.study import check_study_name

    settings = _settings(alpha1, alpha2, max_children, root_epochs, epochs, head_epochs, leaf_budget, leaf_epochs,
                         leaf_max_flops, seed, leaf_warm_start, head_fit)
    label = dataset.split(":")[-1].rstrip("/").split("/")[-1]
    name = check_study_name(out_study or f"grow-{label}-{time.strftime('%Y%m%d-%H%M%S')}")
    source = _root(from_dir, study, storage, trial)
    data = load_dataset(dataset, data_root, download)
    stream = parse_tasks(tasks, data.class_names)
    target = pick_device(device)
    data.to(target)
    grower = Grower(data, stream, source, settings, target)  # checks the model against the data first
    say = (lambda text: None) if as_json else (lambda text: err.print(text))
    described = {"space": source.space.name, "dataset": dataset, "data_root": data_root, "data": data.describe(),
                 "tasks": tasks, "root": source.origin, "grow": vars(settings), "seed": seed}
    store, reports = grow_into_study(grower, name, storage, described, say)
    if as_json:
        print(json.dumps({"study": store.name, "storage": store.url, "tasks": reports}, indent=2, default=float))
        return
    for report in reports:
        accuracy = report["accuracy"]
        old = "-" if accuracy["old"] is None else f"{accuracy['old']:.4f}"
        out.print(f"task {report['task']}: accuracy {accuracy['all']:.4f} (old {old}, new {accuracy['new']:.4f}), "
                  f"{report['seconds']:.1f} s, {len(report['outputs'])} root outputs, "
                  f"{report['mflops_mean']:.2f} MFLOPs per inference")
    err.print(f"tree recorded in study {store.name!r} ({store.url}). Show it: automl lineage --study {store.name}")


def bench_grow(
    tasks: str = typer.Option("0-4/5,6/7-9", help="The class stream of the embedded data."),
    genome: Optional[str] = typer.Option(None, help="Mobile genome of the root. (default: a small one)"),
    root_epochs: float = typer.Option(3.0, help="Training of the root on task 1 (shared by every method)."),
    epochs: float = typer.Option(1.0, help="Fine-tuning epochs of the finetune methods, each task."),
    branch_epochs: Optional[float] = typer.Option(None, help="Tree: epochs of a branch that receives classes. "
                                                  "(default: --epochs)"),
    scratch_epochs: float = typer.Option(3.0, help="Epochs of training from scratch, each task."),
    head_fit: str = typer.Option("ridge", help="Tree: " + HEAD_FIT_HELP),
    head_epochs: Optional[float] = typer.Option(None, help="Tree, with --head-fit sgd: epochs of the root's "
                                                "output layer. (default: 3)"),
    leaf_budget: int = typer.Option(2, help="Tree: candidates of a new branch's search."),
    leaf_epochs: float = typer.Option(2.0, help="Tree: epochs of a search candidate."),
    leaf_warm_start: str = typer.Option("root", help="Tree: " + WARM_START_HELP),
    seed: int = typer.Option(0, help="Seed."),
    device: str = typer.Option("auto", help="auto, cpu or cuda[:N]."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    out_file: Optional[Path] = typer.Option(None, "--out", help="Also write the result (with provenance) here."),
) -> None:
    """Tree-CNN growth vs fine-tuning (all data / new classes only) vs training from scratch."""
    import search_spaces
    import torch

    from automl.data import load_mnist5k
    from automl.data.streams import parse_tasks
    from automl.evaluate.devices import pick_device
    from automl.experiments.grow import bench_grow as run
    from automl.experiments.results import write_result
    from automl.grow.grower import RootSource

    _check_positive(("--epochs", epochs), ("--branch-epochs", branch_epochs), ("--scratch-epochs", scratch_epochs))
    settings = _settings(0.1, 0.1, 5, root_epochs, epochs if branch_epochs is None else branch_epochs, head_epochs,
                         leaf_budget, leaf_epochs, None, seed, leaf_warm_start, head_fit)
    space = search_spaces.get("mobile")
    chosen = space.parse(genome or BENCH_ROOT)
    data = load_mnist5k()
    stream = parse_tasks(tasks, data.class_names)
    target = pick_device(device)
    data.to(target)
    torch.manual_seed(seed)  # the root's initial weights: the same run for the same --seed
    model = space.build(chosen, data.input_shape, data.num_classes)
    source = RootSource(space, chosen, model.state_dict(), list(data.class_names), data.input_shape,
                        f"random init (seed {seed})")
    described = {"tasks": tasks, "genome": space.format(chosen), "root_epochs": root_epochs, "epochs": epochs,
                 "scratch_epochs": scratch_epochs, "grow": vars(settings), "device": str(target)}

    def save(partial: dict) -> None:  # after every task, so a long run leaves its figures so far
        if out_file is not None:
            write_result(out_file, {**partial, "settings": described})

    result = run(stream, data, source, settings, epochs, scratch_epochs, target, lambda text: err.print(text), save)
    result["settings"] = described
    save(result)
    if as_json:
        print(json.dumps(result, indent=2, default=float))
        return
    _print_bench(result)


BENCH_ROOT = "stem8-ir_r1_k3_e1_c8-ir_r1_k3_e3_c16-ir_r1_k3_e3_c24-ir_r1_k3_e3_c32-ir_r1_k3_e3_c48-head128"


def _print_bench(result: dict) -> None:
    from rich.table import Table

    from automl.experiments.grow import METHODS

    def pct(value) -> str:
        return "-" if value is None else f"{100 * value:.1f}"

    for row in result["tasks"][1:]:
        table = Table(title=f"task {row['task']}: classes {', '.join(map(str, row['classes']))}")
        for column in ("method", "all %", "old %", "new %", "effort", "seconds", "MFLOPs"):
            table.add_column(column, justify="left" if column == "method" else "right")
        for method in METHODS:
            m = row["methods"][method]
            table.add_row(method, pct(m["accuracy_all"]), pct(m["accuracy_old"]), pct(m["accuracy_new"]),
                          f"{m['effort']:.3g}", f"{m['seconds']:.1f}", f"{m['mflops']:.2f}")
        out.print(table)
    tree = result["summary"]["tree"]
    gap, drop = 100 * tree["final_gap_to_finetune_all"], 100 * tree["worst_old_class_drop"]
    out.print(f"tree vs finetune-all over the growth: effort {tree['effort_vs_finetune_all']:.2f}x, seconds "
              f"{tree['seconds_vs_finetune_all']:.2f}x, final accuracy gap {gap:+.1f} points, worst old-class "
              f"drop {drop:.1f} points")
    targets = result["summary"]["targets"]
    out.print("targets: " + ", ".join(f"{k} {verdict(v)}" for k, v in targets.items()))
