"""Fuzzing the config: random YAML files and random --set items give a Config or one clear TunesmithError."""

from __future__ import annotations

import uuid

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tunesmith.config import Config, field_help, load_config
from tunesmith.errors import TunesmithError

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
KEYS = [key for key, _, _ in field_help(Config)] + ["train", "data", "eval", "train.lora", "nope.key", "train.nope"]
scalar = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(), st.text(max_size=12))
value = st.recursive(scalar, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                                         max_size=3), max_leaves=6)


def _nested(pairs: dict) -> dict:
    tree: dict = {}
    for dotted, item in pairs.items():
        node = tree
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {}) if isinstance(node.get(part, {}), dict) else {}
        node[leaf] = item
    return tree


def _load(path, overrides):
    try:
        config = load_config(path, overrides)
    except TunesmithError as err:
        message = str(err)
        assert message.strip() and "Traceback" not in message and len(message) < 2000
        return None
    assert isinstance(config, Config)
    return config


@FUZZ
@given(text=st.text(max_size=200) | st.sampled_from(["a: [", "{", "- 1\n- 2", "!!python/object:os.system x",
                                                   "&a [*a]", "train: {max_steps: *x}", "\t\tmodel: x", "~"]))
def test_fuzz_yaml_text(tmp_path, text):
    path = tmp_path / f"{uuid.uuid4().hex}.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    _load(path, [])


@FUZZ
@given(content=st.binary(max_size=200) | st.sampled_from([b"[" * 20000, b"a: " + b"{b: " * 20000, b"\xff\xfe a: 1"]))
def test_fuzz_yaml_bytes(tmp_path, content):
    path = tmp_path / f"{uuid.uuid4().hex}.yaml"
    path.write_bytes(content)
    _load(path, [])


@FUZZ
@given(pairs=st.dictionaries(st.sampled_from(KEYS), value, max_size=5))
def test_fuzz_yaml_structures(tmp_path, pairs):
    path = tmp_path / f"{uuid.uuid4().hex}.yaml"
    path.write_text(yaml.safe_dump(_nested(pairs), allow_unicode=True))
    _load(path, [])


@FUZZ
@given(items=st.lists(st.one_of(
    st.text(max_size=30),
    st.builds(lambda k, v: f"{k}={v}", st.sampled_from(KEYS), st.text(max_size=15)),
    st.builds(lambda k, v: f"{k}={yaml.safe_dump(v, default_flow_style=True).strip()}", st.sampled_from(KEYS), value),
), max_size=4))
def test_fuzz_set_overrides(items):
    config = _load(None, items)
    if config is not None and items:
        key, _, raw = items[-1].partition("=")
        assert key  # an accepted override always named a key


def test_deeply_nested_set_value_is_one_short_error():
    assert _load(None, ["train.max_steps=" + "[" * 5000]) is None
