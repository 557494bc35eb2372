from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from conftest import assert_config_error
from passersby.common import config
from passersby.common.config import ConfigError


def write(tmp_path: Path, data: dict) -> Path:
    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump(data))
    return p


def test_defaults_file_equals_dataclass_defaults() -> None:
    assert config.load() == config.Config()


def test_file_overrides_defaults(tmp_path: Path) -> None:
    cfg = config.load(write(tmp_path, {"look": {"grain": 0.1}, "stream": {"seed": "0xff"}}))
    assert cfg.look.grain == 0.1 and cfg.stream.seed == 255
    assert cfg.look.vignette == config.LookConfig().vignette


@pytest.mark.parametrize("data, words", [
    ({"look": {"grian": 0.1}}, ["look.grian", "allowed keys", "grain"]),
    ({"look": {"grain": "lots"}}, ["look.grain", "'lots'", "number"]),
    ({"look": {"grain": 7}}, ["look.grain", "7", "0.0 to 0.5"]),
    ({"traversal": {"mode": "spin"}}, ["traversal.mode", "'spin'", "feedback"]),
    ({"traversal": {"transform": {"mirror": "yes"}}},
     ["traversal.transform.mirror", "true or false"]),
    ({"render": {"size": [512]}}, ["render.size", "list of 2"]),
    ({"look": {"mat_color": [0.1, 0.2, 9]}}, ["look.mat_color[2]", "9"]),
    ({"stream": {"keyframes_per_second": True}}, ["stream.keyframes_per_second", "True"]),
    ({"stream": 3}, ["stream", "mapping"]),
])
def test_bad_values_name_file_key_value_and_range(tmp_path: Path, data: dict, words: list) -> None:
    assert_config_error(write(tmp_path, data), words)


def test_unreadable_and_invalid_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        config.load(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("look: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        config.load(bad)


def test_command_line_overrides_are_validated() -> None:
    with pytest.raises(ConfigError, match="command line: render.size"):
        config.load(None, {"render": {"size": [4, 4]}})
    assert config.load(None, {"render": {"fps": 12}}).render.fps == 12.0


def test_layered_merges_mappings_at_every_depth_and_replaces_the_rest() -> None:
    defaults = {"look": {"grain": 0.1, "mat_color": [0, 0, 0]}, "stream": {"seed": 1}}
    file = {"look": {"grain": 0.2}, "screens": [{"monitor": 0}]}
    flags = {"look": {"mat_color": [1, 1, 1]}, "stream": None}
    assert config.layered(defaults, file, flags) == {
        "look": {"grain": 0.2, "mat_color": [1, 1, 1]}, "stream": None,
        "screens": [{"monitor": 0}]}
    assert defaults == {"look": {"grain": 0.1, "mat_color": [0, 0, 0]}, "stream": {"seed": 1}}
    assert config.layered() == {} and config.layered(file) == file
