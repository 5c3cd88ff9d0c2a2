"""Spaces users write: loaded by ``module:object`` or ``file.py:object``, checked, refused
with one line naming the broken rule."""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import cli
import search_spaces
from automl.core.errors import AutomlError
from search_spaces.check import ContractError

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = "studies/examples/plain_cnn.py:PlainCNN"

USER_MODULE = '''
from torch import nn

import search_spaces
from automl import Genome
from search_spaces import SearchSpace


class TinyUser(SearchSpace):
    name = "tiny-user"
    description = "one convolution"

    def genes(self):
        return {"width": [4, 8], "kernel": [3, 5]}

    def build(self, genome: Genome, in_shape, num_classes):
        return nn.Sequential(nn.Conv2d(in_shape[0], genome["width"], genome["kernel"]), nn.AdaptiveAvgPool2d(1),
                             nn.Flatten(), nn.Linear(genome["width"], num_classes))


search_spaces.register(TinyUser)
'''


@pytest.fixture()
def forget():
    """Unregister what a test loads, so the registry is as it was."""
    names = set(search_spaces.names())
    yield
    for name in set(search_spaces.names()) - names:
        search_spaces.registry.unregister(name)
    search_spaces._loaded.clear()


def test_the_example_file_loads_builds_and_registers(forget, monkeypatch):
    monkeypatch.chdir(ROOT)
    space = search_spaces.get(EXAMPLE)
    assert space.name == "plain-cnn" and "plain-cnn" in search_spaces.names()
    assert search_spaces.get(EXAMPLE) is space
    genome = space.parse("d2-w16-k5")
    assert space.format(genome) == "d2-w16-k5"
    assert space.build(genome, (3, 32, 32), 7)(__import__("torch").zeros(1, 3, 32, 32)).shape == (1, 7)


def test_a_module_that_registers_itself_loads_first_in_a_fresh_interpreter(tmp_path):
    (tmp_path / "my_spaces.py").write_text(USER_MODULE)
    script = textwrap.dedent("""
        import my_spaces
        import search_spaces
        print(search_spaces.get("tiny-user").name, search_spaces.get("my_spaces:TinyUser").name,
              "mobile" in search_spaces.names())
    """)
    env_path = f"{tmp_path}:{ROOT}"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path,
                          env={"PYTHONPATH": env_path, "PATH": "/usr/bin:/bin"}, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["tiny-user", "tiny-user", "True"]


def test_a_module_space_by_import_path(tmp_path, monkeypatch, forget):
    (tmp_path / "my_other_spaces.py").write_text(USER_MODULE.replace("search_spaces.register(TinyUser)", ""))
    monkeypatch.syspath_prepend(str(tmp_path))
    assert search_spaces.get("my_other_spaces:TinyUser").name == "tiny-user"


BROKEN = {
    "genes() must return a non-empty dict": "def genes(self):\n        return {}",
    "choices must be unique as text": "def genes(self):\n        return {'w': [1, '1']}",
    "gene_kinds() must give every gene": "def gene_kinds(self):\n        return {'width': 'sorted', 'kernel': 'ordinal'}",
    "must map a (2, *shape) batch to (2, 10) logits": (
        "def build(self, genome, in_shape, num_classes):\n"
        "        return nn.Sequential(nn.Flatten(), nn.LazyLinear(3))"),
    "must return a torch.nn.Module": "def build(self, genome, in_shape, num_classes):\n        return 42",
}


@pytest.mark.parametrize("rule", sorted(BROKEN))
def test_a_space_that_breaks_the_contract_is_refused_in_one_line(rule, tmp_path, capsys, forget):
    source = USER_MODULE.replace("search_spaces.register(TinyUser)", "")
    source += f"\n\nclass Broken(TinyUser):\n    name = 'broken'\n\n    {BROKEN[rule]}\n"
    (tmp_path / "broken.py").write_text(source)
    with pytest.raises(SystemExit) as exit_:
        cli.main(["spaces", "show", f"{tmp_path}/broken.py:Broken"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "breaks the SearchSpace contract" in err and rule in err, err


def test_not_a_space_and_missing_names_are_user_errors(tmp_path, forget):
    (tmp_path / "other.py").write_text("VALUE = 3\n")
    with pytest.raises(AutomlError, match="not a search_spaces.SearchSpace"):
        search_spaces.get(f"{tmp_path}/other.py:VALUE")
    with pytest.raises(AutomlError, match="has no 'Missing'"):
        search_spaces.get(f"{tmp_path}/other.py:Missing")
    with pytest.raises(AutomlError, match="no file"):
        search_spaces.get(f"{tmp_path}/nowhere.py:X")
    with pytest.raises(AutomlError, match="no module"):
        search_spaces.get("no_such_module_here:X")
    assert issubclass(ContractError, AutomlError)


@pytest.mark.parametrize("source, words", [
    ("x = 1\nraise RuntimeError('boom')\n", "RuntimeError: boom ({path}, line 2)"),
    ("garbage(((\n", "SyntaxError: '(' was never closed ({path}, line 1)"),
    ("class S(TinyUser):\n    def __init__(self):\n        1 / 0\n", "ZeroDivisionError: division by zero ({path}, line "),
    ("class S(SearchSpace):\n    pass\n", "TypeError: Can't instantiate abstract class S"),
])
def test_a_space_whose_own_code_fails_is_one_line_saying_where(source, words, tmp_path, forget):
    path = tmp_path / "mine.py"
    path.write_text(USER_MODULE.replace("search_spaces.register(TinyUser)", "") + "\n" + source
                    if "class S" in source else source)
    with pytest.raises(AutomlError) as error:
        search_spaces.get(f"{path}:S")
    message = str(error.value)
    assert message.startswith(f"--space '{path}:S' failed to load: ") and words.format(path=path) in message
    assert "loader.py" not in message  # where: the user's line, never the loader's
