import numpy as np
import pytest

from tutor.policy.ope import (
    LoggedDecisions,
    bootstrap_ci,
    doubly_robust,
    effective_sample_size,
    evaluate,
    ips,
    snips,
)

MU = np.array([[0.2, 0.5, 0.9], [0.7, 0.4, 0.1]])  # mean reward of action a in context x
LOGGING = np.array([[0.5, 0.3, 0.2], [0.2, 0.2, 0.6]])
TARGET = np.array([[0.1, 0.1, 0.8], [0.7, 0.2, 0.1]])
TRUE_VALUE = float(0.5 * (TARGET * MU).sum())


def bandit_log(n: int, rng: np.random.Generator, q: np.ndarray) -> LoggedDecisions:
    x = rng.integers(0, 2, size=n)
    a = (rng.random(n)[:, None] > np.cumsum(LOGGING[x], axis=1)).sum(axis=1)
    r = (rng.random(n) < MU[x, a]).astype(float)
    return LoggedDecisions(
        reward=r,
        propensity=LOGGING[x, a],
        target_prob=TARGET[x, a],
        q_chosen=q[x, a],
        q_target=(TARGET[x] * q[x]).sum(axis=1),
    )


@pytest.mark.parametrize("estimator", [ips, doubly_robust])
def test_unbiased_on_a_known_bandit(estimator):
    rng = np.random.default_rng(0)
    wrong_q = np.full((2, 3), 0.5)  # a poor reward model: DR stays unbiased through the propensities
    values = np.array([estimator(bandit_log(100, rng, wrong_q)) for _ in range(4000)])
    se = values.std() / np.sqrt(len(values))
    assert abs(values.mean() - TRUE_VALUE) < 3.5 * se
    assert se < 0.003


def test_snips_is_consistent_and_dr_with_the_true_model_has_lower_variance():
    rng = np.random.default_rng(1)
    big = bandit_log(200_000, rng, MU)
    assert snips(big) == pytest.approx(TRUE_VALUE, abs=0.005)
    assert doubly_robust(big) == pytest.approx(TRUE_VALUE, abs=0.005)
    ips_runs = [ips(bandit_log(200, rng, MU)) for _ in range(500)]
    dr_runs = [doubly_robust(bandit_log(200, rng, MU)) for _ in range(500)]
    assert np.std(dr_runs) < 0.6 * np.std(ips_runs)


def test_on_policy_log_reduces_to_the_mean_reward():
    r = np.array([1.0, 0.0, 1.0, 1.0])
    p = np.array([0.5, 0.25, 0.5, 0.1])
    d = LoggedDecisions(reward=r, propensity=p, target_prob=p)
    assert ips(d) == 0.75 and snips(d) == 0.75
    assert effective_sample_size(d) == 4.0


def test_bootstrap_interval_covers_and_groups_widen_it():
    rng = np.random.default_rng(2)
    data = bandit_log(5000, rng, MU)
    lo, hi = bootstrap_ci(snips, data, n_boot=300, random_state=0)
    assert lo < TRUE_VALUE < hi and hi - lo < 0.05
    # Perfectly correlated decisions within groups of 50: learner-level resampling must give a wider interval.
    groups = np.repeat(np.arange(100), 50)
    clustered = LoggedDecisions(
        reward=np.repeat(data.reward[:100], 50),
        propensity=np.repeat(data.propensity[:100], 50),
        target_prob=np.repeat(data.target_prob[:100], 50),
    )
    lo_i, hi_i = bootstrap_ci(ips, clustered, n_boot=300, random_state=0)
    lo_g, hi_g = bootstrap_ci(ips, clustered, n_boot=300, groups=groups, random_state=0)
    assert hi_g - lo_g > 3 * (hi_i - lo_i)


def test_evaluate_reports_all_estimators():
    rng = np.random.default_rng(3)
    out = evaluate(bandit_log(3000, rng, MU), n_boot=50)
    assert set(out) == {"ips", "snips", "dr", "ess"}
    for k in ("ips", "snips", "dr"):
        lo, hi = out[k]["ci95"]
        assert lo <= out[k]["value"] <= hi


def test_zero_propensity_is_refused():
    with pytest.raises(ValueError, match="positive"):
        LoggedDecisions(reward=np.ones(2), propensity=np.array([0.5, 0.0]), target_prob=np.ones(2))
