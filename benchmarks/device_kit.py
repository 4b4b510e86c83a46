"""Pack what the GPU benchmark needs on a lent device machine that has no package index.

The device machines of this workplace run an image with Python 3.12, CUDA PyTorch, transformers,
pandas, pyarrow, ... but without Ray, datasets, pydantic and a few more; nothing can be
installed there from the network, and one call carries at most 64 MiB of files. This script
writes ``.device-kit/`` (git-ignored) in the repository root:

* ``wheels/``: Python 3.12 manylinux wheels of every package in hftune's runtime closure (the
  versions installed here, which the test suite ran with) that the image lacks
  (``device_image_packages.txt``), plus transformers and datasets at the versions tested here.
  Wheels over 1 MiB are recompressed with LZMA, Ray's (76 MiB) also without its Java jars,
  RLlib, Serve, LLM packages and the dashboard's web front end, which hftune never uses
  (29 MiB). Left out: torch and CUDA (the image has them), and unless ``--all`` is given, the
  packages of what the GPU study does not run (plotly for ``hftune report``; optuna and
  its database packages for the Bayesian strategies).
* ``data/rte/``: the RTE training and validation files (``../shared`` does not travel).
* ``tokenizer/``: the packaged MiniLM tokenizer, for the BERT-base-shaped model built there.

Then, on the device machine (one call, ``carry: [".device-kit"]``)::

    bash benchmarks/gpu_seed_study.sh --kit

installs the wheels into ``/tmp/site`` and runs the study (see ``gpu_seed_study.sh``).
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
KIT = REPO / ".device-kit"
LIMIT_BYTES = 62 * 2**20  # a device call carries 64 MiB, the working tree included
ALWAYS = {"transformers", "datasets"}  # the tested versions, not the image's
NEVER = {"torch", "triton", "setuptools"}
ONLY_WITH_ALL = {"plotly", "narwhals", "optuna", "alembic", "sqlalchemy", "mako",
                 "colorlog", "greenlet"}
RAY_DROPPED = ("ray/jars/", "ray/rllib/", "ray/serve/", "ray/llm/", "ray/dashboard/client/")
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64",
             "manylinux2014_x86_64", "manylinux1_x86_64")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def runtime_closure(root: str = "hftune", python: str = "3.12") -> dict[str, str]:
    """Every distribution ``root`` needs at run time (no extras), name -> installed version."""
    from packaging.requirements import Requirement

    seen: dict[str, str] = {}
    todo: list[tuple[str, frozenset[str]]] = [(root, frozenset())]
    done: set[tuple[str, frozenset[str]]] = set()
    while todo:
        name, extras = todo.pop()
        if (canonical(name), extras) in done:
            continue
        done.add((canonical(name), extras))
        try:
            dist = md.distribution(name)
        except md.PackageNotFoundError:
            continue
        seen[canonical(name)] = dist.version
        for text in dist.requires or []:
            req = Requirement(text)
            wanted = req.marker is None or any(
                req.marker.evaluate({"extra": e, "python_version": python})
                for e in ("", *extras))
            if wanted:
                todo.append((req.name, frozenset(req.extras)))
    seen.pop(canonical(root), None)
    return seen


def image_packages() -> set[str]:
    """Names of the packages the device image has (``device_image_packages.txt``)."""
    text = (Path(__file__).with_name("device_image_packages.txt")).read_text()
    return {canonical(n) for line in text.splitlines() if not line.startswith("#")
            for n in line.replace(",", " ").split()}


def to_carry(closure: dict[str, str], image: set[str], everything: bool) -> dict[str, str]:
    """The packages of ``closure`` to carry: missing from the image, or always carried."""
    skip = NEVER | (set() if everything else ONLY_WITH_ALL)
    return {n: v for n, v in closure.items()
            if n not in skip and not n.startswith("nvidia-") and "+" not in v
            and (n not in image or n in ALWAYS)}


def download(packages: dict[str, str], dest: Path, python: str = "3.12") -> None:
    """x86-64 wheels of ``packages`` for CPython ``python`` (exact versions, no dependencies)."""
    platforms = [a for p in PLATFORMS for a in ("--platform", p)]
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                    "--only-binary=:all:", "--python-version", python, "--implementation", "cp",
                    *platforms, "-d", str(dest),
                    *(f"{n}=={v}" for n, v in sorted(packages.items()))], check=True)


def repack(wheel: Path, drop: tuple[str, ...] = ()) -> None:
    """Rewrite ``wheel`` in place, LZMA-compressed (pip reads any compression Python's
    ``zipfile`` does), without the files under the ``drop`` prefixes."""
    with tempfile.NamedTemporaryFile(dir=wheel.parent, suffix=".whl", delete=False) as tmp:
        out = Path(tmp.name)
    with zipfile.ZipFile(wheel) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_LZMA) as dst:
        for info in src.infolist():
            if drop and info.filename.startswith(drop):
                continue
            data = src.read(info)
            if drop and info.filename.endswith(".dist-info/RECORD"):
                data = b"".join(line + b"\n" for line in data.splitlines()
                                if not line.decode().startswith(drop))
            info.compress_type = zipfile.ZIP_LZMA  # the rest of `info` (file modes) is kept
            dst.writestr(info, data)
    out.replace(wheel)


def copy_data(data_dir: Path, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    for item in data_dir.iterdir():
        if item.is_file() and "test" not in item.name:
            shutil.copy2(item, dest / item.name)


def save_tokenizer(dest: Path) -> None:
    from transformers import AutoTokenizer

    from hftune.training.model import resolve_model_ref

    AutoTokenizer.from_pretrained(resolve_model_ref("packaged:minilm")).save_pretrained(dest)


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--all", action="store_true",
                        help="also the packages of hftune report and the Bayesian strategies")
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "rte")
    parser.add_argument("--python", default="3.12",
                        help="the device's Python (another one to try the kit out here)")
    ns = parser.parse_args(argv)
    shutil.rmtree(KIT, ignore_errors=True)
    wheels = KIT / "wheels"
    wheels.mkdir(parents=True)
    packages = to_carry(runtime_closure(python=ns.python), image_packages(), ns.all)
    download(packages, wheels, ns.python)
    for wheel in wheels.glob("*.whl"):
        if wheel.stat().st_size > 2**20:
            repack(wheel, RAY_DROPPED if wheel.name.startswith("ray-") else ())
    copy_data(ns.data, KIT / "data" / "rte")
    save_tokenizer(KIT / "tokenizer")
    tree = sum(int(line.split()[0]) for line in subprocess.run(
        ["bash", "-c", "git ls-files -z | xargs -0 du -cb | tail -1"], cwd=REPO,
        capture_output=True, text=True, check=True).stdout.splitlines())
    size = folder_bytes(KIT)
    print("| package | version | MiB |\n| --- | --- | --- |")
    for wheel in sorted(wheels.iterdir()):
        name, version = wheel.name.split("-")[:2]
        print(f"| {name} | {version} | {wheel.stat().st_size / 2**20:.1f} |")
    print(f"kit {size / 2**20:.1f} MiB + working tree {tree / 2**20:.1f} MiB "
          f"(limit {LIMIT_BYTES / 2**20:.0f} MiB)")
    if size + tree > LIMIT_BYTES:
        print("too large for one device call", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
