"""``automl spaces`` and ``automl spaces show``."""

import json

import pytest

import cli


def run(capsys, *args):
    with pytest.raises(SystemExit) as done:
        cli.main(list(args))
    captured = capsys.readouterr()
    return done.value.code, captured.out, captured.err


def test_show_lists_genes_kinds_size_and_presets(capsys):
    code, out, _ = run(capsys, "spaces", "show", "dvolver", "--json")
    result = json.loads(out)
    assert code == 0 and result["space"] == "dvolver" and result["size"] > 10**20
    genes = {row["gene"]: row for row in result["genes"]}
    assert genes["N"]["kind"] == "ordinal" and genes["n0_op0"]["kind"] == "nominal"
    assert len(genes["n0_op0"]["costs"]) == len(genes["n0_op0"]["choices"])
    assert "nasnet-a" in result["presets"] and "genome" not in result


def test_show_a_preset_gives_its_flops_and_params_at_the_input(capsys):
    code, out, _ = run(capsys, "spaces", "show", "resnet", "--genome", "resnet18", "--input", "3,224,224",
                       "--classes", "1000", "--json")
    genome = json.loads(out)["genome"]
    assert code == 0 and genome["params"] == 11689512 and genome["input"] == [3, 224, 224]
    assert abs(genome["flops"] / 2 - 1814.073e6) / 1814.073e6 < 0.02  # torchvision's published count


def test_show_prints_a_table_and_the_list_still_works(capsys):
    code, out, _ = run(capsys, "spaces", "show", "mobile", "--genome",
                       "stem8-ir_r1_k3_e1_c8-ir_r1_k3_e1_c16-ir_r1_k3_e1_c24-ir_r1_k3_e1_c32-ir_r1_k3_e1_c48-head128")
    assert code == 0 and "MFLOPs" in out and "s1_depth" in out
    code, out, _ = run(capsys, "spaces", "--json")
    assert code == 0 and {"mobile", "dvolver", "resnet"} <= {row["name"] for row in json.loads(out)}


@pytest.mark.parametrize("args, message", [
    (["nope"], "unknown search space 'nope'"),
    (["resnet", "--genome", "resnet99"], "resnet genome 'resnet99' must read"),
    (["resnet", "--genome", "resnet18", "--input", "3x224"], "--input '3x224' must read C,H,W"),
])
def test_mistakes_are_one_line_and_exit_2(capsys, args, message):
    code, _, err = run(capsys, "spaces", "show", *args)
    assert code == 2 and len(err.strip().splitlines()) == 1 and message in err


def test_any_input_size_is_counted_without_memory(capsys):
    """Counted on the meta device: a 100000x100000 input (40 GB as real zeros) is just numbers."""
    from tests.conftest import SMALLEST_MOBILE

    code, out, _ = run(capsys, "spaces", "show", "mobile", "--genome", SMALLEST_MOBILE,
                       "--input", "1,100000,100000", "--json")
    small = json.loads(run(capsys, "spaces", "show", "mobile", "--genome", SMALLEST_MOBILE, "--json")[1])["genome"]
    genome = json.loads(out)["genome"]
    assert code == 0 and genome["flops"] > 10**6 * small["flops"] and genome["params"] == small["params"]
