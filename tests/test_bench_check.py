"""`python -m lit_alexnet.bench check`, the GPU check, on its CPU side: its arguments, its
skip lines, the wheels it installs, the caps it keeps and the files it writes as it goes."""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

import pytest

from lit_alexnet.bench import check
from lit_alexnet.bench.check import NO_GPU, PARTS, Part, failed, run_check, run_part


def bench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lit_alexnet.bench", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_parts_and_their_caps_fit_the_issues_eight_minutes() -> None:
    caps = {part.name: part.cap_s for part in PARTS}
    assert caps == {
        "gpu-tests": 90,
        "bench-gpu-quick": 180,
        "smoke-dali-gpu": 60,
        "quickstart-gpu": 120,
    }
    assert sum(caps.values()) + check.INSTALL_CAP_S <= 8 * 60


def test_without_a_gpu_every_part_says_it_skipped_and_check_md_lists_them(
    tmp_path: Path,
) -> None:
    proc = bench("check", "--output-dir", str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr
    for part in PARTS:
        assert f"{part.name}: {NO_GPU}" in proc.stderr
    report = (tmp_path / "out" / check.REPORT).read_text()
    assert "GPU: none" in report
    rows = [line for line in report.splitlines() if line.startswith("| ") and NO_GPU in line]
    assert [row.split(" | ")[0].removeprefix("| ") for row in rows] == [p.name for p in PARTS]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [check.REPORT]


def test_an_unknown_part_is_refused_by_name(tmp_path: Path) -> None:
    proc = bench("check", "--output-dir", str(tmp_path), "--only", "gpu-tests", "quickstrat")
    assert proc.returncode == 2
    assert "--only quickstrat: no such part" in proc.stderr
    assert "quickstart-gpu" in proc.stderr


def test_a_part_writes_its_log_as_it_runs_and_is_stopped_at_its_cap(tmp_path: Path) -> None:
    # Prints, then sleeps past the cap: the line is in the log although the part was killed.
    code = "import time; print('started', flush=True); time.sleep(60)"
    part = Part("sleeper", 2, (sys.executable, "-c", code))
    outcome = run_part(part, tmp_path, tmp_path, tmp_path / "01-sleeper.log", env={})
    assert outcome.status == "over its cap of 2 s: stopped"
    assert 2 <= outcome.seconds < 30
    assert "started" in (tmp_path / "01-sleeper.log").read_text()
    assert failed([outcome]) == ["sleeper"]


def test_a_part_keeps_its_runs_file_and_reports_its_exit_status(tmp_path: Path) -> None:
    out, work = tmp_path / "out", tmp_path / "work"
    out.mkdir()
    code = (
        "import pathlib, sys; d = pathlib.Path(sys.argv[1]); d.mkdir(parents=True); "
        "(d / 'results.json').write_text('{}'); print('last words'); sys.exit(3)"
    )
    part = Part(
        "writer",
        30,
        (sys.executable, "-c", code, "{work}/run"),
        keep=("run/results.json", "run.json"),
    )
    outcome = run_part(part, out, work, out / "02-writer.log", env={})
    assert outcome.status == "failed (exit 3)"
    assert outcome.last_line == "last words"
    assert (out / "run.json").read_text() == "{}"
    assert failed([outcome, check.Outcome("other", NO_GPU)]) == ["writer"]


def _wheel(directory: Path) -> Path:
    """A minimal pure-Python wheel of a module `gpu_check_probe` (PEP 427's layout)."""
    path = directory / "gpu_check_probe-1.0-py3-none-any.whl"
    info = "gpu_check_probe-1.0.dist-info"
    files = {
        "gpu_check_probe.py": "ANSWER = 42\n",
        f"{info}/METADATA": "Metadata-Version: 2.1\nName: gpu-check-probe\nVersion: 1.0\n",
        f"{info}/WHEEL": (
            "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    files[f"{info}/RECORD"] = "".join(f"{name},,\n" for name in [*files, f"{info}/RECORD"])
    with zipfile.ZipFile(path, "w") as whl:
        for name, text in files.items():
            whl.writestr(name, text)
    return path


def test_carried_parts_are_joined_installed_and_on_the_parts_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The wheel as prepare-wheels.sh sends it: one tar, cut into parts.
    made = tmp_path / "made"
    made.mkdir()
    wheel = _wheel(made)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        tar.add(wheel, arcname=f"./{wheel.name}")
    data = buffer.getvalue()
    parts = tmp_path / "parts"
    parts.mkdir()
    third = len(data) // 3 + 1
    for i in range(3):
        (parts / f"part{i:02d}").write_bytes(data[i * third : (i + 1) * third])
    imports = Part("install", 60, (sys.executable, "-c", "import gpu_check_probe"))
    probe = Part(
        "probe", 60, (sys.executable, "-c", "import gpu_check_probe as p; print(p.ANSWER)")
    )
    monkeypatch.setattr(check, "PROBE", imports)
    monkeypatch.setattr(check, "PARTS", (probe,))
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    out = tmp_path / "out"
    outcomes = run_check(out, wheels=parts, has_gpu=lambda: True, say=lambda line: None)
    assert [(o.part, o.status) for o in outcomes] == [("install", "ok"), ("probe", "ok")]
    assert not list(scratch.iterdir()), "the unpacked wheels and their install are left behind"
    assert outcomes[1].last_line == "42"
    logs = ["00-imports.log", "00-install.log", "01-probe.log", check.REPORT]
    assert sorted(p.name for p in out.iterdir()) == logs
    assert "| probe | ok |" in (out / check.REPORT).read_text()


def test_wheels_that_do_not_import_stop_the_check_before_its_parts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    _wheel(wheels)
    missing = Part("install", 60, (sys.executable, "-c", "import not_carried_here"))
    monkeypatch.setattr(check, "PROBE", missing)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    out = tmp_path / "out"
    outcomes = run_check(out, wheels=wheels, has_gpu=lambda: True, say=lambda line: None)
    assert [(o.part, o.status) for o in outcomes] == [("install", "failed (exit 1)")]
    assert not list(scratch.iterdir())
    assert "No module named 'not_carried_here'" in outcomes[0].last_line
    assert failed(outcomes) == ["install"]
    assert not list(out.glob("01-*"))


def test_no_wheels_where_they_were_said_to_be_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"no \*\.whl and no part\* files"):
        check.unpack_wheels(tmp_path, tmp_path / "into")


def test_quick_is_every_part_of_the_full_bench_on_fewer_steps() -> None:
    from lit_alexnet.bench.gpu import QUICK, GpuBenchSettings

    full, quick = GpuBenchSettings(), GpuBenchSettings(**QUICK)  # type: ignore[arg-type]
    for name in QUICK:
        assert 0 < getattr(quick, name) <= getattr(full, name), name
    assert quick.fit_steps > quick.fit_warmup and quick.batch_steps > quick.batch_warmup


def test_the_gpu_tests_part_collects_only_the_files_with_gpu_tests() -> None:
    # The others import wandb, which the GPU machine lacks, and would fail the collection.
    names = {path.name for path in check.gpu_test_files(Path(__file__).parent)}
    assert {"test_strategy.py", "test_precision.py", "test_dali.py"} <= names
    assert "test_train.py" not in names and "test_bench_check.py" not in names
