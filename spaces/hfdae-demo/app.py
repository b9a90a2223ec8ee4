"""hfdae's Hugging Face Space: denoise, inpaint and compare denoising autoencoders in the browser.

The models it offers come from the Space variable HFDAE_SPACE_MODELS, "LABEL=SPEC, LABEL=SPEC" (SPEC:
"default", a zoo name, a folder or a Hub repo id), else the model embedded in the hfdae package;
HFDAE_SPACE_MAX_PIXELS sets the largest upload (default 4000000). Run locally with `python app.py`
or `hfdae space`.
"""

import os

from hfdae.space import DEFAULT_MAX_PIXELS, MAX_PIXELS_VARIABLE, DenoisingSpace, models_from_environment

max_pixels = int(os.environ.get(MAX_PIXELS_VARIABLE, DEFAULT_MAX_PIXELS))
space = DenoisingSpace(models_from_environment(), max_pixels=max_pixels)
demo = space.build_demo()

if __name__ == "__main__":
    demo.launch(**space.launch_options())
