"""AdaFrame (Wu et al., TPAMI 2020, section 3): a memory-augmented LSTM that decides where to
look next, trained with REINFORCE on the margin reward, and at test time stops on its own
predicted utility (adaptive lookahead inference, Algorithm 2).

Read top to bottom: settings, the network, one batch of episodes through the vector env
(:func:`rollout`), the losses (:func:`losses`), Algorithm 2 (:func:`lookahead_exit`), and the
harness agent that trains and evaluates it. Training and evaluation both go through
:class:`adaframe_env.vector_env.AdaFrameVectorEnv`: the env serves the frames, the memory and the
recognizer's running probabilities, and counts the frames; the agent only chooses locations.

What the paper fixes, and we follow: LSTM on ``[v_t, u_t]`` with ``u_t`` the attention of
``W_h h_{t-1}`` over the positionally encoded memory (Eq. 1-2); selection ``a_t =
sigmoid(W_s h_t)``, ``l_{t+1} ~ N(a_t, 0.1^2)`` in training and ``a_t`` at test; utility
``V_t = W_u h_t`` regressed on the discounted return (gamma 0.9, Eq. 6-7); reward Eq. 4 from the
agent's own ``s_t``; loss ``L_cls + L_utl - J_sel`` with cross-entropy on ``s_K`` (Eq. 3, 8) and
REINFORCE with ``V_t`` as baseline (Eq. 9); the first frame at location 0 (Algorithm 1); the
exit rule of Algorithm 2 with ``p = K/2 + 1`` if ``mu < 0.7`` else ``K`` (``K/2`` rounded
down for odd K: K = 5 gives p = 3).

What the paper leaves open, and what we chose:

- **Returns.** Eq. 6 includes the current step: ``R_t = sum_{i>=0} gamma^i r_{t+i}``, and Eq. 9
  weighs ``log pi(l_{t+1} | h_t)`` by ``R_t - V_t``, for ``t = 1..K-1`` (the location chosen at
  step K is never used). ``r_1 = 0`` (Eq. 4 is defined for ``t > 1``).
- **Loss scale.** ``L_utl`` is ``1/2 (V_t - R_t)^2`` (squared; Eq. 7 writes a norm) and
  ``J_sel`` sums over steps; both are averaged over the videos of a batch, as is ``L_cls``.
- **The context vector.** Eq. 2 scores the memory rows with their positional encoding,
  ``z_{t,j} = (W_h h_{t-1})^T PE(v^s_j)``, and then writes ``u_t = beta_t^T M``. The text
  says the positions are injected "into these lightweight features" so that the context can
  "estimate the current progress roughly using temporal information": we read ``M`` as the
  encoded rows, ``u_t = beta_t^T PE(M)`` (``context=encoded``), so the LSTM learns *where*
  it attended, not only what it saw there. The literal ``u_t = beta_t^T M`` is
  ``--set context=content``. Chosen on the val split (fcvid proxy, K = 10, seeds 0-2):
  77.7 against 76.1 val mAP for AdaFrame-10, 76.4 against 74.2 for FrameGlimpse-G
  (README, "AdaFrame"). The LSTM-G baseline keeps ``content``, its own val choice.
- **Gaussian samples** outside [0, 1] are clipped to it (the paper "normalizes" them); the log
  probability is that of the unclipped sample.
- **Readout.** ``residual`` by default: ``s_t = softmax(W_p h_t + log pbar_t)``, with ``pbar_t``
  the recognizer's AvgPooling over the frames seen so far (the env's ``probs`` observation) and
  ``W_p`` starting at zero; ``--set readout=plain`` is the paper's ``softmax(W_p h_t)``,
  ``--set readout=recognizer`` is ``pbar_t`` alone. Why, with measurements:
  :mod:`baselines.recurrent` and the README ("The recurrent core").
- **Frame features** are standardized with train statistics, as for the LSTM baselines; dropout
  on ``h_t`` before the prediction layer only.
- **Sizes and schedule.** The paper: hidden 2048 (FCVID) / 1024 (ActivityNet), SGD momentum 0.9,
  weight decay 1e-4, lr 1e-3 divided by 10 every 40 of 100 epochs, batch 128
  (``--set hidden=2048 --set optimizer=sgd --set epochs=100 --set lr_step=40 --set
  batch_size=128``). On the synthetic proxies (12 train videos per class, not ~190) we use the
  recurrent core chosen on the val split for the LSTM baselines (hidden 256, Adam 1e-3, dropout
  0.5) and the number of epochs chosen on val (README, "AdaFrame").
- **Batches** are whole batches of train videos in a fresh random order each epoch; the last
  ``len(train) % batch_size`` videos of an order wait for the next epoch.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.distributions import Normal
from tqdm.auto import tqdm

from adaframe_env.data.schema import SPLIT_NAMES
from adaframe_env.harness import distributed
from adaframe_env.harness.protocol import RunConfig, TorchAgent, VideoResult
from adaframe_env.harness.settings import apply_settings
from adaframe_env.metrics import mean_average_precision
from adaframe_env.rewards import REWARDS, episode_rewards
from adaframe_env.vector_env import AdaFrameVectorEnv
from adaframe_env.wrappers import DEFAULT_JUMPS
from baselines.recurrent import (
    CONTEXTS,
    READOUTS,
    MemoryLSTM,
    Readout,
    positional_encoding,
    standardization,
)

LOCATION_DIM = 16  # size of the encoded location (observe_location)
POLICIES = ("absolute", "relative", "jumps")
#: FastForward's jumps (fractions of the video, back and forward), as the env's wrapper has them
JUMPS = DEFAULT_JUMPS


@dataclass(frozen=True)
class AdaFrameSettings:
    """Hyperparameters (each settable with ``--set key=value``; part of the checkpoint key)."""

    hidden: int = 256
    readout: str = "residual"  # residual | plain | recognizer (baselines.recurrent.READOUTS)
    dropout: float = 0.5
    reward: str = "margin"  # margin | prediction | prediction_transition (paper Table 5)
    memory_frames: int = 16  # light frames in the global memory (paper Table 4: 0, 12, 16, 32)
    epochs: int = 10
    batch_size: int = 64
    optimizer: str = "adam"  # adam | sgd (momentum 0.9, the paper's)
    lr: float = 1e-3
    lr_step: int = 0  # divide lr by 10 every lr_step epochs (paper: 40); 0: constant
    weight_decay: float = 1e-4
    sigma: float = 0.1  # std of the Gaussian location policy in training
    gamma: float = 0.9
    perstep_loss: bool = False  # cross-entropy at every step instead of the last (an option)
    policy: str = "absolute"  # absolute: a_t = sigmoid(W_s h_t) (paper) | relative: l_t + tanh(.)
    #                           | jumps: a categorical choice of JUMPS from l_t (FastForward)
    observe_location: bool = False  # add the encoded current location to the LSTM input
    stop: bool = False  # learn a binary stop policy (FrameGlimpse, FastForward); AdaFrame: Alg. 2
    frame_cost: float = 0.0  # training reward minus this for every frame after the first
    context: str = "encoded"  # u_t = beta^T PE(M) (encoded) | beta^T M (content); docstring

    def __post_init__(self):
        if self.readout not in READOUTS:
            raise ValueError(f"--set readout={self.readout}: choose one of {', '.join(READOUTS)}")
        if self.reward not in REWARDS:
            raise ValueError(f"--set reward={self.reward}: choose one of {', '.join(REWARDS)}")
        if self.policy not in POLICIES:
            raise ValueError(f"--set policy={self.policy}: choose one of {', '.join(POLICIES)}")
        if self.context not in CONTEXTS:
            raise ValueError(f"--set context={self.context}: choose one of {', '.join(CONTEXTS)}")
        if self.frame_cost < 0:
            raise ValueError(f"--set frame_cost={self.frame_cost}: must be >= 0")
        if self.optimizer not in ("adam", "sgd"):
            raise ValueError(f"--set optimizer={self.optimizer}: choose adam or sgd")
        if min(self.hidden, self.epochs, self.batch_size) < 1 or self.lr_step < 0:
            raise ValueError("--set hidden, epochs, batch_size must be >= 1 and lr_step >= 0")
        if self.memory_frames < 0:
            raise ValueError(f"--set memory_frames={self.memory_frames}: must be >= 0 (0: none)")
        if not (0 <= self.dropout < 1 and self.sigma > 0 and 0 <= self.gamma <= 1):
            raise ValueError("--set dropout in [0, 1), sigma > 0, gamma in [0, 1]")


class AdaFrameNet(nn.Module):
    """Memory-augmented LSTM with prediction, selection and utility heads (paper Fig. 2)."""

    def __init__(self, feature_dim: int, num_classes: int, memory_dim: int | None,
                 s: AdaFrameSettings, budget: int):  # fmt: skip
        super().__init__()
        self.observe_location, self.policy = s.observe_location, s.policy
        extra = LOCATION_DIM if s.observe_location else 0
        self.core = MemoryLSTM(feature_dim + extra, s.hidden, memory_dim, s.context)
        self.predict = Readout(s.hidden, num_classes, s.readout, s.dropout)  # W_p
        self.select = nn.Linear(s.hidden, len(JUMPS) if s.policy == "jumps" else 1)  # W_s
        self.utility = nn.Linear(s.hidden, 1)  # W_u
        self.stop = nn.Linear(s.hidden, 1) if s.stop else None
        if s.policy == "relative":  # start by striding through the video, 1/K per step
            nn.init.zeros_(self.select.weight)
            nn.init.constant_(self.select.bias, math.atanh(1.0 / max(budget, 2)))

    def step(self, v, pbar, location, state, memory=None, keys=None):
        """One step: ``(state, class logits s_t, policy output, utility V_t, stop logit)``.

        The policy output is the mean location ``a_t`` (absolute, relative) or the logits over
        :data:`JUMPS` (jumps); the stop logit is None without a stop policy."""
        if self.observe_location:
            v = torch.cat([v, positional_encoding(location, LOCATION_DIM)], -1)
        state, _ = self.core.step(v, state, memory, keys)
        h = state[0]
        raw = self.select(h)
        if self.policy == "jumps":
            a = raw
        elif self.policy == "relative":
            # the mean may leave [0, 1] (a clamped mean would get no gradient there); the
            # location taken is clipped to [0, 1] in rollout()
            a = location + torch.tanh(raw.squeeze(-1))
        else:
            a = torch.sigmoid(raw.squeeze(-1))
        stop = self.stop(h).squeeze(-1) if self.stop is not None else None
        return state, self.predict(h, pbar), a, self.utility(h).squeeze(-1), stop

    def step_gflops(self, memory_frames: int = 16) -> float:
        """GFLOPs of one step: the LSTM (and attention) plus the heads."""
        heads = [self.predict.fc, self.select, self.utility] + ([self.stop] if self.stop else [])
        return self.core.step_gflops(memory_frames) + 2 * sum(m.weight.numel() for m in heads) / 1e9


@dataclass
class Rollout:
    """One batch of K-step episodes: tensors (B, K) / (B, K, C), frames (B, K) NumPy."""

    logits: torch.Tensor
    utility: torch.Tensor
    log_prob: torch.Tensor | None  # (B, K-1): the location (or jump) chosen; training only
    location: torch.Tensor  # (B, K): location of the frame observed at each step
    frames: np.ndarray
    labels: np.ndarray | None
    alive: torch.Tensor | None = None  # (B, K) bool: still looking at step t (stop policy)
    stop_log_prob: torch.Tensor | None = None  # (B, K-1): the stop decision; training only

    def exit_steps(self) -> np.ndarray:
        """1-based step at which each episode stopped (K without a stop policy)."""
        if self.alive is None:
            return np.full(self.logits.shape[0], self.logits.shape[1])
        return self.alive.sum(1).cpu().numpy()

    def final_logits(self) -> torch.Tensor:
        """(B, C) class logits at each episode's exit step."""
        last = torch.as_tensor(self.exit_steps() - 1, device=self.logits.device)
        return self.logits[torch.arange(len(last), device=self.logits.device), last]

    @staticmethod
    def concat(parts: list[Rollout]) -> Rollout:
        """One rollout from the rollouts of consecutive chunks of videos."""

        def join(values):
            if values[0] is None:
                return None
            return (
                np.concatenate(values) if isinstance(values[0], np.ndarray) else torch.cat(values)
            )

        return Rollout(**{f.name: join([getattr(p, f.name) for p in parts])
                          for f in dataclasses.fields(Rollout)})  # fmt: skip


def rollout(net: AdaFrameNet, env: AdaFrameVectorEnv, positions: np.ndarray, norm: dict,
            device, sigma: float | None = None, locations: np.ndarray | None = None) -> Rollout:  # fmt: skip
    """Run the episodes of the split ``positions`` (len <= env.num_envs; padded by repetition)
    in lockstep for ``env.budget`` steps. ``sigma``: sample locations (training); ``None``:
    take the mean (evaluation). ``locations`` (K,) overrides the policy with fixed locations
    (ablations: the same network fed uniform frames)."""
    n, budget = len(positions), env.budget
    padded = np.resize(positions, env.num_envs)

    def tensor(x, mean=None, std=None):
        x = np.asarray(x, np.float32)[:n]
        return torch.tensor(x if mean is None else (x - mean) / std, device=device)

    obs, info = env.reset(options={"video": padded})
    memory = keys = None
    if net.core.use_memory:
        memory = tensor(obs["memory"], norm["mem_mean"], norm["mem_std"])
        keys = net.core.attention.keys(memory, tensor(obs["memory_positions"]))
    state = net.core.initial_state(n, device)
    labels = info["label"][:n].copy() if "label" in info else None
    logits, utility, log_prob, frames, stop_log_prob = [], [], [], [], []
    location = [torch.zeros(n, device=device)]  # Algorithm 1: l = 0
    alive = [torch.ones(n, dtype=torch.bool, device=device)]
    sample = sigma is not None
    for t in range(budget):
        frames.append(info["frame"][:n].copy())
        v = tensor(obs["frame"], norm["mean"], norm["std"])
        state, s_t, a_t, v_t, stop_t = net.step(
            v, tensor(obs["probs"]), location[-1], state, memory, keys
        )
        logits.append(s_t)
        utility.append(v_t)
        if t == budget - 1:
            break
        here = location[-1]
        if locations is not None:
            loc = torch.full((n,), float(locations[t + 1]), device=device)
        elif net.policy == "jumps":
            jumps = torch.distributions.Categorical(logits=a_t)
            choice = jumps.sample() if sample else a_t.argmax(-1)
            if sample:
                log_prob.append(jumps.log_prob(choice))
            loc = (here + torch.as_tensor(JUMPS, device=device)[choice]).clamp(0.0, 1.0)
        elif not sample:
            loc = a_t.detach().clamp(0.0, 1.0)
        else:
            policy = Normal(a_t, sigma)
            draw = policy.sample()
            log_prob.append(policy.log_prob(draw))
            loc = draw.clamp(0.0, 1.0)
        if stop_t is not None:  # a stopped episode looks nowhere new: it stays where it is
            stops = torch.distributions.Bernoulli(logits=stop_t)
            stopping = stops.sample().bool() if sample else stop_t > 0
            if sample:
                stop_log_prob.append(stops.log_prob(stopping.float()))
            still = alive[-1] & ~stopping
            loc = torch.where(still, loc, here)
            alive.append(still)
        location.append(loc)
        action = np.resize(loc.cpu().numpy().astype(np.float32), env.num_envs)[:, None]
        obs, _, _, _, info = env.step(action)
    return Rollout(
        logits=torch.stack(logits, 1),
        utility=torch.stack(utility, 1),
        log_prob=torch.stack(log_prob, 1) if log_prob else None,
        location=torch.stack(location, 1),
        frames=np.stack(frames, 1),
        labels=labels,
        alive=torch.stack(alive, 1) if net.stop is not None else None,
        stop_log_prob=torch.stack(stop_log_prob, 1) if stop_log_prob else None,
    )


def discounted_returns(rewards: np.ndarray, gamma: float) -> np.ndarray:
    """``R_t = sum_{i>=0} gamma^i r_{t+i}`` along axis 1 (paper Eq. 6)."""
    out = np.zeros_like(rewards, dtype=np.float64)
    running = np.zeros(rewards.shape[0])
    for t in range(rewards.shape[1] - 1, -1, -1):
        running = rewards[:, t] + gamma * running
        out[:, t] = running
    return out


def losses(r: Rollout, s: AdaFrameSettings,
           looking_steps: float | None = None) -> dict[str, torch.Tensor]:  # fmt: skip
    """``L_cls``, ``L_utl``, ``J_sel`` (Eq. 3, 7, 9) and the total ``L_cls + L_utl - J_sel``,
    plus the episode rewards (from the agent's own scores, Eq. 4) for logging.

    With a stop policy, only the steps an episode was still looking count: rewards after its
    stop are 0, ``L_cls`` is taken at the stop step, and ``J_sel`` adds the log-probability of
    each stop-or-continue decision (weighted by the same advantage ``R_t - V_t``). With
    ``perstep_loss``, ``L_cls`` averages over the looking steps; ``looking_steps`` replaces
    their count (a ``torchrun`` shard divides by its batch's, see ``_backward``).
    """
    device = r.logits.device
    y = torch.as_tensor(r.labels, device=device)
    b, k = r.logits.shape[:2]
    alive = r.alive if r.alive is not None else torch.ones(b, k, dtype=torch.bool, device=device)
    if s.perstep_loss:
        per_step = nn.functional.cross_entropy(
            r.logits.flatten(0, 1), y.repeat_interleave(k), reduction="none"
        ).view(b, k)
        l_cls = (per_step * alive).sum() / (alive.sum() if looking_steps is None else looking_steps)
    else:
        l_cls = nn.functional.cross_entropy(r.final_logits(), y)
    probs = torch.softmax(r.logits.detach(), -1).cpu().numpy()
    rewards = episode_rewards(s.reward, probs, r.labels)
    rewards[:, 1:] -= s.frame_cost
    rewards *= alive.cpu().numpy()
    returns = torch.as_tensor(discounted_returns(rewards, s.gamma), dtype=torch.float32,
                              device=device)  # fmt: skip
    l_utl = (0.5 * (r.utility - returns) ** 2 * alive).sum(1).mean()
    advantage = (returns - r.utility).detach()[:, : k - 1]
    j_sel = torch.zeros((), device=device)
    if r.log_prob is not None:  # the location (or jump) of step t + 1, taken if still looking
        j_sel = j_sel + (advantage * r.log_prob * alive[:, 1:]).sum(1).mean()
    if r.stop_log_prob is not None:  # the decision at step t, made if looking at step t
        j_sel = j_sel + (advantage * r.stop_log_prob * alive[:, :-1]).sum(1).mean()
    total = l_utl - j_sel + (l_cls if l_cls.requires_grad else 0.0)
    return {"total": total, "cls": l_cls, "utl": l_utl, "sel": j_sel,
            "rewards": torch.as_tensor(rewards)}  # fmt: skip


def lookahead_exit(utility: np.ndarray, mu: float, budget: int) -> np.ndarray:
    """Algorithm 2 for a batch: (B, K) predicted utilities -> the 1-based exit step per video.

    A video exits after the step at which its count of steps with ``V_max - V_t > mu`` reaches
    ``p`` (``K // 2 + 1`` if ``mu < 0.7``, else ``K``), ``V_max`` being the running max of its
    utilities, starting at 0; otherwise after step K. Uses only the utilities.
    """
    patience = budget // 2 + 1 if mu < 0.7 else budget
    b, k = utility.shape
    v_max, count = np.zeros(b), np.zeros(b, np.int64)
    exit_step = np.full(b, k, np.int64)
    running = np.ones(b, bool)
    for t in range(k):
        count += running & (v_max - utility[:, t] > mu)
        v_max = np.maximum(v_max, utility[:, t])
        stop = running & (count >= patience)
        exit_step[stop] = t + 1
        running &= ~stop
    return exit_step


class RecurrentFrameAgent(TorchAgent):
    """The trainer and evaluator shared by AdaFrame, FrameGlimpse and FastForward: one network
    (:class:`AdaFrameNet`), one rollout, one loss; the methods differ in their settings (the
    location policy, a learned stop, the memory) and in how they stop at test time."""

    method = "recurrent"
    defaults = AdaFrameSettings()
    distributed = True  # fit() trains with every rank of a torchrun job (see fit)

    def __init__(self, k: int, settings: dict[str, str] | None = None,
                 global_memory: bool | None = None):  # fmt: skip
        """``global_memory``: the ``-g`` variant (16 memory frames) or not (none); ``None``
        keeps the method's default."""
        self.k = k
        defaults = self.defaults
        if global_memory is not None:
            defaults = dataclasses.replace(defaults, memory_frames=16 if global_memory else 0)
            self.method += "-g" if global_memory else ""
        self.settings = apply_settings(defaults, settings or {}, self.method)
        self.description = self.describe()
        self.model = None
        self.buffers = {}
        self.history: list[dict] = []
        self._envs: dict[tuple, AdaFrameVectorEnv] = {}
        self._rollouts: dict[tuple, Rollout] = {}  # evaluation rollouts, shared by every mu

    policy_text = "location policy"

    def describe(self) -> str:
        """One line for ``--list`` and the result files (learned-stop methods)."""
        s = self.settings
        memory = " with the global memory" if s.memory_frames else ""
        return (f"{self.method}{memory}: {self.policy_text} and a learned stop (REINFORCE, "
                f"{s.reward} reward minus {s.frame_cost:g} per frame), at most {self.k} frames")  # fmt: skip

    def hparams(self) -> dict:
        settings = dataclasses.asdict(self.settings)
        if not self.settings.memory_frames:  # no memory, no context: the same model either way
            del settings["context"]
        return {"method": self.method, "k": self.k, **settings, "version": 2}

    def setup(self, store, config: RunConfig) -> None:
        self.bind(store)
        self._rollouts.clear()
        torch.manual_seed(config.seed)
        memory_dim = store.light_dim if self.settings.memory_frames > 0 else None
        self.model = AdaFrameNet(
            store.feature_dim, store.num_classes, memory_dim, self.settings, self.k
        )
        self.device = torch.device(config.device)
        self.model.to(self.device)

    def make_env(self, store, split: str, num_envs: int) -> AdaFrameVectorEnv:
        """The vector env this agent trains and evaluates on (one per split and size, kept)."""
        key = (str(store.path), split, num_envs)
        if key not in self._envs:
            self._envs[key] = AdaFrameVectorEnv(
                num_envs, data=store.path, split=split, budget=self.k,
                reward=self.settings.reward, memory=self.settings.memory_frames > 0,
                memory_frames=max(self.settings.memory_frames, 1),
                observation_keys=("frame", "probs"), label_in_info=split == "train",
                lazy=store.lazy,
            )  # fmt: skip
        return self._envs[key]

    # ------------------------------------------------------------------ training
    def fit(self, store, train_videos, config: RunConfig) -> None:
        """Train on ``train_videos``; under ``torchrun``, on every rank together.

        Several processes (:mod:`adaframe_env.harness.distributed`, docs/distributed.md): every
        rank draws the same epoch orders (the NumPy generator is seeded alike), runs the
        episodes of its shard ``batch[rank::world]`` of each global batch, and the ranks' loss
        gradients, weighted by their shares of the batch, are summed by one all-reduce: every
        rank holds the one-process batch gradient and takes the same step. The logged training
        metrics are summed the same way; rank 0 alone computes the val mAP. The torch
        generator (Gaussian locations, stops, dropout) gets a seed per rank, so the ranks do
        not explore with the same noise: a run on W processes matches one process up to these
        draws, not bit for bit.

        Why an all-reduce of our own rather than ``DistributedDataParallel``: DDP prepares its
        gradient hooks in the wrapped module's ``forward``, while a rollout is K calls of
        :meth:`AdaFrameNet.step` (and of the core's ``keys``) between env steps; and some
        parameters get no gradient in some settings (the location head with K = 1, the readout
        layer with ``readout=recognizer``), which DDP accepts only with
        ``find_unused_parameters=True``, and that option does not support several forward
        calls per backward. One explicit all-reduce after ``backward()`` has neither
        constraint, is visible in the loop, and moves the same bytes as DDP (without DDP's
        overlap of communication with the backward pass; the rollout dominates an update).
        """
        s, net = self.settings, self.model
        self._rollouts.clear()
        rng = np.random.default_rng(config.seed)
        world = distributed.world()
        # the one-process seed on rank 0; other ranks draw their own exploration noise
        torch.manual_seed(config.seed + 1_000_003 * distributed.rank())
        self.buffers = standardization(store, train_videos, rng)
        epochs = config.epochs if config.epochs is not None else s.epochs
        batch = min(s.batch_size, len(train_videos))
        if batch < world:
            raise ValueError(f"{self.method}: a batch of {batch} videos on {world} processes")
        env = self.make_env(store, "train", math.ceil(batch / world))  # one shard's episodes
        env.reset(seed=config.seed)
        if not np.isin(train_videos, env.split_videos).all():
            raise ValueError(f"{self.method}: train_videos must be videos of the train split")
        positions = np.searchsorted(env.split_videos, train_videos)  # the env's video numbering
        distributed.broadcast_parameters(net)  # identical already (same seed); made certain
        if s.optimizer == "sgd":
            opt = torch.optim.SGD(net.parameters(), s.lr, momentum=0.9, weight_decay=s.weight_decay)
        else:
            opt = torch.optim.Adam(net.parameters(), s.lr, weight_decay=s.weight_decay)
        sched = torch.optim.lr_scheduler.StepLR(opt, s.lr_step or 10**9, gamma=0.1)
        val = store.videos("val")
        updates = len(train_videos) // batch
        main = distributed.is_main()
        bar = tqdm(total=epochs * updates, desc=f"train {self.name}",
                   disable=not (config.progress and main))  # fmt: skip
        self.history = []
        for epoch in range(1, epochs + 1):
            t0, sums = time.perf_counter(), {}
            net.train()
            order = rng.permutation(len(train_videos))
            for i in range(updates):
                videos = positions[order[i * batch : (i + 1) * batch]]
                opt.zero_grad()
                r, terms, share = self._backward(env, videos)
                opt.step()
                exits = r.exit_steps()
                correct = (r.final_logits().argmax(-1).cpu().numpy() == r.labels).mean()
                distinct = np.mean(
                    [len(np.unique(f[:e])) for f, e in zip(r.frames, exits, strict=True)]
                )
                values = {"loss_cls": terms["cls"].item(), "loss_utl": terms["utl"].item(),
                          "j_sel": terms["sel"].item(), "train_top1": float(correct),
                          "return": terms["rewards"].sum(1).mean().item(),
                          "frames": float(distinct),
                          "location_std": r.location[:, 1:].std().item() if r.location[:, 1:].numel() > 1 else 0.0}  # fmt: skip
                # batch means over the ranks (location_std: the shards' stds, averaged)
                values = distributed.weighted_sum(values, share, self.device)
                for key, value in values.items():
                    sums[key] = sums.get(key, 0.0) + float(value) / updates
                bar.update()
            sched.step()
            val_map = self._val_map(store, val) if main else float("nan")  # rank 0 only
            row = {"epoch": epoch, **sums, "val_map": val_map,
                   "seconds": time.perf_counter() - t0}  # fmt: skip
            self.history.append(row)
            if config.progress and main:
                bar.write(_format_epoch(row))
        bar.close()
        net.eval()

    def _backward(self, env: AdaFrameVectorEnv, videos: np.ndarray):
        """This rank's shard of the global batch ``videos`` (env positions): its episodes, its
        losses, ``backward()``, and the gradients summed over the ranks (each weighted by its
        share of the batch). Returns ``(rollout, loss terms, share)`` of this rank's shard; in
        one process, the whole batch with share 1."""
        mine = distributed.shard(videos)
        share = len(mine) / len(videos)
        r = rollout(self.model, env, mine, self.buffers, self.device, sigma=self.settings.sigma)
        looking = None
        if self.settings.perstep_loss and r.alive is not None and distributed.is_distributed():
            # the one-process loss averages over the looking steps of the whole batch: divide
            # by the batch's count, times this rank's share (which sum_gradients multiplies in)
            steps = distributed.weighted_sum({"steps": float(r.alive.sum())}, 1.0, self.device)
            looking = steps["steps"] * share
        terms = losses(r, self.settings, looking)
        terms["total"].backward()
        distributed.sum_gradients(self.model.parameters(), share)
        return r, terms, share

    @torch.no_grad()
    def _val_map(self, store, val) -> float:
        if len(val) == 0:
            return float("nan")
        scores = torch.softmax(self.episodes(store, val).final_logits(), -1).cpu().numpy()
        return float(mean_average_precision(scores, store.label[val]))

    # ------------------------------------------------------------------ inference
    @torch.no_grad()
    def episodes(self, store, videos, locations: np.ndarray | None = None) -> Rollout:
        """Deterministic K-step episodes (the policy's mean, or fixed ``locations``) for file
        indices ``videos``."""
        self.model.eval()
        split = SPLIT_NAMES[int(store.split[videos[0]])]
        if np.any(store.split[videos] != store.split[videos[0]]):
            raise ValueError(f"{self.method} evaluates one split at a time")
        env = self.make_env(store, split, min(256, max(len(videos), 1)))
        positions = np.searchsorted(env.split_videos, videos)  # split_videos is sorted
        parts = [rollout(self.model, env, positions[i : i + env.num_envs], self.buffers,
                         self.device, locations=locations)
                 for i in range(0, len(videos), env.num_envs)]  # fmt: skip
        return Rollout.concat(parts)

    def exits(self, r: Rollout, mu: float | None) -> np.ndarray:
        """1-based exit step of each video: its own stop decisions, else the full budget."""
        return r.exit_steps()

    def evaluate(self, store, videos, config: RunConfig, mu=None) -> list[VideoResult]:
        """Results for ``videos``; the deterministic rollout of a chunk is computed once and
        reused for every ``mu`` (so the first mu's time includes it)."""
        key = (str(store.path), tuple(int(v) for v in videos))
        if key not in self._rollouts:
            self._rollouts[key] = self.episodes(store, np.asarray(videos))
        r = self._rollouts[key]
        exits = self.exits(r, mu)
        probs = torch.softmax(r.logits, -1).cpu().numpy()
        m = self.settings.memory_frames
        step = self.model.step_gflops(m)
        return [
            VideoResult(scores=probs[i, e - 1], frames=r.frames[i, :e], memory=m > 0,
                        memory_frames=m, extra_gflops=step * e, exit_step=int(e))
            for i, e in enumerate(exits)
        ]  # fmt: skip

    # ------------------------------------------------------------------ checkpoint
    def load(self, directory: Path) -> None:
        super().load(directory)
        self._rollouts.clear()

    def save(self, directory: Path) -> None:
        super().save(directory)
        if self.history:
            write_curves(self.history, Path(directory), self.name or f"{self.method}-{self.k}")


class AdaFrameAgent(RecurrentFrameAgent):
    """AdaFrame: Gaussian location policy, no learned stop; at test, Algorithm 2 on the
    utility (one result row per ``--mu``)."""

    method = "adaframe"
    uses_mu = True

    def describe(self) -> str:
        return (
            f"AdaFrame-{self.k}: memory-augmented LSTM choosing where to look, REINFORCE on the "
            f"{self.settings.reward} reward, adaptive lookahead exit (--mu)"
        )

    def exits(self, r: Rollout, mu: float | None) -> np.ndarray:
        if mu is None:
            return np.full(r.logits.shape[0], self.k)
        return lookahead_exit(r.utility.cpu().numpy(), mu, self.k)


def _format_epoch(row: dict) -> str:
    return (
        f"epoch {row['epoch']:3d}  L_cls {row['loss_cls']:.3f}  L_utl {row['loss_utl']:.4f}  "
        f"J_sel {row['j_sel']:+.4f}  train top-1 {100 * row['train_top1']:5.1f}  "
        f"return {row['return']:.3f}  frames {row['frames']:.2f}  "
        f"loc std {row['location_std']:.3f}  val mAP {100 * row['val_map']:5.1f}  "
        f"({row['seconds']:.1f}s)"
    )


def write_curves(history: list[dict], directory: Path, title: str) -> None:
    """``curves.csv``, ``curves.png`` (and TensorBoard events when it is installed)."""
    keys = list(history[0])
    with open(directory / "curves.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, keys)
        writer.writeheader()
        writer.writerows(history)
    (directory / "curves.json").write_text(json.dumps(history))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("loss_cls", "L_cls"), ("loss_utl", "L_utl"), ("j_sel", "J_sel"),
              ("return", "train return"), ("frames", "distinct frames"),
              ("location_std", "location std"), ("train_top1", "train top-1"),
              ("val_map", "val mAP")]  # fmt: skip
    fig, axes = plt.subplots(2, 4, figsize=(14, 6), constrained_layout=True)
    epochs = [h["epoch"] for h in history]
    for ax, (key, label) in zip(axes.flat, panels, strict=True):
        ax.plot(epochs, [h[key] for h in history], marker="o", ms=3)
        ax.set_title(label)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    fig.suptitle(f"{title}: training curves")
    fig.savefig(directory / "curves.png", dpi=100)
    plt.close(fig)
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional
        return
    with SummaryWriter(str(directory / "tensorboard")) as tb:
        for h in history:
            for key, value in h.items():
                if key != "epoch":
                    tb.add_scalar(key, value, h["epoch"])
