"""hfdae's Space: denoise, inpaint and compare denoising autoencoders in the browser.

Written by `hfdae space --export`. It offers MODELS below (folders next to this file, or the model embedded
in hfdae: nothing is downloaded at start-up) unless the Space variable HFDAE_SPACE_MODELS names others
("LABEL=SPEC, LABEL=SPEC"); HFDAE_SPACE_MAX_PIXELS sets the largest upload (default 4000000).

hfdae itself is the wheel in wheels/, installed into .hfdae/ on the first start: a Space installs
requirements.txt before it copies in the rest of the repository, so the wheel cannot be named there.
Without a wheel (a source checkout), the installed hfdae is used.
"""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
MODELS = {
    'default (embedded)': 'default',
}


def use_bundled_hfdae() -> None:
    """Put the hfdae wheel of wheels/ first on sys.path, installed (once) with pip, offline, without its
    requirements (requirements.txt installed them)."""
    wheels = sorted((HERE / "wheels").glob("hfdae-*.whl"))
    if not wheels:
        try:
            import hfdae  # noqa: F401
        except ImportError:
            raise SystemExit("no hfdae wheel in wheels/ and no hfdae installed: write a deployable Space folder"
                             " with `hfdae space --export DIR` (or pip install 'hfdae[space]')") from None
        return
    base = HERE / ".hfdae" if os.access(HERE, os.W_OK) else Path(tempfile.gettempdir()) / "hfdae-space"
    target = base / wheels[-1].stem
    if not target.is_dir():
        partial = base / (wheels[-1].stem + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
                        "--target", str(partial), str(wheels[-1])], check=True)
        partial.rename(target)
    sys.path.insert(0, str(target))


use_bundled_hfdae()

from hfdae.space import (  # noqa: E402
    DEFAULT_MAX_PIXELS,
    MAX_PIXELS_VARIABLE,
    MODELS_VARIABLE,
    DenoisingSpace,
    parse_model_specs,
)

if os.environ.get(MODELS_VARIABLE):
    models = parse_model_specs(os.environ[MODELS_VARIABLE])
else:
    models = {label: str(HERE / spec) if (HERE / spec).is_dir() else spec for label, spec in MODELS.items()}
max_pixels = int(os.environ.get(MAX_PIXELS_VARIABLE, DEFAULT_MAX_PIXELS))
space = DenoisingSpace(models, max_pixels=max_pixels)
demo = space.build_demo()

if __name__ == "__main__":
    demo.launch(**space.launch_options())
