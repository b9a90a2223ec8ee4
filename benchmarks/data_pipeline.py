"""Benchmark: is the data pipeline fast enough to keep a training step busy?

Measures, for random training crops from a folder of images (hfdae.data):
    - clean crops/s from the loader with 0 and with N DataLoader workers;
    - degraded batches/s: the loader plus ``build_degradation("chapter")`` applied to each batch;
    - the training step rate (img/s) of the ``skip`` preset on one fixed batch: fp32, fp32 with
      channels_last, and bf16 autocast with channels_last;
    - end to end: loader with N workers + degradation + the bf16 channels_last step.
and prints the machine and a Markdown table.

Usage:
    python benchmarks/data_pipeline.py --data ../shared/data/train/CBSD432 [--batch-size 16 --seconds 20]

This is a script, not a test: it needs a real image folder and takes a few minutes.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import os
import platform
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import torch

from hfdae.data import crop_dataset, make_dataloader


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _machine_description() -> str:
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (f"{_cpu_model()}, {os.cpu_count()} cores ({usable} usable), torch {torch.__version__} "
            f"({torch.get_num_threads()} threads), Python {platform.python_version()}")


def _load_average() -> str:
    return " / ".join(f"{value:.2f}" for value in os.getloadavg()) + " (1 / 5 / 15 min)"


def _endless_batches(dataset, loader) -> Iterator[torch.Tensor]:
    for epoch in itertools.count():
        dataset.set_epoch(epoch)
        yield from loader


def _rate(next_batch: Callable[[], int], seconds: float, warmup_steps: int) -> tuple[float, float]:
    """(batches/s, images/s) of ``next_batch`` (which returns its batch size), after warm-up steps."""
    for _ in range(warmup_steps):  # worker start-up, first-call allocations, oneDNN kernel selection
        next_batch()
    batches = images = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        images += next_batch()
        batches += 1
    elapsed = time.perf_counter() - start
    return batches / elapsed, images / elapsed


def _loader_rate(args, num_workers: int, transform: Callable[[torch.Tensor], torch.Tensor] | None = None):
    dataset = crop_dataset(args.data, crop_size=args.crop_size, split=args.split, seed=0)
    loader = make_dataloader(dataset, batch_size=args.batch_size, num_workers=num_workers)
    batches = _endless_batches(dataset, loader)

    def next_batch() -> int:
        batch = next(batches)
        if transform is not None:
            transform(batch)
        return len(batch)

    try:
        return _rate(next_batch, args.seconds, warmup_steps=2)
    finally:
        batches.close()
        del loader
        gc.collect()  # shut the persistent workers down before the next measurement


def _build_degradation():
    try:
        from hfdae.degradations import build_degradation
    except ImportError:
        return None
    degradation = build_degradation("chapter")
    generator = torch.Generator().manual_seed(0)
    return lambda batch: degradation(batch, generator=generator).images


def _training_step(precision: str, channels_last: bool) -> Callable[[torch.Tensor, torch.Tensor], None]:
    from hfdae import DenoisingAutoencoder, DenoisingAutoencoderConfig

    torch.manual_seed(0)
    model = DenoisingAutoencoder(DenoisingAutoencoderConfig.from_preset("skip")).train()
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=memory_format)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)

    def step(degraded: torch.Tensor, clean: torch.Tensor) -> None:
        degraded = degraded.contiguous(memory_format=memory_format)
        clean = clean.contiguous(memory_format=memory_format)
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            loss = model(pixel_values=degraded, labels=clean).loss
        loss.backward()
        optimizer.step()

    return step


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="a folder of training images (or any hfdae.data source)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--crop-size", type=int, default=128)
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers for the multi-worker rows")
    parser.add_argument("--seconds", type=float, default=20.0, help="measuring time per row")
    parser.add_argument("--split", default=None, help="hash split to read (default: every file)")
    args = parser.parse_args(argv)
    # torchdata's StatefulDataLoader calls a deprecated torch function at every start: noise here.
    warnings.filterwarnings("ignore", message="'set_vital' is deprecated")

    print(f"Machine: {_machine_description()}; load average at the start {_load_average()}")
    print(f"Data: {args.data}, crops {args.crop_size}x{args.crop_size}, batch {args.batch_size}, "
          f"{args.seconds:g} s per row\n")
    rows: list[tuple[str, float, float]] = []

    def add(what: str, rate: tuple[float, float]) -> None:
        rows.append((what, *rate))
        print(f"  measured {what}: {rate[1]:.1f} img/s", flush=True)

    add("clean crops, 0 workers", _loader_rate(args, 0))
    add(f"clean crops, {args.workers} workers", _loader_rate(args, args.workers))
    degrade = _build_degradation()
    if degrade is not None:
        add(f"degraded batches (chapter), {args.workers} workers", _loader_rate(args, args.workers, degrade))

    # The degradation and the training step alone, on one real batch, so their speed is not mixed with loading.
    dataset = crop_dataset(args.data, crop_size=args.crop_size, split=args.split, seed=0)
    clean = next(iter(make_dataloader(dataset, batch_size=args.batch_size)))
    degraded = degrade(clean) if degrade is not None else clean
    if degrade is not None:

        def degrade_fixed_batch() -> int:
            degrade(clean)
            return len(clean)

        rate = _rate(degrade_fixed_batch, args.seconds, warmup_steps=2)
        add("chapter degradation alone (one batch, no loading)", rate)
    step_rates = {}
    for precision, channels_last in [("fp32", False), ("fp32", True), ("bf16", True)]:
        step = _training_step(precision, channels_last)

        def one_step() -> int:
            step(degraded, clean)
            return len(clean)

        autocast = " autocast" if precision == "bf16" else ""
        variant = f"{precision}{autocast}, {'channels_last' if channels_last else 'NCHW'}"
        rate = _rate(one_step, args.seconds, warmup_steps=2)
        step_rates[(precision, channels_last, variant)] = rate[1]
        add(f"train step `skip`, {variant}", rate)

    # End to end: what a training loop on this machine gets, with the fastest step variant.
    precision, channels_last, variant = max(step_rates, key=step_rates.get)
    step = _training_step(precision, channels_last)

    def train_on_loaded(batch: torch.Tensor) -> None:
        step(degrade(batch) if degrade is not None else batch, batch)

    add(f"end to end: {args.workers} workers + chapter + step ({variant})",
        _loader_rate(args, args.workers, train_on_loaded))

    # Other work on the machine distorts every row: the load average shows whether there was any.
    print(f"\nMachine: {_machine_description()}; load average at the end {_load_average()}\n")
    print("| what | batches/s | img/s |")
    print("|---|---:|---:|")
    for what, batches_per_second, images_per_second in rows:
        print(f"| {what} | {batches_per_second:.2f} | {images_per_second:.1f} |")


if __name__ == "__main__":
    main()
