import numpy as np
import pytest

from tutor.policy.ope import (
    AnswerRewardModel,
    LoggedDecisions,
    bootstrap_ci,
    clustered_dr,
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
    assert set(out) == {"ips", "snips", "dr", "ess"}  # no clusters given: no clustered estimator
    for k in ("ips", "snips", "dr"):
        lo, hi = out[k]["ci95"]
        assert lo <= out[k]["value"] <= hi


def test_zero_propensity_is_refused():
    with pytest.raises(ValueError, match="positive"):
        LoggedDecisions(reward=np.ones(2), propensity=np.array([0.5, 0.0]), target_prob=np.ones(2))


# Clusters of actions (skills of items): 4 clusters of 8 items. The reward depends on the context and cluster
# (unknown to the model) plus an item effect within the cluster.
N_CLUSTERS, PER_CLUSTER = 4, 8
CLUSTER_MEAN = np.array([[0.1, 0.4, 0.6, 0.3], [0.5, 0.2, 0.3, 0.7]])  # (context, cluster)
ITEM_EFFECT = np.tile(np.linspace(-0.15, 0.15, PER_CLUSTER), N_CLUSTERS)  # within-cluster differences
CLUSTER_OF = np.repeat(np.arange(N_CLUSTERS), PER_CLUSTER)
# A nearly deterministic target: one item of one cluster per context (plus a little spread).
TARGET_ITEMS = np.full((2, N_CLUSTERS * PER_CLUSTER), 0.1 / 31)
TARGET_ITEMS[0, 2 * PER_CLUSTER + 7] = 0.9
TARGET_ITEMS[1, 0 * PER_CLUSTER + 1] = 0.9
TARGET_ITEMS /= TARGET_ITEMS.sum(axis=1, keepdims=True)
MEAN_ITEMS = CLUSTER_MEAN[:, CLUSTER_OF] + ITEM_EFFECT[None, :]
CLUSTER_VALUE = float(0.5 * (TARGET_ITEMS * MEAN_ITEMS).sum())


def clustered_log(n: int, rng: np.random.Generator, q: np.ndarray) -> LoggedDecisions:
    """Uniform logging over the 32 items; `q` (2, 32) is the reward model."""
    n_items = N_CLUSTERS * PER_CLUSTER
    x = rng.integers(0, 2, size=n)
    a = rng.integers(0, n_items, size=n)
    r = MEAN_ITEMS[x, a] + 0.3 * rng.standard_normal(n)
    same = CLUSTER_OF[None, :] == CLUSTER_OF[a][:, None]  # (n, items): items of the served item's cluster
    return LoggedDecisions(
        reward=r,
        propensity=np.full(n, 1.0 / n_items),
        target_prob=TARGET_ITEMS[x, a],
        q_chosen=q[x, a],
        q_target=(TARGET_ITEMS[x] * q[x]).sum(axis=1),
        cluster_propensity=np.full(n, PER_CLUSTER / n_items),
        cluster_target_prob=(TARGET_ITEMS[x] * same).sum(axis=1),
    )


def test_clustered_dr_is_unbiased_when_the_model_knows_the_differences_within_a_cluster():
    rng = np.random.default_rng(4)
    # Right about items within a cluster, wrong about every cluster's level: local correctness.
    local_q = np.tile(0.5 + ITEM_EFFECT, (2, 1))
    cdr_runs = np.array([clustered_dr(clustered_log(400, rng, local_q)) for _ in range(2000)])
    dr_runs = np.array([doubly_robust(clustered_log(400, rng, local_q)) for _ in range(2000)])
    se = cdr_runs.std() / np.sqrt(len(cdr_runs))
    assert abs(cdr_runs.mean() - CLUSTER_VALUE) < 3.5 * se
    assert abs(dr_runs.mean() - CLUSTER_VALUE) < 3.5 * dr_runs.std() / np.sqrt(len(dr_runs))
    # Weights of 4 at most instead of 29: a far smaller spread.
    assert cdr_runs.std() < 0.5 * dr_runs.std()


def test_clustered_dr_is_biased_when_the_model_misses_the_differences_within_a_cluster():
    rng = np.random.default_rng(5)
    flat_q = np.full((2, N_CLUSTERS * PER_CLUSTER), 0.5)  # no item effect: local correctness fails
    big = clustered_log(400_000, rng, flat_q)
    # The target picks the best item of one cluster (effect +0.15) in one context and the second worst of another
    # (-0.11) in the other, each with probability 0.9. Cluster averages miss both effects: a bias of about
    # 0.5 x 0.9 x (-0.15 + 0.11) = -0.02. Item-level DR stays right.
    assert abs(clustered_dr(big) - CLUSTER_VALUE) > 0.01
    assert doubly_robust(big) == pytest.approx(CLUSTER_VALUE, abs=0.005)


def test_the_fast_bootstrap_matches_resampling_rows():
    rng = np.random.default_rng(6)
    local_q = np.tile(0.5 + ITEM_EFFECT, (2, 1))
    data = clustered_log(3000, rng, local_q)
    groups = rng.integers(0, 150, size=len(data))
    for fn in (ips, snips, doubly_robust, clustered_dr):
        fast = bootstrap_ci(fn, data, n_boot=60, groups=groups, random_state=1)
        rows = bootstrap_ci(lambda d, fn=fn: fn(d), data, n_boot=60, groups=groups, random_state=1)  # generic
        assert fast == pytest.approx(rows, rel=1e-9, abs=1e-12)


def test_evaluate_adds_the_clustered_estimator_and_its_effective_sample():
    rng = np.random.default_rng(7)
    out = evaluate(clustered_log(3000, rng, np.tile(0.5 + ITEM_EFFECT, (2, 1))), n_boot=50)
    assert set(out) == {"ips", "snips", "dr", "cdr", "selected", "ess", "ess_clustered"}
    assert out["ess_clustered"]["value"] > 4 * out["ess"]["value"]


def test_cluster_columns_are_checked():
    one = np.ones(2)
    with pytest.raises(ValueError, match="go together"):
        LoggedDecisions(reward=one, propensity=one / 2, target_prob=one, cluster_propensity=one)
    with pytest.raises(ValueError, match="cannot be below"):
        LoggedDecisions(
            reward=one, propensity=one / 2, target_prob=one, cluster_propensity=one / 4, cluster_target_prob=one
        )


def test_answer_reward_model_learns_p_right_and_mixes_the_two_gains():
    rng = np.random.default_rng(8)
    n = 20_000
    difficulty = rng.uniform(-1, 1, n)
    p_tracer = rng.uniform(0.2, 0.9, n)  # a prediction that ignores difficulty
    logit = np.log(p_tracer / (1 - p_tracer)) - 0.8 * difficulty
    correct = rng.random(n) < 1 / (1 + np.exp(-logit))
    x = np.column_stack([np.ones(n), difficulty, p_tracer])
    model = AnswerRewardModel(p_column=2).fit(x, correct)
    probe = np.array([[1.0, -1.0, 0.5], [1.0, 1.0, 0.5]])
    p = model.p_right(probe)
    assert p[0] == pytest.approx(1 / (1 + np.exp(-0.8)), abs=0.03)
    assert p[1] == pytest.approx(1 / (1 + np.exp(0.8)), abs=0.03)
    q = model.predict(probe, up=np.array([0.1, 0.1]), down=np.array([-0.2, -0.2]))
    assert q == pytest.approx(-0.2 + 0.3 * p)
    with pytest.raises(ValueError, match="correct"):
        AnswerRewardModel().fit(x[:10], np.ones(10, dtype=bool))


def test_selection_keeps_the_clustered_estimate_unless_the_unclustered_interval_excludes_it():
    from tutor.policy.ope import select_estimator

    agree = {"cdr": {"ci95": [0.045, 0.055]}, "dr": {"ci95": [0.049, 0.073]}}
    assert select_estimator(agree, ("cdr", "dr")) == "cdr"
    apart = {"cdr": {"ci95": [0.018, 0.021]}, "dr": {"ci95": [0.024, 0.029]}}
    assert select_estimator(apart, ("cdr", "dr")) == "dr"
    # On a log where the model misses the differences within a cluster, the bias shows and DR is chosen.
    rng = np.random.default_rng(9)
    out = evaluate(clustered_log(100_000, rng, np.full((2, N_CLUSTERS * PER_CLUSTER), 0.5)), n_boot=60)
    assert out["selected"]["estimator"] == "dr"
    assert abs(out["selected"]["value"] - CLUSTER_VALUE) < 0.01
