"""Search LSTM recipes for the U10 row of Table 1 on a cache (research tool, not a benchmark).

    python research/lstm_recipes.py CACHE.h5 '[{}, {"kind": "mean"}, {"drop": 0.5, "epochs": 30}]'

Trains one model per JSON config on the train split over 10 uniform frames per video (one
jittered frame per segment each epoch), prints val mAP (the number to choose by), test mAP
(for reference only), train mAP and the val curve, next to AvgPooling over the same frames.
Config keys (defaults in ``run``): ``H`` hidden units, ``enc`` a Linear+ReLU frame encoder
width (0: none), ``drop_in`` / ``drop`` dropout, ``perstep`` cross-entropy at every step,
``aux`` weight of a per-frame classification loss, ``epochs``, ``lr``, ``wd``, ``cosine``,
``opt`` (adam | adamw), ``noise`` Gaussian input noise, ``mix`` share of frames swapped in
from other train videos of the same class, ``kind`` (lstm | mean: linear on the running mean
of frames | skip: LSTM plus that linear readout). ``NT`` (env) sets torch threads.
"""

import argparse
import json
import os
import sys
import time

import numpy as np
import torch
from torch import nn

from adaframe_env.data.store import FeatureStore
from adaframe_env.metrics import mean_average_precision
from baselines.avgpool import pooled_scores
from baselines.sampling import jittered_uniform_frames, uniform_frames

K = 10


class Data:
    """The cache's splits, the standardization of the heavy features (a sample of 20,000 train
    frames) and the train videos of each class."""

    def __init__(self, path: str):
        store = self.store = FeatureStore(path, validate_file=False)
        tr = self.tr = store.videos("train")
        self.va, self.te = store.videos("val"), store.videos("test")
        rng0 = np.random.default_rng(0)
        rows = np.concatenate(
            [np.arange(store.offset[v], store.offset[v] + store.length[v]) for v in tr]
        )
        samp = store.array("features")[
            np.sort(rng0.choice(rows, min(20000, len(rows)), replace=False))
        ].astype(np.float32)
        self.mean, self.std = samp.mean(0), samp.std(0) + 1e-3
        self.bycls = {c: tr[store.label[tr] == c] for c in range(store.num_classes)}

    def centre(self, vids):
        return [
            uniform_frames(int(t), K) if t >= K else np.arange(K) * int(t) // K
            for t in self.store.length[vids]
        ]

    def batch(self, vids, frames, sources=None):
        """(len(vids), K, D) standardized features of ``frames``; ``sources`` (len(vids) * K,)
        reads each frame from another video instead."""
        src = np.repeat(vids, [len(f) for f in frames]) if sources is None else sources
        x = self.store.lookup("features", src, np.concatenate(frames))
        x = ((x.astype(np.float32) - self.mean) / self.std).reshape(len(vids), K, -1)
        return torch.from_numpy(x)


class Net(nn.Module):
    def __init__(s, D, C, H, enc, drop_in, drop, enc_act, kind):
        super().__init__()
        s.kind = kind
        s.enc = None
        inp = D
        if enc:
            s.enc = nn.Sequential(
                nn.Dropout(drop_in),
                nn.Linear(D, enc),
                nn.ReLU() if enc_act else nn.Identity(),
                nn.Dropout(drop),
            )
            inp = enc
        else:
            s.enc = nn.Dropout(drop_in)
        s.lstm = nn.LSTM(inp, H, batch_first=True)
        s.drop = nn.Dropout(drop)
        s.head = nn.Linear(H, C)
        s.aux = nn.Linear(inp, C)

    def forward(s, x):
        e = s.enc(x)
        if s.kind == "mean":
            h = torch.cumsum(e, 1) / torch.arange(1, e.shape[1] + 1).view(1, -1, 1)
            return s.aux(s.drop(h)), s.aux(e)
        h, _ = s.lstm(e)
        if s.kind == "skip":
            m = torch.cumsum(e, 1) / torch.arange(1, e.shape[1] + 1).view(1, -1, 1)
            return s.head(s.drop(h)) + s.aux(s.drop(m)), s.aux(e)
        return s.head(s.drop(h)), s.aux(e)


def run(
    d: Data,
    H=256,
    enc=0,
    drop_in=0.0,
    drop=0.0,
    enc_act=True,
    perstep=False,
    aux=0.0,
    epochs=15,
    lr=1e-3,
    wd=1e-4,
    bs=64,
    cosine=False,
    seed=0,
    opt="adam",
    kind="lstm",
    noise=0.0,
    mix=0.0,
):
    store, tr = d.store, d.tr
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net = Net(store.feature_dim, store.num_classes, H, enc, drop_in, drop, enc_act, kind)
    o = (torch.optim.AdamW if opt == "adamw" else torch.optim.Adam)(
        net.parameters(), lr=lr, weight_decay=wd
    )
    nb = -(-len(tr) // bs)
    total = epochs * nb
    sch = torch.optim.lr_scheduler.LambdaLR(
        o, (lambda s: 0.5 * (1 + np.cos(np.pi * s / total))) if cosine else (lambda s: 1.0)
    )
    lab = torch.from_numpy(store.label)
    t0 = time.time()
    curve = []
    for ep in range(epochs):
        net.train()
        perm = rng.permutation(tr)
        tl = 0
        for i in range(0, len(perm), bs):
            v = perm[i : i + bs]
            fr = [
                jittered_uniform_frames(int(t), K, rng) if t >= K else np.arange(K) * int(t) // K
                for t in store.length[v]
            ]
            if mix:
                # each position comes, with prob mix, from another train video of the same class
                src = np.repeat(v[:, None], K, 1)
                for r in range(len(v)):
                    pool = d.bycls[store.label[v[r]]]
                    swap = rng.random(K) < mix
                    src[r, swap] = rng.choice(pool, swap.sum())
                fr = [
                    np.array(
                        [
                            int(fr[r][j] * store.length[src[r, j]] / store.length[v[r]])
                            for j in range(K)
                        ]
                    )
                    for r in range(len(v))
                ]
                x = d.batch(v, fr, src.reshape(-1))
            else:
                x = d.batch(v, fr)
            if noise:
                x = x + noise * torch.randn_like(x)
            y = lab[v]
            out, ax = net(x)
            if perstep:
                loss = nn.functional.cross_entropy(
                    out.reshape(-1, out.shape[-1]), y.repeat_interleave(K)
                )
            else:
                loss = nn.functional.cross_entropy(out[:, -1], y)
            if aux:
                loss = loss + aux * nn.functional.cross_entropy(
                    ax.reshape(-1, ax.shape[-1]), y.repeat_interleave(K)
                )
            o.zero_grad()
            loss.backward()
            o.step()
            sch.step()
            tl += loss.item()
        if (ep + 1) % max(1, epochs // 5) == 0 or ep == epochs - 1:
            curve.append((ep + 1, round(tl / nb, 3), round(ev(d, net, d.va), 1)))
    return net, curve, time.time() - t0


@torch.no_grad()
def ev(d: Data, net, vids):
    net.eval()
    out, _ = net(d.batch(vids, d.centre(vids)))
    s = torch.softmax(out[:, -1], -1).numpy()
    return 100 * mean_average_precision(s, d.store.label[vids])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("cache")
    p.add_argument("configs", help='JSON list of configs, e.g. \'[{}, {"kind": "mean"}]\'')
    args = p.parse_args(argv)
    torch.set_num_threads(int(os.environ.get("NT", "2")))
    d = Data(args.cache)
    for name, v in (("val", d.va), ("test", d.te)):
        s = pooled_scores(d.store, v, d.centre(v))
        m = 100 * mean_average_precision(s, d.store.label[v])
        print(f"avgpool-u10 {name} mAP {m:.1f}", flush=True)
    for cfg in json.loads(args.configs):
        net, curve, dt = run(d, **cfg)
        print(
            json.dumps(cfg),
            "val",
            curve[-1][2],
            "test",
            round(ev(d, net, d.te), 1),
            "train",
            round(ev(d, net, d.tr[:1000]), 1),
            f"{dt:.0f}s",
            curve,
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
