"""An env agent that trains: a small policy network, REINFORCE on the train split's vector env.

    python benchmarks/run.py --agent examples/trainable_env_agent.py:make_agent --dataset tiny \\
        --budget 5 --updates 60 --eval-every 20

The policy sees the recognizer's running probabilities and where and when it is, and picks
the next location among the centres of ``bins`` equal segments of the video, never one it has
looked at already (a revisit shows nothing new; the mask is per-episode state, reset in
``begin``). The first look is the first segment's centre. It trains on
the env's own reward (the margin reward, paper Eq. 4: how much the recognizer's margin for
the true class grew) with REINFORCE, on a batch of train videos per update, and the shared
schedule (:mod:`adaframe_env.protocol.training`) checks it on val every ``eval_every``
updates, keeps the best-val weights and stops early on ``patience``. ``--updates``,
``--eval-every``, ``--patience`` and ``--epochs`` (passes over the train split) set the
schedule; ``--set lr=0.003`` and the other fields of :class:`Settings` the hyperparameters.
The harness saves the trained network in its checkpoint cache (``save``; a second run
loads it and only evaluates), with the training curves beside it.

Choices the paper leaves open, made here for a short example: a categorical policy over
segment centres (the paper's AdaFrame uses a Gaussian over [0, 1]); the baseline of
REINFORCE is the batch mean return of each step; greedy (argmax) actions at evaluation.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from adaframe_env.protocol import RunConfig, TorchAgent
from adaframe_env.protocol.envagent import EnvPolicyAgent
from adaframe_env.protocol.settings import apply_settings
from adaframe_env.protocol.training import (
    Schedule,
    resolve_schedule,
    train_on_schedule,
    val_map,
    write_curves,
)


@dataclass(frozen=True)
class Settings:
    """The hyperparameters (``--set key=value``); part of the checkpoint key via hparams()."""

    bins: int = 20  # candidate locations: the centres of this many equal segments (>= K)
    hidden: int = 64
    lr: float = 1e-2
    batch_size: int = 64  # train episodes per update
    entropy: float = 0.01  # entropy bonus, keeps the policy exploring early on
    updates: int = 200  # the default schedule; --updates / --eval-every / --patience override
    eval_every: int = 20
    patience: int = 3


class PolicyNet(nn.Module):
    """(probs, location, step) -> logits over the ``bins`` locations."""

    def __init__(self, num_classes: int, hidden: int, bins: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(num_classes + 2, hidden), nn.Tanh(), nn.Linear(hidden, bins)
        )

    def forward(self, obs: dict) -> torch.Tensor:
        x = np.concatenate([obs["probs"], obs["location"], obs["step"]], axis=1)
        return self.net(torch.as_tensor(x, dtype=torch.float32))


class LearnedJumps(EnvPolicyAgent, TorchAgent):
    """EnvPolicyAgent gives evaluate() (act() on a vector env of the test videos); TorchAgent
    gives save/load/num_parameters of ``self.model`` (a weights-only ``model.pt``)."""

    description = "example env agent: REINFORCE policy over segment centres (probs, location, step)"
    name = "learned-jumps"
    trainable = True  # fit() trains; the harness checkpoints the result
    observation_keys = ("location", "step")  # + "probs", which the harness always adds

    def __init__(self, settings: Settings):
        self.settings = settings

    def hparams(self) -> dict:
        return asdict(self.settings)

    def setup(self, store, config: RunConfig) -> None:
        super().setup(store, config)  # the env's one-time costs (EnvPolicyAgent)
        torch.manual_seed(config.seed)  # the initial weights depend on the seed only
        s = self.settings
        self.model = PolicyNet(store.num_classes, s.hidden, s.bins)
        self.bind(store)  # the checkpoint records the cache; loading it elsewhere fails clearly
        self.log = None

    # ------------------------------------------------------------------ acting (evaluation)
    def make_env(self, store, split, num_envs, config, **kwargs):
        if self.budget(config) > self.settings.bins:
            raise ValueError(
                f"{self.name}: budget {self.budget(config)} is more than its "
                f"{self.settings.bins} segments; use --set bins={self.budget(config)} or more"
            )
        self.initial_location = 0.5 / self.settings.bins  # the reset frame: segment 0's centre
        return super().make_env(store, split, num_envs, config, **kwargs)

    def begin(self, num_envs: int, config: RunConfig) -> None:
        self.visited = new_mask(num_envs, self.settings.bins)  # per episode: reset per batch

    def choose(self, obs: dict, visited: torch.Tensor) -> torch.distributions.Categorical:
        """The policy over the segments not visited yet."""
        return torch.distributions.Categorical(
            logits=self.model(obs).masked_fill(visited.clone(), -torch.inf)  # kept for backward
        )

    def locations(self, choice: torch.Tensor, visited: torch.Tensor) -> np.ndarray:
        """Bin indices -> (n, 1) locations, the segments' centres; marks them visited."""
        visited[torch.arange(len(choice)), choice] = True
        return ((choice.numpy() + 0.5) / self.settings.bins).astype(np.float32)[:, None]

    def act(self, obs: dict, step: int, config: RunConfig) -> np.ndarray:
        with torch.no_grad():  # greedy: the most likely segment
            choice = self.choose(obs, self.visited).probs.argmax(dim=1)
        return self.locations(choice, self.visited)

    # ------------------------------------------------------------------ training
    def fit(self, store, train_videos, config: RunConfig) -> None:
        s = self.settings
        if self.budget(config) < 2:
            raise ValueError(
                f"{self.name} trains on steps after the first frame: use --budget >= 2"
            )
        # One vector env of batch_size train episodes; every update resets it (a random train
        # video per sub-env, from the env's seeded generator) and plays K - 1 steps: with no
        # stop action every episode has the same length, so no autoreset is involved.
        env = self.make_env(store, "train", s.batch_size, config)
        env.reset(seed=config.seed)
        generator = torch.Generator().manual_seed(config.seed)
        optimizer = torch.optim.Adam(self.model.parameters(), lr=s.lr)
        steps = self.budget(config) - 1

        def update() -> dict[str, float]:
            obs, _ = env.reset()
            visited = new_mask(s.batch_size, s.bins)
            logps, entropies, rewards = [], [], []
            for _ in range(steps):
                dist = self.choose(obs, visited)
                choice = torch.multinomial(dist.probs, 1, generator=generator)[:, 0]
                logps.append(dist.log_prob(choice))
                entropies.append(dist.entropy())
                obs, reward, _, _, _ = env.step(self.locations(choice, visited))
                rewards.append(torch.as_tensor(reward, dtype=torch.float32))
            rewards = torch.stack(rewards)  # (steps, batch)
            returns = rewards.flip(0).cumsum(0).flip(0)  # reward to go, undiscounted
            advantage = returns - returns.mean(dim=1, keepdim=True)
            loss = (
                -(torch.stack(logps) * advantage).mean() - s.entropy * torch.stack(entropies).mean()
            )
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            return {"loss": loss.item(), "return": returns[0].mean().item()}

        defaults = Schedule.of(s)
        schedule = resolve_schedule(defaults, config, math.ceil(len(train_videos) / s.batch_size))
        try:
            self.log = train_on_schedule(schedule, update, lambda: val_map(self, store, config), self.model, desc=f"train {self.name}",
                                         progress=config.progress)  # fmt: skip
        finally:
            env.close()

    def save(self, directory: Path) -> None:
        super().save(directory)  # model.pt (TorchAgent)
        if self.log is not None:  # curves.csv/json/png beside it: what the schedule did
            write_curves(self.log, directory, self.name)


def new_mask(num_envs: int, bins: int) -> torch.Tensor:
    """(num_envs, bins) visited segments of fresh episodes: only the first, the reset frame."""
    visited = torch.zeros(num_envs, bins, dtype=torch.bool)
    visited[:, 0] = True
    return visited


def make_agent(config: RunConfig) -> LearnedJumps:
    return LearnedJumps(apply_settings(Settings(), config.settings, "learned-jumps"))
