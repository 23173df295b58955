"""The data options' allowed values and their one check, in a dependency-free module: the
datamodules and the config schemas both call :func:`check_data_options`, so composing a
config imports no backend."""

from __future__ import annotations

from typing import Any, Final, Literal

from lit_alexnet.checks import check, check_choice

Views = Literal["center", "ten_crop"]
VIEWS: tuple[Views, ...] = ("center", "ten_crop")  # section 4.1's test-time views
MeanMode = Literal["image", "channel"]
MEAN_MODES: tuple[MeanMode, ...] = ("image", "channel")  # the mean image (section 2) or RGB
Device = Literal["auto", "gpu", "cpu"]
DEVICES: tuple[Device, ...] = ("auto", "gpu", "cpu")  # where DALI decodes
BACKENDS = ("auto", "dali", "torchvision")
# The default backend and DALI device: DALI where it imports, decoding on the GPU where there
# is one; one name for the datamodules' signatures and the config schema.
AUTO: Final = "auto"
BATCH_SIZE = 128  # section 5: every datamodule's and data config's default
LIGHTING_STD = 0.1  # section 4.1: the PCA lighting's alphas are drawn from N(0, 0.1)
VERIFY_MODES = ("fast", "full", "off")
BAD_FILE_POLICIES = ("skip", "error")

# What each datamodule option may be: one of a tuple above, or a number at least this large
# (None, where the option takes it, means "chosen for this machine").
_CHOICES: dict[str, tuple[str, ...]] = {
    "backend": BACKENDS,
    "mean": MEAN_MODES,
    "val_views": VIEWS,
    "test_views": VIEWS,
    "verify": VERIFY_MODES,
    "bad_files": BAD_FILE_POLICIES,
    "device": DEVICES,
}
_MINIMUMS: dict[str, float] = {
    "batch_size": 1,
    "lighting_std": 0,
    "num_threads": 1,
    "num_workers": 0,
}


def check_data_options(**options: Any) -> None:
    """Refuse any datamodule option (``mean="imag"``, ``lighting_std=-1``) outside what it
    may be, naming the option; options this module does not know are left alone."""
    for key, value in options.items():
        if key in _CHOICES:
            check_choice(key, value, _CHOICES[key])
        elif key in _MINIMUMS and value is not None:
            check(value >= _MINIMUMS[key], key, value, f"must be >= {_MINIMUMS[key]:g}")
