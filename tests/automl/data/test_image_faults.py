"""Image folders from users: a corrupt, empty or giant image, or too few images to split, is one
line naming the problem - never a traceback, never accuracy 0.0 stored as a result."""

from __future__ import annotations

import numpy as np
import pytest

import cli
from automl.core.errors import DataError
from automl.data import load_dataset
from automl.data.images import open_image


def _pets(root, per_class: int = 10) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    for name in ("cat", "dog"):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)).save(root / name / f"{i}.png")


@pytest.mark.parametrize("content, message", [(b"", "cannot be read"), (b"not a png at all", "cannot be read"),
                                              ("half", "cannot be read")])
def test_a_damaged_image_in_a_folder_is_one_line_naming_it(tmp_path, content, message):
    _pets(tmp_path / "pets")
    bad = tmp_path / "pets" / "dog" / "bad.png"
    whole = (tmp_path / "pets" / "dog" / "0.png").read_bytes()
    bad.write_bytes(whole[:len(whole) // 2] if content == "half" else content)
    with pytest.raises(DataError, match=message) as error:
        load_dataset(f"imagefolder:{tmp_path / 'pets'}")
    assert "bad.png" in str(error.value) and "\n" not in str(error.value)


def test_an_image_too_large_to_decode_is_refused_from_its_header(tmp_path, monkeypatch):
    from PIL import Image

    import automl.data.images as images

    Image.new("RGB", (40, 30)).save(tmp_path / "big.png")
    monkeypatch.setattr(images, "MAX_PIXELS", 1000)
    with pytest.raises(DataError, match="40x30 pixels, more than 1000"):
        open_image(tmp_path / "big.png")


@pytest.mark.parametrize("per_class, split", [(2, "validation"), (1, "validation"), (4, "test")])
def test_too_few_images_to_split_are_refused(tmp_path, per_class, split):
    _pets(tmp_path / "pets", per_class)
    with pytest.raises(DataError, match=f"the {split} split is empty"):
        load_dataset(f"imagefolder:{tmp_path / 'pets'}")


def test_six_images_per_class_are_enough(tmp_path):
    _pets(tmp_path / "pets", 6)
    data = load_dataset(f"imagefolder:{tmp_path / 'pets'}")
    assert min(len(data.train), len(data.val), len(data.test)) > 0


def test_cli_search_on_a_two_image_folder_stores_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    _pets(tmp_path / "pets", 2)
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["search", "--dataset", f"imagefolder:{tmp_path / 'pets'}", "--study", "tiny", "--budget", "2"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and len(err.strip().splitlines()) == 1 and "validation split is empty" in err
    assert not (tmp_path / "studies").exists()
