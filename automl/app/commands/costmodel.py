"""``automl costmodel``, ``automl placement`` and ``automl bench costmodel``: what one training
epoch of an architecture costs per number format, and where its layers go when distributed."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import typer

from automl.app.commands.console import err, out
from automl.core.errors import AutomlError

DEFAULT_TRAIN_SAMPLES = 3500  # mnist5k's training split
DEFAULT_BN_SAMPLES = 1024  # the trainer's BatchNorm re-estimation (TrainConfig.bn_samples)


@dataclass
class Target:
    """The architecture to cost and how it trains."""

    space: str
    genome: str
    model: Any
    input_shape: tuple[int, ...]
    num_classes: int
    batch_size: int
    steps: int
    bn_samples: int
    label: str


def parse_shape(text: str) -> tuple[int, int, int]:
    from search_spaces.describe import parse_shape as parse

    return parse(text, "--input-shape")


def _from_study(study: str, storage: Optional[str], trial: Optional[int]) -> dict[str, Any]:
    from automl.core import attrs
    from automl.store.study import StudyStore

    store = StudyStore.open(study, storage)
    settings = store.settings
    if trial is None:
        front = store.pareto()
        if not front:
            raise AutomlError(f"study {study!r} has no finished trial; name one with --trial")
        chosen = max(front, key=lambda t: t.values[0])
    else:
        chosen = next((t for t in store.trials() if t.number == trial and attrs.GENOME in t.user_attrs), None)
        if chosen is None:
            raise AutomlError(f"study {study!r} has no evaluated trial {trial}")
    data, train = settings.get("data", {}), settings.get("train", {})
    return {"space": settings.get("space", "mobile"), "genome": chosen.user_attrs[attrs.GENOME],
            "input_shape": tuple(data.get("input_shape", (1, 28, 28))), "num_classes": data.get("num_classes", 10),
            "batch_size": train.get("batch_size", 64), "epochs": train.get("epochs", 1.0),
            "train_samples": data.get("train", DEFAULT_TRAIN_SAMPLES),
            "bn_samples": train.get("bn_samples", DEFAULT_BN_SAMPLES), "label": f"{study} trial {chosen.number}"}


def resolve_target(space: str, genome: Optional[str], study: Optional[str], storage: Optional[str],
                   trial: Optional[int], input_shape: str, classes: int, batch_size: int, epochs: float,
                   train_samples: int) -> Target:
    """The architecture named by ``--genome`` (in ``--space``) or by ``--study``/``--trial``."""
    import search_spaces

    if (genome is None) == (study is None):
        raise AutomlError("name the architecture with --genome G (and --space) or with --study S [--trial N]")
    if study is not None:
        found = _from_study(study, storage, trial)
    else:
        found = {"space": space, "genome": genome, "input_shape": parse_shape(input_shape), "num_classes": classes,
                 "batch_size": batch_size, "epochs": epochs, "train_samples": train_samples,
                 "bn_samples": DEFAULT_BN_SAMPLES, "label": genome}
    chosen = search_spaces.get(found["space"])
    parsed = chosen.parse(found["genome"])
    model = chosen.build(parsed, found["input_shape"], found["num_classes"])
    steps = max(1, round(found["epochs"] * max(found["train_samples"] // found["batch_size"], 1)))
    return Target(found["space"], chosen.format(parsed), model, found["input_shape"], found["num_classes"],
                  found["batch_size"], steps, found["bn_samples"], found["label"])


def _layer_groups(layers, depth: int) -> dict[str, dict[str, Any]]:
    groups: dict[str, dict[str, Any]] = {}
    for layer in layers:
        name = ".".join(layer.layer.split(".")[:depth])
        row = groups.setdefault(name, {"kind": layer.kind, "fwd": 0.0, "bwd": 0.0, "bytes": 0.0, "heavy": 0.0})
        row["fwd"] += layer.forward_flops
        row["bwd"] += layer.backward_flops
        row["bytes"] += layer.bytes
        if layer.kind != "elementwise" and layer.forward_flops > row["heavy"]:
            row["kind"], row["heavy"] = layer.kind, layer.forward_flops
    return groups


def _print_costs(target: Target, costs: dict, depth: int) -> None:
    from rich import box
    from rich.table import Table

    first = next(iter(costs.values()))
    table = Table(title=f"{target.label}: one training step, batch {target.batch_size}", box=box.SIMPLE_HEAD,
                  pad_edge=False, show_edge=False, collapse_padding=True,
                  caption=f"MFLOP forward and backward, MB moved in {first.format}, ms per step in each format")
    table.add_column("layer", overflow="fold", min_width=10)
    table.add_column("kind", no_wrap=True)
    for column in ("fwd", "bwd", "MB", *costs):
        table.add_column(column, justify="right", no_wrap=True)
    seconds = {fmt: {} for fmt in costs}
    for fmt, cost in costs.items():
        for layer in cost.layers:
            name = ".".join(layer.layer.split(".")[:depth])
            seconds[fmt][name] = seconds[fmt].get(name, 0.0) + layer.seconds
    for name, row in _layer_groups(first.layers, depth).items():
        table.add_row(name, row["kind"], f"{row['fwd'] / 1e6:.2f}", f"{row['bwd'] / 1e6:.2f}",
                      f"{row['bytes'] / 1e6:.2f}", *[f"{1e3 * seconds[fmt][name]:.2f}" for fmt in costs])
    out.print(table)
    notes = {"measured": "throughputs measured", "scaled": "no kernel here: scaled from fp32, not measured",
             "modelled": "predicted, not measured: 16-bit fixed-point hardware"}
    for fmt, cost in costs.items():
        sources = sorted(set(cost.source.values()))
        note = notes["modelled"] if fmt == "fx16" else "; ".join(notes.get(s, s) for s in sources)
        out.print(f"{fmt:5s} step {1e3 * cost.step_seconds:8.2f} ms, epoch of {target.steps} steps "
                  f"{cost.epoch_seconds(target.steps):8.2f} s  [{note}]", soft_wrap=True, markup=False)


def _plot_costs(costs: dict, steps: int, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from automl.nn.costmodel import KINDS

    fig, ax = plt.subplots(figsize=(6, 3.5))
    bottoms = [0.0] * len(costs)
    for kind in (*KINDS, "overhead"):
        heights = [steps * (cost.overhead_seconds if kind == "overhead" else
                            sum(layer.seconds for layer in cost.layers if layer.kind == kind)) for cost in costs.values()]
        ax.bar(list(costs), heights, bottom=bottoms, label=kind)
        bottoms = [b + h for b, h in zip(bottoms, heights)]
    ax.set_ylabel(f"predicted seconds per epoch ({steps} steps)")
    ax.legend(fontsize=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def costmodel(
    space: str = typer.Option("mobile", help="Search space of --genome."),
    genome: Optional[str] = typer.Option(None, help="Genome string to cost (from `automl pareto` or `automl "
                                         "spaces show`); this or --study."),
    study: Optional[str] = typer.Option(None, help="Cost a trial of this study instead (its data and batch size)."),
    storage: Optional[str] = typer.Option(None, help="Optuna storage URL. (default: sqlite:///studies/STUDY.db)"),
    trial: Optional[int] = typer.Option(None, help="Trial number. (default: the most accurate of the Pareto front)"),
    formats: str = typer.Option("fp32,bf16,fp16,int8,fx16", help="Comma-separated number formats."),
    device: str = typer.Option("cpu", help="auto, cpu or cuda[:N]: whose calibration to use."),
    calibrate: bool = typer.Option(False, "--calibrate", help="Run the machine's micro-benchmarks again (a few "
                                   "minutes) and cache them; without --genome or --study it only calibrates."),
    input_shape: str = typer.Option("1x28x28", "--input-shape", "--input",
                                   help="Input shape of --genome's model: CxHxW or C,H,W."),
    classes: int = typer.Option(10, min=2, help="Classes of --genome's model."),
    batch_size: int = typer.Option(64, min=1, help="Batch size of --genome's training."),
    epochs: float = typer.Option(1.0, min=0.01, help="Epochs to predict: the total is the per-epoch seconds x this."),
    train_samples: int = typer.Option(DEFAULT_TRAIN_SAMPLES, min=1, help="Training images per epoch."),
    depth: int = typer.Option(3, min=1, help="Group layers by this many name components in the table."),
    png: Optional[Path] = typer.Option(None, help="Plot predicted seconds per epoch by kind and format here."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Predicted seconds of one training epoch per number format, for a genome or a study's trial.

    A per-layer roofline model: FLOPs by kind and bytes moved, over the throughput and
    bandwidth calibrated on this machine."""
    from dataclasses import asdict

    from automl.evaluate.devices import pick_device
    from automl.nn.calibrate import cache_path, calibration_for
    from automl.nn.costmodel import NATIVE_CANDIDATES, check_formats, step_cost, trace_step

    names = check_formats([f.strip() for f in formats.split(",") if f.strip()])
    chosen_device = pick_device(device)
    if calibrate:
        err.print(f"calibrating {chosen_device} (micro-benchmarks and reference networks, a few minutes) ...")
    calibration = calibration_for(chosen_device, refresh=calibrate, formats=NATIVE_CANDIDATES if calibrate else names)
    if calibrate and genome is None and study is None:
        out.print(f"calibration of {calibration.machine} cached in {cache_path()}")
        for fmt, ratios in calibration.reference_ratios.items():
            each = ", ".join(f"{name} {ratio:.2f}" for name, ratio in ratios.items())
            out.print(f"{fmt}: whole networks run at {calibration.network_scale[fmt]:.2f}x the micro-benchmarks' "
                      f"prediction ({each})")
        return
    target = resolve_target(space, genome, study, storage, trial, input_shape, classes, batch_size, epochs,
                            train_samples)
    ops = trace_step(target.model, target.input_shape, target.batch_size)
    costs = {fmt: step_cost(ops, calibration, fmt, target.batch_size) for fmt in names}
    if png is not None:
        _plot_costs(costs, target.steps, png)
    if as_json:
        print(json.dumps({"space": target.space, "genome": target.genome, "steps": target.steps,
                          "calibration": calibration.to_json(),
                          "formats": {fmt: {**asdict(cost), "epoch_seconds": cost.epoch_seconds(target.steps)}
                                      for fmt, cost in costs.items()}}, indent=2))
        return
    _print_costs(target, costs, depth)
    if png is not None:
        err.print(f"plot written to {png}")


def parse_bandwidth(text: str) -> float:
    """Bytes/s from '10Gbit', '1.25GB', '100Mbit', '5e8' (bytes/s)."""
    units = {"gbit": 1e9 / 8, "mbit": 1e6 / 8, "gb": 1e9, "mb": 1e6, "kb": 1e3}
    lowered = text.strip().lower().removesuffix("/s")
    scale = next((v for k, v in units.items() if lowered.endswith(k)), 1.0)
    number = next((lowered[: -len(k)] for k in units if lowered.endswith(k)), lowered)
    try:
        value = float(number) * scale
    except ValueError:
        value = -1.0
    if not value > 0:
        raise AutomlError(f"--bandwidth {text!r} is not a bandwidth such as 10Gbit, 1.25GB or 5e8 (bytes/s)")
    return value


def placement(
    space: str = typer.Option("mobile", help="Search space of --genome."),
    genome: Optional[str] = typer.Option(None, help="Genome string to place; this or --study."),
    study: Optional[str] = typer.Option(None, help="Place a trial of this study instead."),
    storage: Optional[str] = typer.Option(None, help="Optuna storage URL. (default: sqlite:///studies/STUDY.db)"),
    trial: Optional[int] = typer.Option(None, help="Trial number. (default: the most accurate of the Pareto front)"),
    workers: int = typer.Option(4, min=2, help="Data-parallel workers."),
    bandwidth: str = typer.Option("10Gbit", help="Link bandwidth per worker (and of the server): 10Gbit, 1.25GB, "
                                                 "or bytes/s."),
    batch_size: int = typer.Option(64, min=1, help="Batch size per worker."),
    input_shape: str = typer.Option("1x28x28", "--input-shape", "--input",
                                   help="Input shape of --genome's model: CxHxW or C,H,W."),
    classes: int = typer.Option(10, min=2, help="Classes of --genome's model."),
    device: str = typer.Option("cpu", help="Whose calibration gives the compute time per step."),
    check: bool = typer.Option(False, "--check", help="Also count the bytes DistributedDataParallel all-reduces "
                                                      "per step (comm hook, --workers gloo processes here)."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Where layers go in data-parallel training: bytes moved and step time per placement.

    Per layer parameters, FLOPs and activation bytes; bytes moved per step and step time for
    ring all-reduce, a parameter server, and Park et al.'s resource-aware placement."""
    from dataclasses import asdict

    from automl.evaluate.devices import pick_device
    from automl.nn.calibrate import calibration_for
    from automl.nn.costmodel import step_cost, trace_step
    from automl.nn.placement import gradient_bytes, measure_units, placements

    link = parse_bandwidth(bandwidth)
    target = resolve_target(space, genome, study, storage, trial, input_shape, classes, batch_size, 1.0,
                            DEFAULT_TRAIN_SAMPLES)
    cost = step_cost(trace_step(target.model, target.input_shape, target.batch_size),
                     calibration_for(pick_device(device), formats=("fp32",)), "fp32", target.batch_size)
    units = measure_units(target.model, target.input_shape, target.batch_size, cost)
    strategies = placements(target.model, units, workers, link, cost)
    result: dict[str, Any] = {"genome": target.genome, "workers": workers, "bandwidth_bytes_per_s": link,
                              "batch_size_per_worker": target.batch_size, "gradient_bytes": gradient_bytes(target.model),
                              "units": [asdict(u) for u in units], "strategies": [asdict(s) for s in strategies]}
    if check:
        from automl.experiments.placement import measure_ddp_bytes

        err.print(f"counting DDP's all-reduced bytes with {workers} gloo processes ...")
        counted = measure_ddp_bytes(target.space, target.genome, target.input_shape, target.num_classes, workers)
        counted["relative_error"] = result["gradient_bytes"] / counted["bytes_per_step_median"] - 1
        result["ddp_check"] = counted
    if as_json:
        print(json.dumps(result, indent=2))
        return
    _print_placement(target, result)


def _print_placement(target: Target, result: dict[str, Any]) -> None:
    from rich import box
    from rich.table import Table

    table = Table(title=f"{target.label}: units, batch {target.batch_size} per worker", box=box.SIMPLE_HEAD)
    for column in ("unit", "params", "fwd MFLOP", "activation KB", "step ms"):
        table.add_column(column, justify="left" if column == "unit" else "right")
    for u in result["units"]:
        table.add_row(u["name"], f"{u['params']:,}", f"{u['forward_flops'] / 1e6:.2f}",
                      f"{4 * u['activation_elements'] / 1e3:.1f}", f"{1e3 * u['seconds']:.2f}")
    out.print(table)
    out.print(f"{result['workers']} workers, {result['bandwidth_bytes_per_s'] / 1e9:.3g} GB/s links, "
              f"gradients {result['gradient_bytes'] / 1e6:.3f} MB per step", soft_wrap=True)
    for s in result["strategies"]:
        extra = f" (server runs: {', '.join(s['detail']['server_units']) or 'nothing'})" if "server_units" in s["detail"] else ""
        out.print(f"  {s['name']:22s} {s['bytes_per_worker'] / 1e6:9.3f} MB per worker, busiest link "
                  f"{s['bytes_busiest_link'] / 1e6:9.3f} MB, step {1e3 * s['step_seconds']:8.2f} ms{extra}", soft_wrap=True)
    if "ddp_check" in result:
        check = result["ddp_check"]
        out.print(f"DDP comm hook counted {check['bytes_per_step_median']:,} bytes all-reduced per step per worker "
                  f"(predicted {result['gradient_bytes']:,}: {check['relative_error']:+.2%})", soft_wrap=True)


def bench_costmodel(
    space: str = typer.Option("mobile", help="Search space whose candidates are predicted and trained."),
    candidates: int = typer.Option(16, min=2, help="Candidates (spread over the space's FLOPs range)."),
    epochs: float = typer.Option(1.0, min=0.05, help="Epochs per candidate."),
    max_flops: Optional[str] = typer.Option(None, help="Candidates up to this many FLOPs. "
                                                       "(default: 20 times the space's smallest candidate)"),
    formats: str = typer.Option("fp32,bf16", help="Formats to train natively and compare (fp32, bf16, fp16)."),
    device: str = typer.Option("cpu", help="auto, cpu or cuda[:N]."),
    seed: int = typer.Option(0, help="Seed of the candidates."),
    threads: Optional[int] = typer.Option(None, min=1, help="Torch threads (calibration is per thread count). "
                                                            "(default: torch's)"),
    clock: str = typer.Option("wall", help="wall, or cpu: process CPU time with one thread (calibration and "
                                           "runs), for a machine other work shares."),
    png: Optional[Path] = typer.Option(None, help="Plot predicted vs measured seconds here."),
    out_file: Optional[Path] = typer.Option(None, "--out", help="Write the result (with provenance) as JSON here."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """The cost model's predicted training seconds against the trainer's measured ones.

    Median and worst absolute error per number format."""
    from automl.app.config import parse_amount
    from automl.evaluate.devices import pick_device
    from automl.experiments.costmodel import bench_costmodel as run, plot
    from automl.experiments.results import write_result
    from automl.nn.calibrate import NATIVE_CANDIDATES
    from automl.nn.costmodel import check_formats

    names = check_formats([f.strip() for f in formats.split(",") if f.strip()])
    never = [f for f in names if f not in NATIVE_CANDIDATES]
    if never:  # said before minutes of calibration, not after
        raise AutomlError(f"--formats {never[0]}: no training kernels for it anywhere, so nothing to measure "
                          f"(`automl costmodel` predicts it); measurable: {', '.join(NATIVE_CANDIDATES)}")
    if clock not in ("wall", "cpu"):
        raise AutomlError(f"--clock {clock!r} is not wall or cpu")

    def tick(fmt: str, done: int, total: int, row: dict) -> None:  # stderr: --json output stays clean
        err.print(f"{fmt} {done}/{total} ({row['mflops']:.1f} MFLOPs): predicted {row['predicted_s']:.2f} s, "
                  f"measured {row['measured_s']:.2f} s")

    limit = parse_amount(max_flops, "--max-flops") if max_flops else None
    result = run(candidates=candidates, epochs=epochs, max_flops=limit, seed=seed, formats=tuple(names),
                 device=str(pick_device(device)), threads=threads, clock=clock, space_name=space, progress=tick,
                 stage=err.print)
    if png is not None:
        plot(result, png)
    if out_file is not None:
        write_result(out_file, result)
    if as_json:
        print(json.dumps(result, indent=2))
        return
    for fmt, entry in result["formats"].items():
        if "median_abs_error" not in entry:
            out.print(f"{fmt}: not measured here ({entry['rows'][0]['skipped'] if entry['rows'] else 'no kernels'})")
            continue
        out.print(f"{fmt}: median absolute error {entry['median_abs_error']:.1%}, worst {entry['worst_abs_error']:.1%}, "
                  f"mean signed {entry['mean_signed_error']:+.1%} over {len(entry['rows'])} candidates "
                  f"(target <= {result['target_median_abs_error']:.0%})")
