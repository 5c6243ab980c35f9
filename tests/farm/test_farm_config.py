"""farm.toml: every setting written with a comment, and bad settings refused with the key and allowed values."""

import subprocess
import sys

import pytest

from armfarm.farm.config import FarmConfig, from_toml, init, load, to_toml


def cli(*args):
    return subprocess.run([sys.executable, "-m", "armfarm.cli.main", *map(str, args)], capture_output=True,
                          text=True, timeout=120)


def test_init_writes_every_setting_with_a_comment_and_reads_back(tmp_path):
    config = init(tmp_path / "farm", "Hopper-v5", robots=3, algo="td3bc",
                  overrides={"noise": "0.2", "algo_config.alpha": "2.5", "warm_start": "false"})
    text = (tmp_path / "farm" / "farm.toml").read_text()
    for name in FarmConfig.__dataclass_fields__:
        if name != "algo_config":
            line = next(line for line in text.splitlines() if line.startswith(f"{name} = "))
            assert "  # " in line, line
    assert load(tmp_path / "farm") == config
    assert config.robots == 3 and config.noise == 0.2 and config.warm_start is False
    assert config.algo_settings().alpha == 2.5


@pytest.mark.parametrize("pair,message", [
    ("noise=-0.5", "noise must be >= 0"),
    ("robots=0", "robots must be 1 to 256"),
    ("warm_start=ture", "warm_start='ture' is not a bool"),
    ("algo=sac", "the farm learns offline; algo must be an offline algorithm"),
    ("algo=fqe", "the farm learns offline; algo must be an offline algorithm"),
    ("algo=gciql", "the farm promotes by return, and gciql learns to reach goals"),
    ("algo=ppo", "algo must be an offline algorithm that `armfarm algos` lists"),
    ("algo=dqn", "Hopper-v5 has continuous actions; dqn learns discrete ones"),
    ("algo_config.expectle=0.9", "no setting 'expectle'"),
    ("eval_episodes=1", "eval_episodes must be 2 to 10000"),
    ("confidence=2", "confidence must be 0.5 to 0.999"),
    ("nosie=1", "no setting 'nosie'"),
])
def test_bad_settings_are_refused_at_init_with_key_and_allowed_values(tmp_path, pair, message):
    result = cli("farm", "init", tmp_path / "farm", "--env", "Hopper-v5", "--set", pair)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) <= 3  # one error, maybe folded by the terminal width
    assert not (tmp_path / "farm" / "farm.toml").exists()


def test_bad_files_unknown_envs_and_a_file_as_farm_dir_are_one_line_errors(tmp_path):
    init(tmp_path / "farm", "Hopper-v5")
    path = tmp_path / "farm" / "farm.toml"
    path.write_text(path.read_text().replace("robots = 2", "robots = -4"))
    result = cli("farm", "run", tmp_path / "farm", "--rounds", "1")
    assert result.returncode == 2 and "robots must be 1 to 256" in result.stderr
    path.write_text(path.read_text().replace("robots = -4", "robots = 2\nspeed = 3"))
    result = cli("farm", "status", tmp_path / "farm")
    assert result.returncode == 2 and "unknown setting 'speed'" in result.stderr
    path.write_text("[robots\n")
    assert "not valid TOML" in cli("farm", "run", tmp_path / "farm").stderr

    result = cli("farm", "init", tmp_path / "other", "--env", "NoSuchEnv-v9")
    assert result.returncode == 2 and "unknown environment id 'NoSuchEnv-v9'" in result.stderr
    (tmp_path / "a-file").write_text("x")
    for verb in (("init", tmp_path / "a-file", "--env", "Hopper-v5"), ("run", tmp_path / "a-file"),
                 ("status", tmp_path / "a-file")):
        result = cli("farm", *verb)
        assert result.returncode == 2 and "is a file, not a farm directory" in result.stderr, result.stderr
    result = cli("farm", "run", tmp_path / "empty")
    assert result.returncode == 2 and "holds no farm.toml" in result.stderr


def test_toml_round_trip_keeps_types():
    config = FarmConfig(env="Hopper-v5").with_overrides({"algo": "iql", "algo_config.hidden": "32,32"})
    again = from_toml(to_toml(config))
    assert again == config and again.algo_config["hidden"] == (32, 32)
