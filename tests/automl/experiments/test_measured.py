"""`automl accelerators` reads what each method last measured from committed results."""

import json

from automl.experiments.measured import describe, for_method, last_measured


def _result(folder, name, date, gpu, speedup, entry="subset"):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(json.dumps({
        "provenance": {"date": date, "gpu": gpu, "command": "automl bench accelerators"},
        "benchmark": "accelerators", "candidates": 16, "seeds": 2, "seed_noise": {"kendall_tau": 0.77},
        "table": {entry: {"measured_speedup": speedup, "accuracy_delta_mean": -0.14, "kendall_tau": 0.73}}}))


def test_the_newest_result_of_this_kind_of_device_wins(tmp_path):
    folder = tmp_path / "docs" / "benchmarks"
    _result(folder, "old.json", "2026-11-01T00:00:00", None, 1.2)
    _result(folder, "new.json", "2026-11-20T00:00:00", None, 1.37)
    _result(folder, "gpu.json", "2026-11-25T00:00:00", "NVIDIA H200", 3.0)
    (folder / "other.json").write_text(json.dumps({"benchmark": "trainer", "ratio": 1.0}))
    (folder / "broken.json").write_text("{not json")
    cpu = last_measured("cpu", folder)
    assert cpu["subset"]["speedup"] == 1.37 and cpu["subset"]["file"] == "docs/benchmarks/new.json"
    assert describe(cpu["subset"]) == "1.37x, -14.0 pt, tau 0.73 (ceiling 0.77)"
    assert last_measured("NVIDIA H200", folder)["subset"]["speedup"] == 3.0
    assert describe(None) == "not measured" and last_measured("cpu", tmp_path / "nowhere") == {}


def test_a_method_measured_only_at_other_options_shows_those_options(tmp_path):
    folder = tmp_path / "docs" / "benchmarks"
    _result(folder, "a.json", "2026-11-01T00:00:00", None, 1.32, entry="subset:fraction=0.7")
    _result(folder, "b.json", "2026-11-02T00:00:00", None, 1.9, entry="subset:fraction=0.5+wae")
    figures = last_measured("cpu", folder)
    assert describe(for_method(figures, "subset")) == "1.32x, -14.0 pt, tau 0.73 (ceiling 0.77) at fraction=0.7"
    assert for_method(figures, "wae") is None  # a pair is not the method alone
    _result(folder, "c.json", "2026-11-03T00:00:00", None, 1.1)
    assert describe(for_method(last_measured("cpu", folder), "subset")).endswith("(ceiling 0.77)")
