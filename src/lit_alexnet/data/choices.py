"""The data options' allowed values, in one dependency-free module: the datamodules check
against these and the config schemas name them, so composing a config imports no backend."""

from __future__ import annotations

from typing import Literal

Views = Literal["center", "ten_crop"]
VIEWS: tuple[Views, ...] = ("center", "ten_crop")  # section 4.1's test-time views
MeanMode = Literal["image", "channel"]
MEAN_MODES: tuple[MeanMode, ...] = ("image", "channel")  # the mean image (section 2) or RGB
Device = Literal["auto", "gpu", "cpu"]
DEVICES: tuple[Device, ...] = ("auto", "gpu", "cpu")  # where DALI decodes
BACKENDS = ("auto", "dali", "torchvision")
VERIFY_MODES = ("fast", "full", "off")
BAD_FILE_POLICIES = ("skip", "error")
