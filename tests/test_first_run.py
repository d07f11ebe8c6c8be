"""A newcomer's first run: the example ships inside the package, a data file is enough to start."""

import fnmatch
import tomllib
from pathlib import Path

from tunesmith.config import load_config
from tunesmith.pipeline import EXAMPLE_CONFIG, example_dir

ROOT = Path(__file__).resolve().parents[1]


def test_the_example_is_inside_the_package_and_in_its_package_data():
    folder = example_dir()
    assert folder == ROOT / "src" / "tunesmith" / "examples"
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["tunesmith"]
    shipped = sorted(p.name for p in folder.iterdir() if p.is_file())
    assert shipped == ["LUMENFOLD.md", "lumen_faq.jsonl", "lumen_faq.yaml"]
    for name in shipped:
        assert any(fnmatch.fnmatch(f"examples/{name}", pattern) for pattern in patterns), name


def test_the_checkout_examples_folder_is_the_package_copy():
    for name in ("lumen_faq.jsonl", "lumen_faq.yaml", "LUMENFOLD.md"):
        assert (ROOT / "examples" / name).resolve() == example_dir() / name


def test_the_example_config_parses_from_any_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = load_config(example_dir() / EXAMPLE_CONFIG, [f"data.path={example_dir() / 'lumen_faq.jsonl'}"])
    assert config.train.epochs == 4 and Path(config.data.path).is_file()


def test_a_value_that_fits_no_member_of_a_union_is_one_error():
    import pytest

    from tunesmith.errors import TunesmithError

    with pytest.raises(TunesmithError) as err:
        load_config(None, ["eval.max_new_tokens=0"])
    assert str(err.value) == ("--set eval.max_new_tokens=0: eval.max_new_tokens: Input should be greater than or "
                              "equal to 1 or 'auto', got 0")


def test_every_command_is_a_top_level_function(monkeypatch):
    import tunesmith
    import tunesmith.evaluate.runner  # noqa: F401 - subpackages imported before the names are used
    import tunesmith.serve.server  # noqa: F401
    import tunesmith.train.api  # noqa: F401
    from tunesmith.use.export import export
    from tunesmith.use.generate_file import generate_file

    for name in ("train", "evaluate", "serve"):  # subpackages that are also the API function
        monkeypatch.setattr(f"tunesmith.{name}.{name}", lambda *args, _name=name, **kwargs: (_name, args, kwargs))
        assert getattr(tunesmith, name)("cfg", x=1) == (name, ("cfg",), {"x": 1})
    assert tunesmith.generate is generate_file and tunesmith.export is export
    for name in ("prepare", "compare", "run", "quickstart", "chat", "load_for_use", "write_report"):
        assert callable(getattr(tunesmith, name)) and name in tunesmith.__all__
