"""The ``hfdae`` command line: it parses arguments and calls the Python API, nothing more.

Every default comes from the library: the parser imports the light registries (protocols, baselines, the zoo,
the training configuration, the sample names); options whose defaults live in modules that import torch are
passed only when given, so the library's own default applies. torch and transformers are imported only when
a command runs, so ``hfdae --help`` and ``hfdae COMMAND --help`` answer at once.
"""

from __future__ import annotations

import argparse
import sys
import warnings

from .baselines import list_baselines
from .lr_find import DEFAULT_IMAGES_PER_RATE, DEFAULT_RATES
from .plots import DEFAULT_CURVE_WINDOW
from .protocols import PROTOCOLS, get_protocol, list_tasks
from .samples import DEMO_CROP_SIZE, DEMO_SAMPLES
from .training_config import DEFAULT_FINETUNE_IMAGES, DEFAULT_FINETUNE_LEARNING_RATE, FREEZE_CHOICES
from .zoo import ZOO

__all__ = ["main", "build_parser"]

MODEL_HELP = f"'default' (the embedded model), a zoo name ({', '.join(ZOO)}), a model or run folder, or a Hub repo id"


def _add_model_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="default", help=f"the model: {MODEL_HELP} (default: default)")


def _noise_level_argument(text: str) -> float | str:
    """``--noise-level``: 'auto', or a sigma in 0-255 units -> the [0, 1] scale the library takes."""
    if text == "auto":
        return text
    try:
        sigma = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is neither 'auto' nor a sigma such as 25") from None
    if not 0 <= sigma <= 255:
        raise argparse.ArgumentTypeError(f"sigma {text} is outside 0-255")
    return sigma / 255


def _given(args: argparse.Namespace, **names: str) -> dict:
    """``{parameter: value}`` of the options the user gave (``names``: parameter -> attribute), so that the
    library's own defaults apply to the rest."""
    return {parameter: getattr(args, attribute) for parameter, attribute in names.items()
            if getattr(args, attribute) is not None}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``hfdae`` command."""
    parser = argparse.ArgumentParser(prog="hfdae", description="Denoising autoencoders that work.")
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser("demo", help="degrade bundled photos four ways, restore them, save panels, print PSNR")
    _add_model_argument(demo)
    demo.add_argument("--output", default="demo_output", help="folder for the panel PNGs (default: demo_output)")
    demo.add_argument("--size", type=int, default=DEMO_CROP_SIZE,
                      help=f"central crop side in pixels; 0 for whole images (default: {DEMO_CROP_SIZE})")
    demo.add_argument("--samples", default=",".join(DEMO_SAMPLES),
                      help=f"comma-separated bundled sample names (default: {','.join(DEMO_SAMPLES)})")
    demo.add_argument("--seed", type=int, default=0, help="base seed of the degradations (default: 0)")

    denoise = commands.add_parser("denoise", help="restore image files or folders, or every image of a dataset")
    denoise.add_argument("inputs", nargs="*", help="image files and/or folders")
    denoise.add_argument("-o", "--output", default=None,
                         help="output folder (or file, for one input file); with --dataset: the dataset's folder")
    denoise.add_argument("--dataset", default=None, metavar="ID_OR_FOLDER",
                         help="restore every image of a datasets dataset (a Hub id or a folder) into Hub-ready parquet"
                              " files (resumable; under `accelerate launch` the processes share the work)")
    denoise.add_argument("--split", default=None, help="with --dataset: the split (default: train)")
    denoise.add_argument("--column", default=None, help="with --dataset: the image column (default: image)")
    denoise.add_argument("--push-to-hub", default=None, metavar="REPO",
                         help="with --dataset: upload the restored dataset to this dataset repo")
    denoise.add_argument("--suffix", default=None, help="force an output format such as .png (default: keep each input's)")
    denoise.add_argument("--noise-level", default=None, type=_noise_level_argument, metavar="auto|SIGMA",
                         help="strength, for models with a noise-level input: 'auto' estimates sigma per image,"
                              " SIGMA gives it in 0-255 units (e.g. 25; larger smooths more); default: blind")
    _add_model_argument(denoise)

    train = commands.add_parser(
        "train", help="train a model from a YAML config; extra --key value pairs override it (e.g. --optimizer.name adam)")
    train.add_argument("--config", default=None, help="a YAML training config (see configs/); default: built-in defaults")
    train.add_argument("--resume", action="store_true", help="continue the run in output_dir from its last checkpoint")
    train.add_argument("--overwrite", action="store_true", help="delete the run in output_dir and start afresh")

    finetune = commands.add_parser(
        "finetune", help="fine-tune a trained model for a task (extra --key value pairs override the run)")
    finetune.add_argument("--from", dest="parent", required=True, help=f"the model to start from: {MODEL_HELP}")
    finetune.add_argument("--task", required=True, choices=list_tasks(),
                          help="the task; validation uses its protocol (" + ", ".join(
                              f"{protocol.task}: {protocol.name}" for protocol in PROTOCOLS.values()) + ")")
    finetune.add_argument("--data", required=True, help="training images: a folder, parquet file(s) or Hub dataset id")
    finetune.add_argument("--output", required=True, help="the run folder")
    finetune.add_argument("--lr", type=float, default=DEFAULT_FINETUNE_LEARNING_RATE,
                          help=f"constant learning rate (default: {DEFAULT_FINETUNE_LEARNING_RATE:g})")
    finetune.add_argument("--freeze", choices=FREEZE_CHOICES, default="none", help="keep the encoder fixed")
    finetune.add_argument("--max-images", type=int, default=DEFAULT_FINETUNE_IMAGES,
                          help=f"training images to see (default: {DEFAULT_FINETUNE_IMAGES})")
    finetune.add_argument("--mask-channel", action=argparse.BooleanOptionalAction, default=None,
                          help="give the mask as an extra input channel (default: for the tasks whose models take it)")
    finetune.add_argument("--task-options", default=None,
                          help="YAML mapping of the task's degradation options, e.g. '{max_box_fraction: 0.5}' or"
                               " '{sigma_max: 2, noise_sigma_max: 0.02}'")
    finetune.add_argument("--resume", action="store_true", help="continue the run from its last checkpoint")
    finetune.add_argument("--overwrite", action="store_true", help="delete the run in --output and start afresh")

    lr_find = commands.add_parser(
        "lr-find", help="short runs over a range of learning rates; plot loss against rate and suggest one")
    lr_find.add_argument("--config", default=None, help="a YAML training config")
    lr_find.add_argument("--rates", default=",".join(f"{rate:g}" for rate in DEFAULT_RATES),
                         help="comma-separated rates to try (default: %(default)s)")
    lr_find.add_argument("--images-per-rate", type=int, default=DEFAULT_IMAGES_PER_RATE,
                         help="training images per trial (default: %(default)s)")
    lr_find.add_argument("--output", default="lr_find", help="folder for the plot and results.json (default: lr_find)")

    curve = commands.add_parser("curve", help="redraw a run's learning curve from its log.jsonl")
    curve.add_argument("run_dir", help="a training run folder")
    curve.add_argument("--window", type=int, default=DEFAULT_CURVE_WINDOW,
                       help="moving average over this many records (default: %(default)s)")
    curve.add_argument("--output", default=None, help="PNG path (default: RUN_DIR/learning_curve.png)")
    curve.add_argument("--overlay", action="append", default=[], metavar="NAME=RUN_DIR",
                       help="also draw another run's smoothed loss (repeatable)")

    evaluate = commands.add_parser(
        "evaluate", help="PSNR/SSIM of models and baselines on a folder of clean images, one table per protocol")
    evaluate.add_argument("models", nargs="+", help=f"models: {MODEL_HELP}")
    evaluate.add_argument("--data", required=True, help="folder (or parquet / Hub dataset) of clean test images")
    evaluate.add_argument("--protocol", choices=list(PROTOCOLS), default="seed",
                          help="; ".join(f"{name}: {protocol.task_description}, headline {protocol.headline_label}"
                                         for name, protocol in PROTOCOLS.items()) + " (default: seed)")
    sigmas = get_protocol("awgn").options["sigmas"]
    evaluate.add_argument("--sigmas", default=None,
                          help=f"noise levels of the awgn protocol, 0-255 (default: {','.join(map(str, sigmas))})")
    evaluate.add_argument("--baseline", action="append", default=[],
                          help=f"a baseline to add: {', '.join(list_baselines())} (repeatable); the protocol's"
                               " default baselines (input) are always in the table unless --no-default-baselines")
    evaluate.add_argument("--no-default-baselines", action="store_true", help="leave out the protocol's default baselines")
    evaluate.add_argument("--output", default=None, help="folder for results.json, results.md and figures")
    evaluate.add_argument("--limit", type=int, default=None, help="only the first N images")
    evaluate.add_argument("--split", default=None,
                          help="only this hash split of --data (e.g. validation: images training never used)")
    evaluate.add_argument("--seed", type=int, default=0, help="base seed of the protocol's degradations (default: 0)")
    evaluate.add_argument("--no-ssim", action="store_true", help="skip SSIM")
    evaluate.add_argument("--self-ensemble", action="store_true", help="x8 flips/rotations for the hfdae models")
    evaluate.add_argument("--tile", type=int, default=None, help="restore in tiles of this size (default: automatic)")
    evaluate.add_argument("--given-sigma", action="store_true",
                          help="also a row per model with a noise-level input, given the true noise sigma (as FFDNet)")
    evaluate.add_argument("--convert-channels", action="store_true",
                          help="read the data in the models' channels even under awgn (e.g. a colour split as gray)")
    evaluate.add_argument("--panel-image", default=None, help="image for the detail panel (default: the first)")

    presets = commands.add_parser("presets", help="list the model presets with parameters and MACs")
    presets.add_argument("--size", type=int, default=None, help="image side for the MAC count (default: 256)")

    commands.add_parser("zoo", help="list the zoo's trained models: preset, task, and where each loads from here")

    export = commands.add_parser("export", help="export a model to ONNX (dynamic batch, height and width);"
                                                " needs the onnx extra: pip install 'hfdae[onnx]'")
    export.add_argument("model", help=MODEL_HELP)
    export.add_argument("--onnx", required=True, help="the .onnx file to write")
    export.add_argument("--check", action="store_true",
                        help="run the exported file with onnxruntime and report its largest difference from PyTorch")
    space = commands.add_parser("space", help="launch the Gradio demo (denoise, inpaint, compare) on 127.0.0.1;"
                                              " needs the space extra: pip install 'hfdae[space]'")
    space.add_argument("--model", action="append", default=None, metavar="LABEL=SPEC",
                       help=f"a model the demo offers, as LABEL=SPEC or SPEC (SPEC: {MODEL_HELP}); repeatable"
                            " (default: the embedded model)")
    space.add_argument("--port", type=int, default=None, help="port on 127.0.0.1 (default: 7860)")
    space.add_argument("--max-pixels", type=int, default=None, help="largest upload in pixels (default: the space's limit)")
    space.add_argument("--concurrency", type=int, default=None, help="requests restored at a time (default: 1)")
    space.add_argument("--output", default=None, help="folder for results and examples (default: a new temporary one)")
    space.add_argument("--export", default=None, metavar="DIR",
                       help="instead of launching, write a Space folder to push to the Hub: app.py, a wheel of hfdae,"
                            " requirements.txt, README front matter and the --model folders (no download at start-up)")
    space.add_argument("--wheel", default=None, help="with --export: ship this built hfdae wheel instead of building one")
    space.add_argument("--overwrite", action="store_true", help="with --export: replace a previous export in DIR")
    _add_hub_commands(commands)
    return parser


def _add_hub_commands(commands) -> None:
    push = commands.add_parser(
        "push", help="upload a model or run folder to the Hugging Face Hub in one commit (safetensors, card, code)")
    push.add_argument("source", help="the model: a model folder, a training run folder (its best/ model), 'default' or"
                                     " a zoo name")
    push.add_argument("--repo-id", required=True, help="NAMESPACE/NAME on the Hub; the token comes from HF_TOKEN"
                                                       " or `hf auth login`")
    push.add_argument("--evaluation", action="append", default=[], metavar="RESULTS_JSON",
                      help="results.json of `hfdae evaluate` for this model (repeatable: one per protocol)")
    push.add_argument("--run", default=None, help="the training run folder, when SOURCE is a model folder outside it")
    push.add_argument("--checkpoint", choices=["best", "final"], default=None,
                      help="which model of a run folder (default: best)")
    push.add_argument("--private", action="store_true", help="create the repo private (an existing repo keeps its own)")
    push.add_argument("--revision", default=None, help="the branch to commit to, created if missing (default: main)")
    push.add_argument("--create-pr", action="store_true", help="open a pull request on an existing repo instead")
    push.add_argument("--model-method", default=None, help="the evaluation row that is this model, where the files"
                                                           " hold several hfdae models")
    push.add_argument("--message", default=None, help="the commit message")
    push.add_argument("--notes", default=None, metavar="MARKDOWN_FILE",
                      help="a Markdown file rendered as the card's 'Notes and reproduction' section")
    push.add_argument("--no-code", action="store_true",
                      help="with --dry-run: leave out the model code and auto_map (for folders kept in a repository)")
    push.add_argument("--overwrite", action="store_true", help="with --dry-run: replace an existing OUT_DIR")
    push.add_argument("--dry-run", metavar="OUT_DIR", default=None,
                      help="write the folder that would be uploaded into OUT_DIR and upload nothing")

    card = commands.add_parser("card", help="render a model card (README.md) from a model, its training run and"
                                            " evaluation results")
    card.add_argument("model_dir", metavar="MODEL", help="a model folder, a training run folder (its best/ model),"
                                                         " 'default' or a zoo name")
    card.add_argument("--output", required=True, help="the README.md to write; links are relative to its folder")
    card.add_argument("--run", default=None, help="the training run folder (found automatically for RUN/best)")
    card.add_argument("--evaluation", action="append", default=[], metavar="RESULTS_JSON",
                      help="results.json of `hfdae evaluate` for this model (repeatable)")
    card.add_argument("--repo-id", default=None, help="the Hub repo id the loading examples name")
    card.add_argument("--notes", default=None, metavar="MARKDOWN_FILE",
                      help="a Markdown file rendered as the card's 'Notes and reproduction' section")
    card.add_argument("--model-method", default=None, help="the evaluation row that is this model")
    card.add_argument("--name", default=None, help="the card's title and model-index name (default: the repo's or"
                                                   " the folder's name)")


# --- the commands: each calls the Python API ---------------------------------------------------------------


def _run_demo(args: argparse.Namespace) -> int:
    from .demo import model_label, run_demo
    from .inference import UntrainedModelWarning, load_model

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UntrainedModelWarning)  # the demo says it more plainly below
        model = load_model(args.model)
    result = run_demo(model, args.output, samples=tuple(args.samples.split(",")), size=args.size or None,
                      seed=args.seed)
    if not result.trained:
        print(
            "NOTE: this model is UNTRAINED (random weights), so the 'restored' images are not restorations.\n"
            "      Load a trained one with --model, or train one with `hfdae train --config configs/tiny.yaml`.\n"
        )
    else:
        summary = model.config.training_summary or {}
        seen = f"{model.config.images_seen:,} training images seen"
        if model.config.lineage:  # a fine-tune or a later training stage: count what its parents saw too
            seen += f", {model.config.images_seen_with_parents:,} with its parents'"
        print(f"model: {model_label(model)} ({seen}) {summary.get('description', '')}")
    print("PSNR in dB, degraded -> restored (the chapter's five conditions; 'clean' = the clean input):\n")
    print(result.table())
    print("\npanels: " + ", ".join(str(path) for path in result.panels))
    return 0


def _run_denoise(args: argparse.Namespace) -> int:
    from .inference import denoise_files, load_model

    if args.dataset is not None:
        return _run_denoise_dataset(args)
    if not args.inputs or args.output is None:
        raise ValueError("give image files or folders and --output, or --dataset ID_OR_FOLDER")
    model = load_model(args.model)
    report = denoise_files(model, args.inputs, args.output, suffix=args.suffix, noise_level=args.noise_level)
    print(f"restored {len(report.written)} image(s) into {args.output}")
    for path, sigma in report.noise_levels.items():
        print(f"estimated noise level of {path}: sigma {sigma:.1f} (0-255)")
    for line in report.problems() + report.advice():
        print(line, file=sys.stderr)
    return report.exit_status


def _run_denoise_dataset(args: argparse.Namespace) -> int:
    from .dataset_restoration import restore_dataset

    if args.inputs:
        raise ValueError("give image files and folders, or --dataset, not both")
    if args.output is None and args.push_to_hub is None:
        raise ValueError("--dataset needs --output DIR (or --push-to-hub REPO)")
    report = restore_dataset(args.model, args.dataset, args.output, push_to_hub=args.push_to_hub,
                             noise_level=args.noise_level, **_given(args, split="split", column="column"))
    print(f"restored {report.rows_restored} row(s) of {args.dataset} [{report.split}] into {report.output_dir}"
          f" ({len(report.files_skipped)} file(s) were already there)")
    for label, reason in report.failed.items():
        print(f"kept unrestored: {label}: {reason}", file=sys.stderr)
    if report.commit_url:
        print(f"pushed: {report.commit_url}")
    return 0


def _train_and_report(config, args: argparse.Namespace) -> int:
    """Run a training config (``train`` and ``finetune``) and print where its models are."""
    from .training import Trainer

    trainer = Trainer(config, resume=args.resume, overwrite=args.overwrite)
    result = trainer.train()
    if result.best_validation_psnr is not None:
        label = next((record["validation_metric"] for record in reversed(result.records)
                      if "validation_metric" in record), "validation")
        print(f"best validation PSNR ({label}): {result.best_validation_psnr:.2f} dB")
    print(f"trained on {result.images_seen:,} images in {result.wall_seconds / 60:.1f} min; models in"
          f" {result.final_model} and {result.best_model}")
    return 0


def _run_train(args: argparse.Namespace, extra: list[str]) -> int:
    from .training_config import load_training_config, parse_override_arguments

    return _train_and_report(load_training_config(args.config, parse_override_arguments(extra)), args)


def _run_finetune(args: argparse.Namespace, extra: list[str]) -> int:
    import yaml

    from .training_config import finetune_config, parse_override_arguments

    task_options = yaml.safe_load(args.task_options) if args.task_options else None
    if task_options is not None and not isinstance(task_options, dict):
        raise ValueError(f"--task-options must be a YAML mapping, got {args.task_options!r}")
    config = finetune_config(args.parent, args.task, args.data, args.output, learning_rate=args.lr,
                             freeze=args.freeze, max_images=args.max_images, mask_channel=args.mask_channel,
                             task_options=task_options, overrides=parse_override_arguments(extra))
    return _train_and_report(config, args)


def _run_lr_find(args: argparse.Namespace, extra: list[str]) -> int:
    from .lr_find import find_learning_rate
    from .training_config import load_training_config, parse_override_arguments

    config = load_training_config(args.config, parse_override_arguments(extra))
    rates = [float(rate) for rate in args.rates.split(",")]
    result = find_learning_rate(config, rates, args.images_per_rate, args.output)
    print(result.table())
    print(f"\nsuggested learning rate: {result.suggested:.3g} (largest that did not diverge:"
          f" {result.largest_stable:.3g}); plot: {result.plot}")
    return 0


def _run_evaluate(args: argparse.Namespace) -> int:
    from .evaluation import evaluate_models

    sigmas = [float(sigma) for sigma in args.sigmas.split(",")] if args.sigmas else None
    report = evaluate_models(args.models, args.data, args.protocol, args.baseline,
                             default_baselines=not args.no_default_baselines, split=args.split, limit=args.limit,
                             seed=args.seed, sigmas=sigmas, with_ssim=not args.no_ssim,
                             self_ensemble=args.self_ensemble, tile_size=args.tile or "auto",
                             given_sigma=args.given_sigma, convert_channels=args.convert_channels,
                             output=args.output, panel_image=args.panel_image)
    for name in report.unreadable:
        print(f"could not read {name}; evaluated the rest", file=sys.stderr)
    print(report.markdown())
    if args.output:
        print(f"\nwrote {args.output}/results.json, results.md and figures")
    return 0


def _run_curve(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .plots import learning_curve
    from .runs import LEARNING_CURVE, read_log

    overlays = {}
    for overlay in args.overlay:
        name, separator, run_dir = overlay.partition("=")
        if not separator or not name or not run_dir:
            raise ValueError(f"--overlay {overlay!r}: expected NAME=RUN_DIR")
        overlays[name] = read_log(run_dir)
    path = learning_curve(read_log(args.run_dir), args.output or Path(args.run_dir) / LEARNING_CURVE,
                          window=args.window, title=Path(args.run_dir).name, overlays=overlays or None)
    print(f"wrote {path}")
    return 0


def _run_export(args: argparse.Namespace) -> int:
    from .export import check_onnx, export_onnx
    from .inference import load_model

    model = load_model(args.model)
    path = export_onnx(model, args.onnx)
    print(f"wrote {path}")
    if args.check:
        difference = check_onnx(model, path)
        print(f"onnxruntime vs PyTorch on a random 3-size check: max abs difference {difference:.2e}")
    return 0


def _run_space(args: argparse.Namespace) -> int:
    from .space import export_space, launch, parse_model_specs

    if args.export:
        folder = export_space(args.export, parse_model_specs(args.model), wheel=args.wheel, overwrite=args.overwrite)
        print(f"wrote the Space folder {folder}; push it with: hf upload USER/NAME {folder} . --repo-type space")
        return 0
    options = _given(args, server_port="port", max_pixels="max_pixels", concurrency_limit="concurrency")
    launch(parse_model_specs(args.model), server_name="127.0.0.1", output_dir=args.output, **options)
    return 0


def _run_push(args: argparse.Namespace) -> int:
    from .hub import build_model_folder, push_to_hub

    options = dict(evaluations=args.evaluation, run_dir=args.run, model_method=args.model_method, notes=args.notes,
                   **_given(args, checkpoint="checkpoint"))
    if args.dry_run:
        folder = build_model_folder(args.source, args.dry_run, repo_id=args.repo_id, overwrite=args.overwrite,
                                    include_code=not args.no_code, **options)
        print(f"wrote {folder} (nothing uploaded): " + ", ".join(sorted(path.name for path in folder.iterdir())))
        return 0
    info = push_to_hub(args.source, args.repo_id, private=True if args.private else None, revision=args.revision,
                       create_pr=args.create_pr, commit_message=args.message, **options)
    print(f"pushed {args.source} to {args.repo_id}: {info.pr_url or info.commit_url}")
    return 0


def _run_card(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .cards import render_model_card

    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    card = render_model_card(args.model_dir, run_dir=args.run, evaluations=args.evaluation, repo_id=args.repo_id,
                             model_name=args.name, model_method=args.model_method, card_dir=output.parent,
                             notes=args.notes)
    card.save(output)
    print(f"wrote {output}")
    return 0


def _run_presets(args: argparse.Namespace) -> int:
    from .complexity import preset_table

    print(preset_table(**_given(args, size="size")))
    return 0


def _run_zoo(args: argparse.Namespace) -> int:
    from .zoo import zoo_table

    print(zoo_table())
    return 0


# what a command needs beyond the core install: (the missing module's top-level name, how to get it)
OPTIONAL_EXTRAS = {
    "space": ("gradio", "pip install 'hfdae[space]'"),
    "export": ("onnx", "pip install 'hfdae[onnx]'"),
}


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``hfdae`` console script."""
    args, extra = build_parser().parse_known_args(argv)
    handlers = {"push": _run_push, "card": _run_card, "demo": _run_demo, "denoise": _run_denoise,
                "presets": _run_presets, "zoo": _run_zoo, "evaluate": _run_evaluate, "export": _run_export,
                "curve": _run_curve, "space": _run_space}
    takes_overrides = {"train": _run_train, "lr-find": _run_lr_find, "finetune": _run_finetune}
    if extra and args.command not in takes_overrides:
        build_parser().error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        if args.command in takes_overrides:
            return takes_overrides[args.command](args, extra)
        return handlers[args.command](args)
    except ImportError as error:  # an optional extra that is not installed: say which and how to get it
        module, install = OPTIONAL_EXTRAS.get(args.command, (None, None))
        missing = getattr(error, "name", None) or ""
        if module is None or not (missing.startswith(module) or module in str(error)):
            raise
        print(f"hfdae {args.command}: error: this command needs {module}, which is not installed: {install}",
              file=sys.stderr)
        return 2
    except (OSError, ValueError) as error:
        print(f"hfdae {args.command}: error: {error}", file=sys.stderr)
        return 2
    except RuntimeError as error:  # diverged training, no decodable data, wrong process count ...
        from .training import TrainingDivergedError

        print(f"hfdae {args.command}: error: {error}", file=sys.stderr)
        return 3 if isinstance(error, TrainingDivergedError) else 2


if __name__ == "__main__":
    sys.exit(main())
