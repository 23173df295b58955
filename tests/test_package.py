"""The package face: plain-torch parts and config composition import no heavy backend."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("lightning", "pytorch_lightning", "hydra", "torchmetrics", "nvidia.dali", "wandb")


def imported_after(code: str) -> set[str]:
    probe = f"import sys\n{code}\nprint(' '.join(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    ).stdout.split()
    return {m for m in out if m.split(".")[0] in {h.split(".")[0] for h in HEAVY}}


def test_the_network_imports_as_plain_torch() -> None:
    loaded = imported_after("import lit_alexnet.nn\nlit_alexnet.nn.AlexNet(num_classes=10)")
    assert not loaded, sorted(loaded)


def test_importing_the_package_loads_its_lightning_parts_only_when_used() -> None:
    assert not imported_after("import lit_alexnet")
    loaded = imported_after(
        "import lit_alexnet\nlit_alexnet.LitAlexNet\n"
        "from lightning.pytorch.strategies import StrategyRegistry\n"
        "assert 'two_device_ddp' in StrategyRegistry"
    )
    assert "lightning" in loaded


def test_composing_a_config_never_imports_dali() -> None:
    code = (
        "from hydra import compose, initialize_config_dir\n"
        "from lit_alexnet.config import config_dir, register_configs, validate\n"
        "register_configs()\n"
        "with initialize_config_dir(str(config_dir()), version_base='1.3'):\n"
        "    cfg = compose('train', overrides=['pooling=standard', 'norm=none'])\n"
    )
    loaded = imported_after(code)
    assert "hydra" in loaded
    assert not any(m.startswith("nvidia") for m in loaded), sorted(loaded)


def test_every_public_name_resolves_to_the_object_its_module_defines() -> None:
    import importlib

    import lit_alexnet

    assert lit_alexnet.__all__ == sorted(lit_alexnet._EXPORTS)
    for name, module in lit_alexnet._EXPORTS.items():
        assert getattr(lit_alexnet, name) is getattr(importlib.import_module(module), name)


def test_the_imports_for_type_checkers_are_the_public_names() -> None:
    """``lit_alexnet/__init__.py`` names each public name twice: in ``_EXPORTS``, which loads
    it when first used, and in the ``if TYPE_CHECKING:`` imports, which give it its type."""
    import ast
    import inspect

    import lit_alexnet

    tree = ast.parse(inspect.getsource(lit_alexnet))
    block = next(
        node
        for node in tree.body
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING"
    )
    typed = {
        alias.name: node.module
        for node in block.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    assert typed == lit_alexnet._EXPORTS
