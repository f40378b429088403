"""BC (AlberDICE's data policy) and MADT on flat observations: shapes on warehouse and
StarCraft layouts, imitation of a synthetic behaviour, masked greedy and seeded sampling
policies, checkpoints, MADT's published settings."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from torch import nn

from marlbench.data.dataset import Batch, stack_batches
from marlbench.envs.maps import get_map
from marlbench.learners import LEARNERS, get_learner
from marlbench.learners.madt import MADTConfig, decay_split

FLAT = ("bc", "madt")
TASKS = ("rware-tiny-2ag", "5m_vs_6m")


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny networks: one thread is fastest, and stays fast on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _learner(name: str, task: str, seed: int = 0, **cfg):
    torch.manual_seed(seed)
    cls = get_learner(name)
    return cls({task: get_map(task).layout}, cls.Config(**cfg), torch.device("cpu"))


def _batch(task: str, b: int = 4, t: int = 8, seed: int = 0, behaviour=None,
           avail_p: float = 1.0) -> Batch:
    """``b`` episodes of 3..t rows (the last filled row post-terminal); actions from
    ``behaviour(obs [b, t, n, obs]) → [b, t, n]`` or uniform."""
    lay = get_map(task).layout
    g = torch.Generator().manual_seed(seed)
    n = lay.n_agents
    length = torch.randint(3, t + 1, (b,), generator=g)
    length[0] = t
    filled = (torch.arange(t)[None] < length[:, None]).float()
    terminated = torch.zeros(b, t)
    terminated[torch.arange(b), length - 2] = 1.0
    obs = torch.rand(b, t, n, lay.obs_dim, generator=g) * filled[..., None, None]
    if behaviour is None:
        actions = torch.randint(0, lay.n_actions, (b, t, n), generator=g)
    else:
        actions = behaviour(obs)
    avail = (torch.rand(b, t, n, lay.n_actions, generator=g) < avail_p).float()
    avail.scatter_(-1, actions.unsqueeze(-1), 1.0)  # the dataset action is available
    actions = actions * filled.long()[..., None]
    return Batch(obs=obs, state=torch.zeros(b, t, lay.state_dim), actions=actions,
                 avail=avail * filled[..., None, None], reward=torch.zeros(b, t),
                 terminated=terminated, filled=filled)


def _threshold(obs: torch.Tensor) -> torch.Tensor:
    """A deterministic behaviour: action 4 when the first observation value exceeds 0.5,
    else action 1."""
    return torch.where(obs[..., 0] > 0.5, 4, 1)


@pytest.mark.parametrize("name", FLAT)
def test_registered_with_their_labels(name):
    cls = LEARNERS[name]
    assert cls.label == {"bc": "BC", "madt": "MADT"}[name]
    cls.Config(**{})  # a suite's ``{name: bc}`` builds the defaults


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("name", FLAT)
def test_shapes_on_flat_and_starcraft_layouts(name, task):
    lay = get_map(task).layout
    learner = _learner(name, task)
    assert learner.widths.obs == lay.obs_dim and learner.widths.actions == lay.n_actions
    metrics = learner.update(_batch(task), task)
    assert metrics["loss"].dim() == 0 and torch.isfinite(metrics["loss"])
    policy = learner.policy()
    state = policy.initial_state(3, task)
    obs = np.random.default_rng(0).random((3, lay.n_agents, lay.obs_dim), np.float32)
    for _ in range(2):
        actions, state = policy.act(obs, np.ones((3, lay.n_agents, lay.n_actions)), state,
                                    task)
        assert actions.shape == (3, lay.n_agents) and actions.dtype == np.int64
        assert ((0 <= actions) & (actions < lay.n_actions)).all()


@pytest.mark.parametrize("name", FLAT)
def test_the_loss_falls_and_the_policy_imitates_a_deterministic_behaviour(name):
    task = "rware-tiny-2ag"
    lay = get_map(task).layout
    learner = _learner(name, task, lr=5e-3)
    losses = [float(learner.update(_batch(task, 8, 10, seed=s, behaviour=_threshold), task)
                    ["loss"]) for s in range(150)]
    assert np.mean(losses[-10:]) < 0.4 * np.mean(losses[:10])
    rng = np.random.default_rng(1)
    obs = rng.random((64, lay.n_agents, lay.obs_dim), np.float32)
    obs[..., 0] = rng.choice([0.1, 0.9], (64, lay.n_agents))  # clear of the threshold
    policy = learner.policy()
    actions, _ = policy.act(obs, np.ones((64, lay.n_agents, lay.n_actions)),
                            policy.initial_state(64, task), task)
    assert (actions == _threshold(torch.from_numpy(obs)).numpy()).mean() > 0.95


@pytest.mark.parametrize("name", FLAT)
def test_the_agent_id_lets_agents_with_identical_observations_act_differently(name):
    task = "rware-tiny-2ag"
    lay = get_map(task).layout
    learner = _learner(name, task, lr=5e-3)

    def behaviour(obs):  # agent 0 always takes action 1, agent 1 action 3
        return torch.tensor([1, 3]).expand(obs.shape[:-1])

    for s in range(60):
        learner.update(_batch(task, 4, 6, seed=s, behaviour=behaviour), task)
    obs = np.full((2, lay.n_agents, lay.obs_dim), 0.5, np.float32)  # both agents see the same
    policy = learner.policy()
    actions, _ = policy.act(obs, np.ones((2, 2, lay.n_actions)), policy.initial_state(2, task),
                            task)
    assert actions.tolist() == [[1, 3], [1, 3]]


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("name", FLAT)
def test_greedy_and_sampled_actions_are_available_ones(name, task):
    lay = get_map(task).layout
    learner = _learner(name, task)
    learner.update(_batch(task), task)
    rng = np.random.default_rng(2)
    obs = rng.random((16, lay.n_agents, lay.obs_dim), np.float32)
    avail = (rng.random((16, lay.n_agents, lay.n_actions)) < 0.3).astype(np.int32)
    avail[..., 0] = 0
    avail[np.arange(16), :, rng.integers(1, lay.n_actions, 16)] = 1
    policy = learner.policy()
    for pol in (policy, policy.sampling(3)):
        state = pol.initial_state(16, task)
        for _ in range(3):
            actions, state = pol.act(obs, avail, state, task)
            assert np.take_along_axis(avail, actions[..., None], -1).all()
    only = np.zeros_like(avail)
    only[..., 2] = 1  # one action left: greedy must take it whatever the logits say
    actions, _ = policy.act(obs, only, policy.initial_state(16, task), task)
    assert (actions == 2).all()


@pytest.mark.parametrize("name", FLAT)
def test_sampling_is_reproducible_per_seed_and_differs_across_seeds(name):
    task = "5m_vs_6m"
    lay = get_map(task).layout
    policy = _learner(name, task).policy()
    obs = np.random.default_rng(4).random((32, lay.n_agents, lay.obs_dim), np.float32)
    avail = np.ones((32, lay.n_agents, lay.n_actions), np.int32)

    def play(seed: int) -> np.ndarray:
        pol = policy.sampling(seed)
        state, out = pol.initial_state(32, task), []
        for _ in range(3):
            actions, state = pol.act(obs, avail, state, task)
            out.append(actions)
        return np.stack(out)

    assert np.array_equal(play(7), play(7))
    assert not np.array_equal(play(7), play(8))
    assert policy.generator is None  # the greedy policy is untouched


def test_a_greedy_only_policy_refuses_to_sample():
    learner = get_learner("bc_t")({"3m": get_map("3m").layout}, get_learner("bc_t").Config(),
                                  torch.device("cpu"))
    with pytest.raises(NotImplementedError, match="acts greedily only"):
        learner.policy().sampling(0)


@pytest.mark.parametrize("name", FLAT)
def test_a_state_dict_round_trip_gives_identical_actions(name):
    task = "5m_vs_6m"
    lay = get_map(task).layout
    trained = _learner(name, task, seed=0)
    for s in range(3):
        trained.update(_batch(task, seed=s), task)
    fresh = _learner(name, task, seed=1)
    saved = io.BytesIO()  # through a file, as checkpoints go (no tensor shared)
    torch.save(trained.state_dict(), saved)
    saved.seek(0)
    fresh.load_state_dict(torch.load(saved))
    obs = np.random.default_rng(5).random((8, lay.n_agents, lay.obs_dim), np.float32)
    avail = np.ones((8, lay.n_agents, lay.n_actions), np.int32)
    out = []
    for learner in (trained, fresh):
        for pol in (learner.policy(), learner.policy().sampling(11)):
            state, acts = pol.initial_state(8, task), []
            for _ in range(3):
                actions, state = pol.act(obs, avail, state, task)
                acts.append(actions)
            out.append(np.stack(acts))
    assert np.array_equal(out[0], out[2]) and np.array_equal(out[1], out[3])
    batch = _batch(task, seed=9)
    with torch.no_grad():
        assert float(trained.loss(batch, task)) == float(fresh.loss(batch, task))
    trained.update(batch, task)
    fresh.update(batch, task)  # the optimiser state came along too
    for a, b in zip(trained.agent.parameters(), fresh.agent.parameters(), strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("name", FLAT)
def test_padding_a_batch_changes_no_loss(name):
    """A fused group pads shorter batches with unfilled rows; the loss must not move."""
    task = "rware-tiny-2ag"
    short, longer = _batch(task, 4, 6, seed=0), _batch(task, 4, 9, seed=1)
    stacked = stack_batches([short, longer])
    padded = Batch(*(f[0] for f in stacked.fields()))
    assert padded.obs.shape[1] == 9 and int(padded.length) == 6
    learner = _learner(name, task)
    torch.testing.assert_close(learner.loss(short, task), learner.loss(padded, task))


def test_madt_defaults_are_the_published_ones():
    c = MADTConfig()
    assert (c.n_layer, c.n_head, c.n_embd) == (2, 2, 32)
    assert (c.model_type, c.context_length, c.max_timestep) == ("state_only", 1, 400)
    assert (c.lr, c.betas, c.weight_decay, c.grad_norm_clip) == (5e-4, (0.9, 0.95), 0.1, 0.5)
    with pytest.raises(ValueError):
        MADTConfig(n_embd=33, n_head=2)


def test_madt_network_matches_the_published_architecture():
    task = "5m_vs_6m"
    lay = get_map(task).layout
    actor = _learner("madt", task).agent
    assert actor.state_encoder[0].in_features == lay.obs_dim + lay.n_agents
    assert isinstance(actor.state_encoder[1], nn.Tanh)
    assert actor.head.bias is None and actor.head.out_features == lay.n_actions
    blocks = actor.gpt.blocks
    assert len(blocks) == 2 and blocks[0].attn.n_head == 2
    assert blocks[0].mlp[0].out_features == 64 and isinstance(blocks[0].mlp[1], nn.GELU)
    assert actor.gpt.global_pos_emb.shape == (401, 32)  # max_timestep 400 covers 5m_vs_6m
    assert not actor.gpt.pos_emb.any() and not actor.gpt.global_pos_emb.any()
    rware = _learner("madt", "rware-tiny-2ag").agent  # 500-step episodes get their rows
    assert rware.gpt.global_pos_emb.shape == (501, 32)


def test_madt_decays_only_matmul_weights():
    learner = _learner("madt", "rware-tiny-2ag")
    decay, no_decay = decay_split(learner.agent)
    linears = {f"{m}.weight" for m, mod in learner.agent.named_modules()
               if isinstance(mod, nn.Linear)}
    assert set(decay) == linears
    assert {"gpt.pos_emb", "gpt.global_pos_emb", "gpt.ln_f.weight", "gpt.ln_f.bias",
            "state_encoder.0.bias", "gpt.blocks.0.attn.key.bias"} <= set(no_decay)
    assert all(n.endswith("bias") or "ln" in n or "pos_emb" in n for n in no_decay)
    assert set(decay) | set(no_decay) == {n for n, _ in learner.agent.named_parameters()}
    groups = learner.optimiser.param_groups
    assert isinstance(learner.optimiser, torch.optim.AdamW)
    assert [g["weight_decay"] for g in groups] == [0.1, 0.0]
    assert all(g["betas"] == (0.9, 0.95) and g["lr"] == 5e-4 for g in groups)
    assert [len(g["params"]) for g in groups] == [len(decay), len(no_decay)]


def test_madt_acts_with_the_timestep_it_trained_with():
    """The policy carries each episode's timestep; its logits at step k are the training
    logits of row k (the global-timestep embedding made to matter)."""
    task = "rware-tiny-2ag"
    learner = _learner("madt", task)
    with torch.no_grad():
        learner.agent.gpt.global_pos_emb.normal_(0, 1.0)
    batch = _batch(task, 1, 6, seed=3)
    x = torch.cat([batch.obs, torch.eye(2).expand(1, 6, 2, 2)], -1)
    steps = torch.arange(6).view(1, 6, 1).expand(1, 6, 2)
    with torch.no_grad():
        train_logits = learner.agent(x.reshape(-1, 1, x.shape[-1]), steps.reshape(-1, 1))
    train_logits = train_logits.view(6, 2, -1)
    policy = learner.policy()
    state = policy.initial_state(1, task)
    for k in range(6):
        assert int(state[0]) == k
        logits, _ = policy.step(x[:, k], state, task)
        torch.testing.assert_close(logits[0], train_logits[k])
        _, state = policy.act(batch.obs[:, k].numpy(), np.ones((1, 2, 5)), state, task)
    assert not torch.allclose(train_logits[0], train_logits[1])
