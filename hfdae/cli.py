"""The ``hfdae`` command line: a thin layer over the Python API (imports are lazy so ``--help`` is quick)."""

from __future__ import annotations

import argparse
import sys
import warnings

__all__ = ["main", "build_parser"]


def _add_model_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        default="default",
        help="'default' (the embedded model, no download), a folder made by save_pretrained, or a Hub repo id",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``hfdae`` command."""
    parser = argparse.ArgumentParser(prog="hfdae", description="Denoising autoencoders that work.")
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser("demo", help="degrade bundled photos four ways, restore them, save panels, print PSNR")
    _add_model_argument(demo)
    demo.add_argument("--output", default="demo_output", help="folder for the panel PNGs (default: demo_output)")
    demo.add_argument("--size", type=int, default=256, help="central crop side in pixels; 0 for whole images")
    demo.add_argument("--samples", default=None, help="comma-separated bundled sample names (default: astronaut,coffee,chelsea)")
    demo.add_argument("--seed", type=int, default=0, help="base seed of the degradations")

    denoise = commands.add_parser("denoise", help="restore image files or folders")
    denoise.add_argument("inputs", nargs="+", help="image files and/or folders")
    denoise.add_argument("-o", "--output", required=True, help="output folder (or file, for one input file)")
    denoise.add_argument("--suffix", default=None, help="force an output format such as .png (default: keep each input's)")
    _add_model_argument(denoise)

    train = commands.add_parser(
        "train",
        help="train a model from a YAML config; extra --key value pairs override it (e.g. --optimizer.name adam)",
    )
    train.add_argument("--config", default=None, help="a YAML training config (see configs/); default: built-in defaults")
    train.add_argument("--resume", action="store_true", help="continue the run in output_dir from its last checkpoint")
    train.add_argument("--overwrite", action="store_true", help="delete the run in output_dir and start afresh")

    lr_find = commands.add_parser(
        "lr-find", help="short runs over a range of learning rates; plot loss against rate and suggest one"
    )
    lr_find.add_argument("--config", default=None, help="a YAML training config")
    lr_find.add_argument("--rates", default="1e-1,3e-2,1e-2,3e-3,1e-3,3e-4,1e-4", help="comma-separated rates to try")
    lr_find.add_argument("--images-per-rate", type=int, default=2000, help="training images per trial")
    lr_find.add_argument("--output", default="lr_find", help="folder for the plot and results.json")

    curve = commands.add_parser("curve", help="redraw a run's learning curve from its log.jsonl")
    curve.add_argument("run_dir", help="a training run folder")
    curve.add_argument("--window", type=int, default=50, help="moving average over this many records (default 50)")
    curve.add_argument("--output", default=None, help="PNG path (default: RUN_DIR/learning_curve.png)")

    evaluate = commands.add_parser(
        "evaluate", help="PSNR/SSIM of models and baselines on a test folder (chapter or AWGN protocol), one table"
    )
    evaluate.add_argument("models", nargs="+", help="models: 'default', folders or Hub ids")
    evaluate.add_argument("--data", required=True, help="folder (or parquet / Hub dataset) of clean test images")
    evaluate.add_argument("--protocol", choices=["seed", "awgn"], default="seed",
                          help="seed: the chapter's five outputs; awgn: the published tables' Gaussian noise")
    evaluate.add_argument("--sigmas", default="15,25,50", help="noise levels of the awgn protocol (0-255)")
    evaluate.add_argument("--baseline", action="append", default=[],
                          help="input, bm3d, dncnn=PATH or ffdnet=PATH (repeatable)")
    evaluate.add_argument("--output", default=None, help="folder for results.json, results.md and figures")
    evaluate.add_argument("--limit", type=int, default=None, help="only the first N images")
    evaluate.add_argument("--seed", type=int, default=0, help="base seed of the seed protocol's degradations")
    evaluate.add_argument("--no-ssim", action="store_true", help="skip SSIM")
    evaluate.add_argument("--self-ensemble", action="store_true", help="x8 flips/rotations for the hfdae models")
    evaluate.add_argument("--tile", type=int, default=None, help="restore in tiles of this size (default: automatic)")
    evaluate.add_argument("--panel-image", default=None, help="image for the detail panel (default: the first)")

    presets = commands.add_parser("presets", help="list the model presets with parameters and MACs")
    presets.add_argument("--size", type=int, default=256, help="image side for the MAC count (default 256)")
    return parser


def _run_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo
    from .inference import UntrainedModelWarning, load_model
    from .samples import DEMO_SAMPLES

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UntrainedModelWarning)  # the demo says it more plainly below
        model = load_model(args.model)
    samples = tuple(args.samples.split(",")) if args.samples else DEMO_SAMPLES
    result = run_demo(model, args.output, samples=samples, size=args.size or None, seed=args.seed)
    if not result.trained:
        print(
            "NOTE: this model is UNTRAINED (random weights), so the 'restored' images are not restorations.\n"
            "      Load a trained one with --model, or train one with `hfdae train --config configs/tiny.yaml`.\n"
        )
    else:
        summary = model.config.training_summary or {}
        print(f"model: {args.model} ({model.config.images_seen:,} training images seen) {summary.get('description', '')}")
    print("PSNR in dB, degraded -> restored (the chapter's five conditions; 'clean' = the clean input):\n")
    print(result.table())
    print("\npanels: " + ", ".join(str(path) for path in result.panels))
    return 0


def _run_denoise(args: argparse.Namespace) -> int:
    from .inference import denoise_files, load_model

    model = load_model(args.model)
    report = denoise_files(model, args.inputs, args.output, suffix=args.suffix)
    print(f"restored {len(report.written)} image(s) into {args.output}")
    for path, reason in report.failed.items():
        print(f"could not read {path}: {reason}", file=sys.stderr)
    return 1 if report.failed and not report.written else 0


def _run_train(args: argparse.Namespace, extra: list[str]) -> int:
    from .recipe import load_training_config, parse_override_arguments
    from .training import Trainer

    config = load_training_config(args.config, parse_override_arguments(extra))
    result = Trainer(config, resume=args.resume, overwrite=args.overwrite).train()
    if result.best_validation_psnr is not None:
        print(f"best validation PSNR (five-output average): {result.best_validation_psnr:.2f} dB")
    print(f"trained on {result.images_seen:,} images in {result.wall_seconds / 60:.1f} min; models in"
          f" {result.final_model} and {result.best_model}")
    return 0


def _run_lr_find(args: argparse.Namespace, extra: list[str]) -> int:
    from .lr_find import find_learning_rate
    from .recipe import load_training_config, parse_override_arguments

    config = load_training_config(args.config, parse_override_arguments(extra))
    rates = [float(rate) for rate in args.rates.split(",")]
    result = find_learning_rate(config, rates, args.images_per_rate, args.output)
    print(result.table())
    print(f"\nsuggested learning rate: {result.suggested:.3g} (largest that did not diverge:"
          f" {result.largest_stable:.3g}); plot: {result.plot}")
    return 0


def _run_evaluate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .data import load_images
    from .evaluation import Method, build_method, evaluate
    from .inference import load_model
    from .plots import detail_panel, psnr_heatmap
    from .processing import to_tensor

    models = [load_model(name) for name in args.models]
    channels = {model.config.image_channels for model in models}
    if len(channels) > 1:
        raise ValueError("the models take different channel counts (gray and colour): evaluate them separately")
    labels = [name if name != "default" else "default (embedded)" for name in args.models]
    methods = [Method.from_model(model, label, self_ensemble=args.self_ensemble,
                                 tile_size=args.tile if args.tile else "auto")
               for model, label in zip(models, labels)]
    methods += [build_method(spec) for spec in args.baseline]
    model_channels = channels.pop()
    images, unreadable = load_images(args.data, None, limit=args.limit)
    for name in unreadable:
        print(f"could not read {name}; evaluating the rest", file=sys.stderr)
    mismatched = [(name, image.shape[0]) for name, image in images if image.shape[0] != model_channels]
    if mismatched and args.protocol == "awgn":
        # converting gray to colour (or back) would change the published protocol's numbers silently
        raise ValueError(f"{mismatched[0][0]} has {mismatched[0][1]} channel(s) but the models take"
                         f" {model_channels}: the awgn protocol needs data of the models' own kind"
                         " (colour models on CBSD68, gray models on BSD68 / Set12)")
    images = [(name, to_tensor(image, model_channels)[0]) for name, image in images]
    panel_image = args.panel_image or images[0][0]
    if panel_image not in {name for name, _ in images}:
        raise ValueError(f"--panel-image {panel_image!r} is not among the evaluated images")
    report = evaluate(methods, images, args.protocol, sigmas=[float(s) for s in args.sigmas.split(",")],
                      seed=args.seed, with_ssim=not args.no_ssim, data=str(args.data), unreadable=unreadable,
                      keep_image=panel_image if args.output else None)
    print(report.markdown())
    if args.output:
        report.save(args.output)
        psnr_heatmap(report, Path(args.output) / "psnr_heatmap.png")
        if args.protocol == "seed":
            detail_panel(report, Path(args.output) / "detail_panel.png")
        print(f"\nwrote {args.output}/results.json, results.md and figures")
    return 0


def _run_curve(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from .plots import learning_curve

    log = Path(args.run_dir) / "log.jsonl"
    if not log.is_file():
        raise FileNotFoundError(f"{log}: no training log here")
    records = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    path = learning_curve(records, args.output or Path(args.run_dir) / "learning_curve.png", window=args.window,
                          title=Path(args.run_dir).name)
    print(f"wrote {path}")
    return 0


def _run_presets(args: argparse.Namespace) -> int:
    from .profiling import preset_table

    print(preset_table(args.size))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``hfdae`` console script."""
    args, extra = build_parser().parse_known_args(argv)
    handlers = {"demo": _run_demo, "denoise": _run_denoise, "presets": _run_presets, "evaluate": _run_evaluate,
                "curve": _run_curve}
    takes_overrides = {"train": _run_train, "lr-find": _run_lr_find}
    if extra and args.command not in takes_overrides:
        build_parser().error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        if args.command in takes_overrides:
            return takes_overrides[args.command](args, extra)
        return handlers[args.command](args)
    except (OSError, ValueError) as error:
        print(f"hfdae {args.command}: error: {error}", file=sys.stderr)
        return 2
    except RuntimeError as error:  # diverged training, no decodable data, wrong process count ...
        from .training import TrainingDivergedError

        print(f"hfdae {args.command}: error: {error}", file=sys.stderr)
        return 3 if isinstance(error, TrainingDivergedError) else 2


if __name__ == "__main__":
    sys.exit(main())
