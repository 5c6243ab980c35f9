"""SAC (the online algorithm) satisfies the same contract as the offline ones."""

from algo_testlib import check_algorithm

from armfarm.algos import get_algorithm
from armfarm.algos.sac import SACConfig


def test_sac_satisfies_the_algorithm_contract(tmp_path):
    check_algorithm(get_algorithm("sac"), SACConfig(hidden=(32, 32)), tmp_path)


def test_sac_config_defaults_are_haarnoja_et_al():
    c = SACConfig()
    assert (c.actor_lr, c.critic_lr, c.alpha_lr, c.gamma, c.tau, c.batch_size, c.hidden) == (
        3e-4, 3e-4, 3e-4, 0.99, 0.005, 256, (256, 256))
    assert c.target_entropy is None  # -|A|
