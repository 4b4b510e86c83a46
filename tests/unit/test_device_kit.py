"""The device kit (benchmarks/device_kit.py): which packages travel, and the repacked wheels."""

from __future__ import annotations

import stat
import subprocess
import sys
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import device_kit  # noqa: E402


def test_runtime_closure_is_hftunes_installed_dependencies() -> None:
    closure = device_kit.runtime_closure()
    for name in ("ray", "transformers", "datasets", "pydantic", "pydantic-core", "torch"):
        assert name in closure, name  # direct and indirect runtime dependencies
    assert "pytest" not in closure and "ruff" not in closure  # the dev extra is not followed
    assert "hftune" not in closure
    import ray

    assert closure["ray"] == ray.__version__


def test_to_carry_subtracts_the_image_and_keeps_tested_versions() -> None:
    closure = {"ray": "2.60.0", "transformers": "5.24.0", "numpy": "2.4.6", "torch": "2.13.0+cpu",
               "nvidia-cublas": "13.0", "optuna": "5.0.0", "plotly": "7.1.0", "dill": "0.4.1"}
    image = {"numpy", "transformers", "torch", "nvidia-cublas"}
    grid_only = device_kit.to_carry(closure, image, everything=False)
    assert grid_only == {"ray": "2.60.0", "transformers": "5.24.0", "dill": "0.4.1"}
    everything = device_kit.to_carry(closure, image, everything=True)
    assert everything == {**grid_only, "optuna": "5.0.0", "plotly": "7.1.0"}


def test_image_package_names_are_canonical() -> None:
    names = device_kit.image_packages()
    assert {"torch", "transformers", "huggingface-hub", "scikit-learn"} <= names
    assert "ray" not in names and "datasets" not in names and "pydantic" not in names


def test_repack_drops_prefixes_keeps_modes_and_installs(tmp_path: Path) -> None:
    wheel = tmp_path / "demo-1.0-py3-none-any.whl"
    record = "demo/__init__.py,,\ndemo/bin/tool,,\ndemo/jars/big.jar,,\n"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("demo/__init__.py", "VALUE = 1\n")
        tool = zipfile.ZipInfo("demo/bin/tool")
        tool.external_attr = (stat.S_IFREG | 0o755) << 16
        zf.writestr(tool, "#!/bin/sh\necho ok\n")
        zf.writestr("demo/jars/big.jar", b"x" * 10_000)
        zf.writestr("demo-1.0.dist-info/METADATA",
                    "Metadata-Version: 2.1\nName: demo\nVersion: 1.0\n")
        zf.writestr("demo-1.0.dist-info/WHEEL",
                    "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        zf.writestr("demo-1.0.dist-info/RECORD", record)
    device_kit.repack(wheel, drop=("demo/jars/",))
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        assert "demo/jars/big.jar" not in names
        assert all(i.compress_type == zipfile.ZIP_LZMA for i in zf.infolist())
        assert "jars" not in zf.read("demo-1.0.dist-info/RECORD").decode()
        assert (zf.getinfo("demo/bin/tool").external_attr >> 16) & 0o111
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-index", "--no-deps",
                    "--target", str(target), str(wheel)], check=True)
    assert (target / "demo" / "__init__.py").read_text() == "VALUE = 1\n"
    assert (target / "demo" / "bin" / "tool").stat().st_mode & stat.S_IXUSR
    assert not (target / "demo" / "jars").exists()


def test_tiny_bert_takes_its_tokenizer_from_a_folder(tiny_bert: Path, tmp_path: Path) -> None:
    """The device machine has no packaged MiniLM: the kit's tokenizer folder stands in."""
    from transformers import AutoTokenizer

    from hftune.testing.tiny_model import make_tiny_bert

    source = tmp_path / "tokenizer"
    AutoTokenizer.from_pretrained(tiny_bert, do_lower_case=False).save_pretrained(source)
    folder = make_tiny_bert(tmp_path / "model", hidden=32, layers=1, heads=2,
                            tokenizer_from=source)
    tok = AutoTokenizer.from_pretrained(folder)
    assert tok.tokenize("Hello") == AutoTokenizer.from_pretrained(source).tokenize("Hello")
    assert (folder / "model.safetensors").is_file()
