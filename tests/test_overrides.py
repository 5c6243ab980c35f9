"""--set values are coerced by the config's type hints, in one place, and bad values are refused."""

import dataclasses

import pytest

from armfarm.algos import config_from_dict, get_algorithm
from armfarm.overrides import coerce_fields, parse_pairs


def test_a_field_whose_default_is_none_gets_its_annotated_type():
    sac = get_algorithm("sac")
    config = config_from_dict(sac.config_cls, {"target_entropy": "-3"})
    assert config.target_entropy == -3.0 and isinstance(config.target_entropy, float)
    assert config_from_dict(sac.config_cls, {"target_entropy": "none"}).target_entropy is None


@pytest.mark.parametrize("text,value", [("true", True), ("False", False), ("1", True), ("off", False)])
def test_booleans_parse_strictly(text, value):
    cql = get_algorithm("cql")
    assert config_from_dict(cql.config_cls, {"lagrange": text}).lagrange is value


def test_a_boolean_typo_is_refused_with_key_and_type():
    cql = get_algorithm("cql")
    with pytest.raises(ValueError, match=r"lagrange='ture' is not a bool"):
        config_from_dict(cql.config_cls, {"lagrange": "ture"})


def test_numbers_tuples_and_unknown_keys():
    iql = get_algorithm("iql")
    config = config_from_dict(iql.config_cls, parse_pairs(["expectile=0.9", "hidden=64,64", "batch_size=32"]))
    assert config.expectile == 0.9 and config.hidden == (64, 64) and config.batch_size == 32
    with pytest.raises(ValueError, match=r"batch_size='3.5' is not a int"):
        config_from_dict(iql.config_cls, {"batch_size": "3.5"})
    with pytest.raises(ValueError, match=r"no setting 'expectle'.*expectile"):
        config_from_dict(iql.config_cls, {"expectle": "0.9"})
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_pairs(["expectile"])


def test_json_values_from_a_checkpoint_round_trip():
    @dataclasses.dataclass(frozen=True)
    class C:
        hidden: tuple[int, ...] = (1,)
        rate: float = 1.0
        name: str | None = None

    assert coerce_fields(C, {"hidden": [3, 4], "rate": 2, "name": None}) == {"hidden": (3, 4), "rate": 2.0, "name": None}
