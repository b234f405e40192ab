"""The scheduler comparison as a reusable pipeline (used by `bench/scheduler.py`; the service's `simulate`
command can call the same functions).

1. A course and the calibrated simulator.
2. The service's tracer: BKT fitted on a pilot log collected under an exploring v0 policy (mastery learning
   mixed with uniform choice over all candidates, weight `pilot_epsilon`), as the nightly refit fits it on real
   logs.
3. Learned policies: the bandit and the planner fitted on a second pilot log (decision log with features), the
   hierarchical policy's thresholds tuned and the PPO policy trained in the simulator, all on training seeds.
4. Every policy run on the evaluation seeds (disjoint from training seeds) with the same learners, candidate sets
   and BKT view.
5. Off-policy evaluation of every policy from a log collected under the exploring policy, against the value
   obtained by running each policy in the simulator on the same contexts.
"""

from __future__ import annotations

import itertools
import multiprocessing
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import numpy as np
from threadpoolctl import threadpool_limits

from learners.tracing.bkt import BKT
from tutor.policy.bandit import ContextualBanditPolicy
from tutor.policy.base import MasteryLearningPolicy, Policy
from tutor.policy.baselines import ExpertOrderPolicy, ExploringPolicy, RandomPolicy
from tutor.policy.belief import BeliefModel, BeliefPolicy
from tutor.policy.deeprl import PPOPolicy
from tutor.policy.features import FEATURE_NAMES, candidate_features, graph_index
from tutor.policy.hierarchical import HierarchicalPolicy
from tutor.policy.joint import JointBeliefPolicy, JointModel
from tutor.policy.ope import AnswerRewardModel, LoggedDecisions, evaluate
from tutor.policy.planner import PlannerPolicy
from tutor.policy.pomdp import BeliefRecorder, PlanningPolicy, PlanRecorder
from tutor.policy.spaced import SpacedReviewPolicy
from tutor.policy.zpdes import ZPDESPolicy
from tutor.sim.course import Course, synthetic_course
from tutor.sim.env import Setting
from tutor.sim.harness import DecisionLog, RunResult, attempt_log, run_policy, summarize
from tutor.sim.learners import SimParams, SkillParams
from tutor.sim.rl import SimVecEnv
from tutor.sim.tracking import BKTParams, bkt_params_from_tracer

BASELINES = ("random", "expert", "mastery", "zpdes", "spaced")
LEARNED = ("bandit", "planner", "ppo", "hierarchical", "belief", "joint", "pomdp")
TRAIN_SEED = 10_000  # training seeds start here; evaluation seeds are small integers
# The belief policy's thresholds searched on training learners (see tutor.policy.belief).
BELIEF_GRID: dict[str, tuple[Any, ...]] = {"mode": ("gain",), "done": (0.95, 0.97), "unlock": (0.93, 0.95)}
# The joint policy's gate (P(prerequisites known | skill unknown)) searched likewise (see tutor.policy.joint).
JOINT_GRID: dict[str, tuple[Any, ...]] = {"unlock": (0.6, 0.7), "lookahead": (0, 3)}
OPE_ESTIMATORS = ("ips", "snips", "dr", "cdr")


@dataclass(frozen=True)
class ExperimentConfig:
    n_skills: int = 12
    items_per_skill: int = 6
    course_seed: int = 0
    horizon: int = 300
    ks: tuple[int, ...] = (20, 50, 100, 200)
    seeds: tuple[int, ...] = (1, 2, 3, 4, 5)
    learners: int = 500
    pilot_learners: int = 500
    pilot_horizon: int = 200
    pilot_epsilon: float = 0.5
    ope_epsilon: float = 0.5
    ppo_iterations: int = 300
    ppo_envs: int = 256
    tune_learners: int = 200
    tune: bool = True
    # `joint` keeps its grid's first combination unless another needs fewer exercises on the same tuning learners
    # by more than this many standard errors of the paired difference (`grid_search`): on 200 learners the grid's
    # combinations are within noise of each other, and the plain best mean flipped with a machine's rounding.
    tune_z: float = 2.0
    # 8,000 x 150 exercises: about 1.16 million logged decisions, in chunks of `ope_chunk` learners run by
    # `workers` processes. A nearly deterministic policy keeps an effective sample of about 1% of them under 50%
    # uniform logging; weights on the served item's skill (the clustered estimator) keep about five times that.
    # The answer's own noise in the reward sets the standard error: 4,000 learners left the fixed syllabus, whose
    # value is a tenth of the others', 27-32% off with item weights (docs/decisions/0004).
    ope_learners: int = 8000
    ope_pilot_learners: int = 1000  # the reward model's log (an independent one of the same exploring policy)
    ope_chunk: int = 500
    ope_horizon: int = 150
    joint_learners: int = 150  # learners of the pilot log the joint model's refinement reads
    joint_rate_sd: float | None = None  # with a value: learning-rate classes in the joint model (sd to refine)
    # The belief-space planner (tutor.policy.pomdp): the beliefs `joint` meets on this many training learners, up to
    # `pomdp_beliefs` of them backed up for `pomdp_iterations` rounds of point-based value iteration.
    pomdp_learners: int = 300
    pomdp_beliefs: int = 1500
    pomdp_iterations: int = 200
    # Then the beliefs the planned policy itself meets on this many other training learners (up to
    # `pomdp_beliefs` of them) join the points for `pomdp_expand_iterations` more rounds (0: no expansion).
    pomdp_expand_learners: int = 300
    pomdp_expand_iterations: int = 60
    policies: tuple[str, ...] = BASELINES + LEARNED
    workers: int = 1

    @classmethod
    def quick(cls) -> ExperimentConfig:
        return cls(
            horizon=200,
            seeds=(1, 2),
            learners=25,
            pilot_learners=80,
            pilot_horizon=100,
            ppo_iterations=3,
            ppo_envs=32,
            tune=False,
            ope_learners=30,
            ope_pilot_learners=30,
            ope_horizon=60,
            joint_learners=10,
            pomdp_learners=10,
            pomdp_beliefs=100,
            pomdp_iterations=30,
            pomdp_expand_learners=10,
            pomdp_expand_iterations=10,
        )


@dataclass
class Prepared:
    setting: Setting
    tracer_params: dict[int, dict[str, float]]
    policies: dict[str, Policy]
    report: dict[str, Any] = field(default_factory=dict)


Log = Callable[[str], None]


def _quiet(_: str) -> None:
    return None


def make_setting(
    config: ExperimentConfig, sim: SimParams | None = None, course: Course | None = None
) -> Setting:
    course = course or synthetic_course(
        config.n_skills, config.items_per_skill, random_state=config.course_seed
    )
    sim = sim or SimParams()
    defaults = BKT.DEFAULTS
    bkt = BKTParams.constant(
        course.n_skills,
        defaults["prior"],
        defaults["learn"],
        defaults["guess"],
        defaults["slip"],
        defaults["forget"],
    )
    skill = SkillParams.draw(sim, course.n_skills, config.course_seed)
    # Policies see the whole history of the run (the belief policies filter it from the first answer).
    return Setting(course, sim, bkt, skill, horizon=config.horizon, history=max(config.horizon, 200))


def fit_tracer(setting: Setting, config: ExperimentConfig) -> tuple[Setting, BKT]:
    """The service's nightly refit: BKT on a pilot log of the exploring v0 policy (default parameters meanwhile)."""
    pilot = run_policy(
        ExploringPolicy(MasteryLearningPolicy(), epsilon=config.pilot_epsilon),
        replace(setting, horizon=config.pilot_horizon),
        config.pilot_learners,
        TRAIN_SEED,
        log=True,
    )
    assert pilot.log is not None
    tracer = BKT().fit(attempt_log(pilot.log, setting))
    return replace(setting, bkt=bkt_params_from_tracer(tracer, setting.course)), tracer


def _per_learner_to_mastery(setting: Setting, n: int, seed: int) -> Callable[[Policy], np.ndarray]:
    """Minus each learner's exercises to mastery (every policy meets the same learners with the same luck)."""

    def score(policy: Policy) -> np.ndarray:
        return -run_policy(policy, setting, n, seed).to_mastery()

    return score


def _score_to_mastery(setting: Setting, n: int, seed: int) -> Callable[[Policy], float]:
    """Minus the mean exercises to mastery of `_per_learner_to_mastery`."""
    per_learner = _per_learner_to_mastery(setting, n, seed)
    return lambda policy: float(per_learner(policy).mean())


def _planning_threads(config: ExperimentConfig) -> AbstractContextManager[Any]:
    """BLAS threads for a step that runs alone before the `workers` processes start: as many as there will be
    workers (the benchmark pins BLAS to one thread per process), or whatever the process has."""
    return threadpool_limits(config.workers) if config.workers > 1 else nullcontext()


def prepare(config: ExperimentConfig, setting: Setting, log: Log = _quiet) -> Prepared:
    """Fit the tracer and every learned policy on training seeds."""
    t0 = time.perf_counter()
    setting, tracer = fit_tracer(setting, config)
    tracer_params = {int(s): tracer.params_for(s) for s in setting.course.skill_ids}
    report: dict[str, Any] = {"tracer": {k: v.round(4).tolist() for k, v in vars(setting.bkt).items()}}
    log(f"tracer fitted on the pilot log ({time.perf_counter() - t0:.1f}s)")
    policies: dict[str, Policy] = {
        "random": RandomPolicy(),
        "expert": ExpertOrderPolicy(),
        "mastery": MasteryLearningPolicy(),
        "zpdes": ZPDESPolicy(),
        "spaced": SpacedReviewPolicy(),
    }
    wanted = set(config.policies)
    if config.tune and "zpdes" in wanted:
        # The same tuning budget as the learned hierarchical policy gets, so that the baseline is not a straw man:
        # ZPDES's thresholds are success rates, and what is reachable depends on slip and fatigue.
        t_z = time.perf_counter()
        score = _score_to_mastery(setting, config.tune_learners, TRAIN_SEED + 2)
        trials = []
        for done, unlock in itertools.product((0.65, 0.75, 0.85), (0.5, 0.6, 0.7)):
            if unlock <= done:
                trials.append(
                    ({"done": done, "unlock": unlock}, score(ZPDESPolicy(done=done, unlock=unlock)))
                )
        best = max(trials, key=lambda t: t[1])[0]
        policies["zpdes"] = ZPDESPolicy(done=best["done"], unlock=best["unlock"])
        report["zpdes_tuning"] = [{**p, "score": sc} for p, sc in trials]
        log(f"ZPDES tuned: {best} ({time.perf_counter() - t_z:.1f}s)")
    if wanted & {"bandit", "planner", "hierarchical", "belief", "joint", "pomdp"}:
        t1 = time.perf_counter()
        pilot = run_policy(
            ExploringPolicy(MasteryLearningPolicy(), epsilon=config.pilot_epsilon),
            replace(setting, horizon=config.pilot_horizon),
            config.pilot_learners,
            TRAIN_SEED + 1,
            log=True,
            features=candidate_features,
            skill_features=True,
        )
        lg = pilot.log
        assert lg is not None
        assert lg.skill_features is not None
        order = np.lexsort((lg.step, lg.learner))
        course = setting.course
        skill_ids = np.array(course.skill_ids)[lg.skill[order]]
        bandit = ContextualBanditPolicy().fit_uplift(
            lg.features[order],
            lg.skill_features[order],
            lg.learner[order],
            lg.skill[order],
            lg.correct[order],
        )
        policies["bandit"] = bandit
        planner = PlannerPolicy().fit(
            course.graph,
            tracer_params,
            lg.learner[order],
            skill_ids,
            course.difficulty[lg.item[order]],
            lg.correct[order],
            lg.features[order, FEATURE_NAMES.index("ability")],
        )
        policies["planner"] = planner
        report["planner_model"] = planner.model_
        log(f"bandit and planner fitted on the decision log ({time.perf_counter() - t1:.1f}s)")
        hier = HierarchicalPolicy(switch=0.8, confirm=1.0).fit(planner)
        if config.tune and "hierarchical" in wanted:  # about 7 minutes: only when it is compared
            t2 = time.perf_counter()
            score = _score_to_mastery(setting, config.tune_learners, TRAIN_SEED + 2)
            hier.tune(score, {"done": (0.9, 0.95), "confirm": (0.0, 1.0), "run": (0, 3)})
            report["hierarchical_tuning"] = hier.tuning_
            log(
                f"hierarchical tuned: done={hier.done} confirm={hier.confirm} run={hier.run} "
                f"({time.perf_counter() - t2:.1f}s)"
            )
        policies["hierarchical"] = hier
        if wanted & {"belief", "joint", "pomdp"}:
            t4 = time.perf_counter()
            assert lg.time is not None
            answers = (
                course.graph,
                lg.learner[order],
                skill_ids,
                course.difficulty[lg.item[order]],
                lg.correct[order],
                lg.time[order],
            )
            model = BeliefModel(n_classes=1).fit(*answers)
            report["belief_model"] = model.to_dict() | {"loglik": model.loglik_}
            log(f"belief model fitted on the decision log ({time.perf_counter() - t4:.1f}s)")
            score = _score_to_mastery(setting, config.tune_learners, TRAIN_SEED + 2)
            if "belief" in wanted:
                belief = BeliefPolicy().fit(model)
                if config.tune:
                    t5 = time.perf_counter()
                    belief.tune(score, BELIEF_GRID)
                    report["belief_tuning"] = belief.tuning_
                    log(
                        f"belief tuned: mode={belief.mode} done={belief.done} unlock={belief.unlock} "
                        f"({time.perf_counter() - t5:.1f}s)"
                    )
                policies["belief"] = belief
            if wanted & {"joint", "pomdp"}:
                t6 = time.perf_counter()
                joint_model = JointModel.from_model(model, rate_sd=config.joint_rate_sd).refine(
                    *answers, max_learners=config.joint_learners
                )
                report["joint_model"] = joint_model.to_dict() | {"refine": joint_model.refine_}
                log(f"joint model refined on the decision log ({time.perf_counter() - t6:.1f}s)")
                joint = JointBeliefPolicy().fit(joint_model)
                # Which pilot learners quit before the pilot's horizon: the session model's quitting half.
                last = np.zeros(config.pilot_learners, dtype=np.int64)
                np.maximum.at(last, lg.learner, lg.step + 1)
                try:
                    joint.fit_sessions(
                        lg.learner[order], lg.correct[order], lg.time[order], last < config.pilot_horizon
                    )
                    report["joint_sessions"] = joint.sessions_.to_dict() if joint.sessions_ else None
                except ValueError as exc:  # a small pilot where nobody quit: no guard
                    report["joint_sessions"] = {"skipped": str(exc)}
                if config.tune:
                    t7 = time.perf_counter()
                    paired = _per_learner_to_mastery(setting, config.tune_learners, TRAIN_SEED + 2)
                    joint.tune(paired, JOINT_GRID, paired_z=config.tune_z)
                    report["joint_tuning"] = joint.tuning_
                    log(
                        f"joint tuned: unlock={joint.unlock} lookahead={joint.lookahead} "
                        f"({time.perf_counter() - t7:.1f}s)"
                    )
                policies["joint"] = joint
                if "pomdp" in wanted:
                    t8 = time.perf_counter()
                    recorder = BeliefRecorder.of(joint)
                    run_policy(recorder, setting, config.pomdp_learners, TRAIN_SEED + 5)
                    beliefs = recorder.sample(config.pomdp_beliefs)
                    log(f"pomdp: {recorder.met_} beliefs met by joint, planning over {len(beliefs)} of those not "
                        "yet settled")
                    with _planning_threads(config):
                        pomdp = PlanningPolicy.of(joint).plan(beliefs, config.pomdp_iterations, progress=log)
                    assert pomdp.planner_ is not None
                    expanded = 0
                    if config.pomdp_expand_learners and config.pomdp_expand_iterations:
                        follower = PlanRecorder.following(pomdp)
                        run_policy(follower, setting, config.pomdp_expand_learners, TRAIN_SEED + 6)
                        more = follower.sample(config.pomdp_beliefs, random_state=1)[:-1]  # the prior is in
                        expanded = len(more)
                        log(f"pomdp: {follower.met_} beliefs met by the plan, {expanded} more points")
                        with _planning_threads(config):
                            pomdp.replan(
                                np.concatenate([beliefs, more]), config.pomdp_expand_iterations, progress=log
                            )
                    report["pomdp_planning"] = {
                        "beliefs": len(beliefs),
                        "met": recorder.met_,
                        "expanded": expanded,
                        "history": [{k: round(v, 3) for k, v in h.items()} for h in pomdp.planner_.history_],
                    }
                    policies["pomdp"] = pomdp
                    log(f"pomdp planned ({time.perf_counter() - t8:.1f}s)")
    if "ppo" in wanted:
        t3 = time.perf_counter()
        ppo = PPOPolicy(
            iterations=config.ppo_iterations,
            n_envs=config.ppo_envs,
            horizon=config.horizon,
            rollout=config.horizon,
        )
        gi = graph_index(setting.course.graph)

        def make_env(seed: int) -> SimVecEnv:
            return SimVecEnv(
                setting, ppo.n_envs, TRAIN_SEED + 1000 + seed, band_edges=ppo.band_edges, horizon=ppo.horizon
            )

        ppo.fit(make_env, gi.skills, gi.prereq)
        policies["ppo"] = ppo
        report["ppo_returns"] = [round(h["return"], 4) for h in ppo.history_]
        log(f"PPO trained for {ppo.iterations} iterations ({time.perf_counter() - t3:.1f}s)")
    report["prepare_seconds"] = round(time.perf_counter() - t0, 1)
    return Prepared(setting, tracer_params, {k: v for k, v in policies.items() if k in wanted}, report)


# -- evaluation ----------------------------------------------------------------------------------------------
_JOBS: dict[str, Any] = {}  # what forked workers read: set before `_in_workers`, inherited by the fork

_J = TypeVar("_J")
_R = TypeVar("_R")


def _in_workers(fn: Callable[[_J], _R], jobs: Sequence[_J], workers: int) -> Iterator[_R]:
    """`fn` over `jobs` in `workers` forked processes (in this one when 1), results as they finish. Forked
    children inherit the caller's open connections, so run several workers only from a process that holds none
    (the benchmark, `simulate`); kombu's after-fork cleanup, for one, can block on an inherited Redis channel."""
    if workers > 1 and len(jobs) > 1:
        with multiprocessing.get_context("fork").Pool(min(workers, len(jobs))) as pool:
            yield from pool.imap_unordered(fn, jobs)
    else:
        yield from map(fn, jobs)


def _run_job(job: tuple[str, int]) -> tuple[str, int, RunResult]:
    name, seed = job
    prepared: Prepared = _JOBS["prepared"]
    import torch

    torch.set_num_threads(1)
    r = run_policy(prepared.policies[name], prepared.setting, _JOBS["learners"], seed, name=name)
    return name, seed, r


def compare(prepared: Prepared, config: ExperimentConfig, log: Log = _quiet) -> dict[str, list[RunResult]]:
    """Run every policy on every evaluation seed (in `config.workers` forked processes)."""
    jobs = [(name, seed) for name in prepared.policies for seed in config.seeds]
    _JOBS.update(prepared=prepared, learners=config.learners)
    results: dict[str, list[RunResult]] = {name: [] for name in prepared.policies}
    for name, seed, r in _in_workers(_run_job, jobs, config.workers):
        results[name].append(r)
        log(f"  {name} seed {seed}: {r.seconds:.1f}s")
    for rs in results.values():
        rs.sort(key=lambda r: r.seed)
    return results


def summaries(results: dict[str, list[RunResult]], ks: Sequence[int]) -> dict[str, dict[str, Any]]:
    return {name: summarize(rs, ks) for name, rs in results.items()}


def relative_gain(
    summary: dict[str, dict[str, Any]], results: dict[str, list[RunResult]], policy: str, baseline: str
) -> dict[str, float]:
    """Fewer exercises to mastery of `policy` than `baseline`, per seed paired, mean and CI (as a share)."""
    from tutor.sim.harness import mean_ci

    a = np.array(summary[policy]["to_mastery"]["per_seed"])
    b = np.array(summary[baseline]["to_mastery"]["per_seed"])
    m, lo, hi = mean_ci(1.0 - a / b)
    return {"mean": m, "ci95": [lo, hi]}  # type: ignore[dict-item]


# -- off-policy evaluation check -----------------------------------------------------------------------------
def _ope_chunk(job: tuple[int, int, int, bool]) -> tuple[int, DecisionLog]:
    k, seed, n, shadowed = job
    import torch

    torch.set_num_threads(1)
    lg = run_policy(
        _JOBS["ope_logging"],
        _JOBS["ope_setting"],
        n,
        seed,
        log=True,
        shadows=_JOBS["ope_shadows"] if shadowed else None,
        features=candidate_features,
        q_model=_JOBS["ope_q"] if shadowed else None,
    ).log
    assert lg is not None
    return k, lg


def _logged(config: ExperimentConfig, seed: int, shadowed: bool, n: int) -> DecisionLog:
    """The exploring policy's log of `n` learners, run in chunks of `config.ope_chunk` (chunk k on seed
    `seed + 100_000 k`, so the log is the same whatever the number of workers) in `config.workers` processes
    (`_in_workers`)."""
    size = max(1, config.ope_chunk)
    sizes = [min(size, n - start) for start in range(0, n, size)]
    jobs = [(k, seed + 100_000 * k, m, shadowed) for k, m in enumerate(sizes)]
    logs = dict(_in_workers(_ope_chunk, jobs, config.workers))
    return DecisionLog.concat([logs[k] for k in range(len(sizes))], sizes)


def ope_check(prepared: Prepared, config: ExperimentConfig, log: Log = _quiet) -> dict[str, Any]:
    """Estimate every policy's per-decision value (immediate tracer gain) from a log of the exploring policy,
    and compare with the value of running it on the same contexts in the simulator (exact expectation from the
    true state). The reward model of the doubly robust estimators (`AnswerRewardModel`: P(right) from the
    candidate features, the gain if right and if wrong from the tracer) is fitted on an independent pilot log."""
    _JOBS.update(
        ope_setting=replace(prepared.setting, horizon=config.ope_horizon),
        ope_logging=ExploringPolicy(MasteryLearningPolicy(), epsilon=config.ope_epsilon),
        ope_shadows=prepared.policies,
    )
    t0 = time.perf_counter()
    pilot = _logged(config, TRAIN_SEED + 3, False, config.ope_pilot_learners)
    p_col = FEATURE_NAMES.index("p_correct")
    _JOBS["ope_q"] = AnswerRewardModel(p_column=p_col).fit(pilot.features, pilot.correct).predict
    lg = _logged(config, TRAIN_SEED + 4, True, config.ope_learners)
    assert lg.q_chosen is not None
    assert lg.skill_propensity is not None
    log(f"OPE log: {len(lg.item)} decisions of {config.ope_learners} learners ({time.perf_counter() - t0:.1f}s)")
    out: dict[str, Any] = {
        "decisions": len(lg.item),
        "learners": config.ope_learners,
        "logging_policy": f"mastery + uniform(epsilon={config.ope_epsilon})",
        "reward_model": f"AnswerRewardModel on {len(pilot.item)} decisions of {config.ope_pilot_learners} learners",
    }
    for name in prepared.policies:
        data = LoggedDecisions(
            reward=lg.reward,
            propensity=lg.propensity,
            target_prob=lg.target_prob[name],
            q_chosen=lg.q_chosen,
            q_target=lg.target_q[name],
            cluster_propensity=lg.skill_propensity,
            cluster_target_prob=lg.target_skill_prob[name],
        )
        est = evaluate(data, n_boot=100, groups=lg.learner)
        truth = float(lg.truth[name].mean())
        row: dict[str, Any] = {
            "truth": truth,
            "ess": est["ess"]["value"],
            "ess_clustered": est["ess_clustered"]["value"],
        }
        for k in OPE_ESTIMATORS:
            v = float(est[k]["value"])  # type: ignore[arg-type]
            row[k] = {"value": v, "ci95": est[k]["ci95"], "rel_error": abs(v - truth) / abs(truth)}
        pick = str(est["selected"]["estimator"])  # one of OPE_ESTIMATORS: its row is already there
        row["selected"] = {"estimator": pick, "value": row[pick]["value"], "rel_error": row[pick]["rel_error"]}
        out[name] = row
        log(f"  OPE {name}: truth {truth:.4f} " + " ".join(f"{k} {row[k]['value']:.4f}" for k in OPE_ESTIMATORS))
    return out
