"""Size a training config to a time budget on this machine, then train it.

    python zoo/fit_to_budget.py configs/zoo-colour-stage4.yaml --seconds 420
    python zoo/fit_to_budget.py CONFIG --seconds 420 --rate 2142     # a rate measured before: no probe

1. A probe: the config's first ``--probe-steps`` steps (into OUTPUT_DIR-probe, deleted afterwards),
   for the crops per second this machine trains at, epoch boundaries and data loading included.
2. ``max_images`` = ``--safety`` x rate x seconds, rounded down to whole batches; validation and
   checkpoints every quarter of it. These three lines of CONFIG are rewritten in place, so the file
   that trained the model is the file that stays (commit it).
3. ``hfdae train --config CONFIG --overwrite``.

A cosine schedule needs its length before the first step, so a time budget becomes a crop budget
here, once, instead of a run cut off half-way down its schedule.
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import yaml

from hfdae.runs import read_log


def probe_rate(config_path: Path, steps: int) -> float:
    """Median crops per second over the probe's log records, the first two (warm-up) left out."""
    config = yaml.safe_load(config_path.read_text())
    batch = config["batch_size"]
    probe_dir = Path(config["output_dir"] + "-probe")
    every = max(1, steps // 10) * batch  # about ten records
    config.update(output_dir=str(probe_dir), max_images=steps * batch, log_every_images=every,
                  validate_every_images=0, checkpoint_every_images=10 * steps * batch)
    probe_config = probe_dir.with_suffix(".yaml")
    probe_config.parent.mkdir(parents=True, exist_ok=True)
    probe_config.write_text(yaml.safe_dump(config, sort_keys=False))
    subprocess.run([sys.executable, "-m", "hfdae.cli", "train", "--config", str(probe_config), "--overwrite"],
                   check=True)
    records = [record for record in read_log(probe_dir) if "images_per_second" in record]  # not validations
    rates = [record["images_per_second"] for record in records[2:]]
    if not rates:
        raise RuntimeError(f"the probe logged {len(records)} records; raise --probe-steps")
    shutil.rmtree(probe_dir)
    probe_config.unlink()
    return statistics.median(rates)


def rewrite(config_path: Path, **values: int) -> None:
    """Set top-level ``key: value`` lines of a YAML config in place, keeping its comments and order."""
    text = config_path.read_text()
    for key, value in values.items():
        text, count = re.subn(rf"^{key}:.*$", f"{key}: {value}", text, flags=re.MULTILINE)
        if count != 1:
            raise ValueError(f"{config_path}: expected one top-level line '{key}: ...', found {count}")
    config_path.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", type=Path)
    parser.add_argument("--seconds", type=float, required=True, help="time for the training steps")
    parser.add_argument("--probe-steps", type=int, default=300)
    parser.add_argument("--safety", type=float, default=0.85, help="fraction of the probe's rate planned on")
    parser.add_argument("--rate", type=float, default=None, help="crops per second, measured before: skip the probe")
    args = parser.parse_args()
    started = time.time()
    rate = args.rate if args.rate is not None else probe_rate(args.config, args.probe_steps)
    batch = yaml.safe_load(args.config.read_text())["batch_size"]
    quarter = int(args.safety * rate * args.seconds / (4 * batch)) * batch
    if quarter < batch:
        raise SystemExit(f"{args.seconds} s at {rate:.0f} crops/s is less than four batches")
    rewrite(args.config, max_images=4 * quarter, validate_every_images=quarter, checkpoint_every_images=quarter)
    source = "given" if args.rate is not None else "probe"
    print(f"{source}: {rate:.0f} crops/s ({time.time() - started:.0f} s); {args.config}: max_images {4 * quarter}",
          flush=True)
    subprocess.run([sys.executable, "-m", "hfdae.cli", "train", "--config", str(args.config), "--overwrite"],
                   check=True)


if __name__ == "__main__":
    main()
