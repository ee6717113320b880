"""One batch of episodes through the native vector env: the network chooses the locations,
the env serves frames, memory and the recognizer's running probabilities, and counts them."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch
from torch.distributions import Normal

from adaframe_env.vector_env import AdaFrameVectorEnv
from agents.recurrent.network import JUMPS, AdaFrameNet


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
