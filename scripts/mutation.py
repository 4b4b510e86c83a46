"""Mutation testing of the modules where a bug corrupts results without an error (mutmut 3).

    python scripts/mutation.py [--ci] [--jobs N] [MODULE ...]

Each MODULE (a path under ``src/hftune/``, e.g. ``src/hftune/space.py``; default: every
module of :data:`MODULES`) is run on its own: a scratch copy of the tracked tree gets a
``[tool.mutmut]`` that mutates only that module and runs the unit tests that exercise it
(:data:`MODULES`; ``tests/unit`` when none are listed), then ``mutmut run``. Printed per
module: mutants, killed, survived, timed out, not covered (no test runs the mutated code) and
the score (killed / mutants; a timed-out mutant is not counted as killed), then the diff of
every survivor. ``--ci``: the small fixed subset CI runs (:data:`CI_MODULES`) so that the
command cannot rot. The exit status is 0 whatever the score (the score is a record, kept in
``tests/MUTATION.md``); 1 when mutmut itself fails.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# module → the unit test files that exercise it (the per-mutant runs take these only)
MODULES: dict[str, list[str]] = {
    "src/hftune/space.py": ["tests/unit/test_space.py", "tests/unit/test_config.py"],
    # Ray-free tests only: a mutant's forked test run that starts Ray hangs (seen 2026-12-03)
    "src/hftune/study/budget.py": ["tests/unit/test_budget.py",
                                   "tests/unit/test_resume_snapshot.py"],
    "src/hftune/study/holdout.py": ["tests/unit/test_holdout.py",
                                    "tests/unit/test_export_choice.py"],
    "src/hftune/study/records.py": ["tests/unit/test_records.py",
                                    "tests/unit/test_recorder_resume.py",
                                    "tests/unit/test_report_data.py"],
    "src/hftune/study/resume.py": ["tests/unit/test_resume_snapshot.py",
                                   "tests/unit/test_recorder_resume.py"],
    "src/hftune/study/recorder.py": ["tests/unit/test_recorder_ray.py",
                                     "tests/unit/test_recorder_resume.py"],
    "src/hftune/study/checkpoints.py": ["tests/unit/test_export.py",
                                        "tests/unit/test_export_choice.py"],
    "src/hftune/study/export.py": ["tests/unit/test_export.py",
                                   "tests/unit/test_export_choice.py"],
    "src/hftune/strategies/_pbt.py": ["tests/unit/test_pbt.py"],
    "src/hftune/strategies/_schedulers.py": ["tests/unit/test_strategies_early_stop.py",
                                             "tests/unit/test_strategies.py"],
    "src/hftune/strategies/_searchers.py": ["tests/unit/test_strategies.py"],
    "src/hftune/strategies/_seeds_then_pbt.py": ["tests/unit/test_strategies_seeds_then_pbt.py"],
    "src/hftune/strategies/_wrappers.py": ["tests/unit/test_strategies.py",
                                           "tests/unit/test_strategies_contract.py"],
    "src/hftune/strategies/base.py": ["tests/unit/test_strategies.py",
                                      "tests/unit/test_strategies_contract.py"],
    "src/hftune/training/checkpoint.py": ["tests/unit/test_training_checkpoint.py",
                                          "tests/unit/test_training_restore.py",
                                          "tests/unit/test_trial.py"],
    "src/hftune/training/callback.py": ["tests/unit/test_training_callback.py",
                                        "tests/unit/test_trial.py"],
    "src/hftune/training/trainable.py": ["tests/unit/test_trial.py",
                                         "tests/unit/test_training_adapters.py"],
    "src/hftune/config/schema.py": ["tests/unit/test_config.py",
                                    "tests/unit/test_config_unknown_keys.py",
                                    "tests/unit/test_config_policy.py",
                                    "tests/unit/test_config_training_args.py"],
}
CI_MODULES = ["src/hftune/study/holdout.py"]
RESULT = re.compile(r"^\s*(?P<name>[\w.]+__mutmut_\d+): (?P<status>[\w ]+)$")


def tracked_files() -> list[str]:
    out = subprocess.run(["git", "ls-files"], cwd=ROOT, check=True, capture_output=True,
                         text=True).stdout
    return [line for line in out.splitlines() if (ROOT / line).is_file()]


def scratch_copy(dest: Path) -> None:
    """The tracked tree as it is on disk (uncommitted edits included) at ``dest``."""
    for rel in tracked_files():
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, target)


def set_mutmut_config(pyproject: Path, module: str, tests: list[str]) -> None:
    """Replace the ``[tool.mutmut]`` table of ``pyproject`` with one for ``module``."""
    text = pyproject.read_text()
    start = text.index("[tool.mutmut]")
    end = text.find("\n[", start + 1)
    table = "\n".join([
        "[tool.mutmut]",
        'source_paths = ["src/hftune"]',
        f'only_mutate = ["{module}"]',
        'pytest_add_cli_args = ["-m", "not integration", "-p", "no:cacheprovider", "-q"]',
        "pytest_add_cli_args_test_selection = [" + ", ".join(f'"{t}"' for t in tests) + "]",
        'also_copy = ["examples/", "benchmarks/", "scripts/", "README.md"]',
        'process_isolation = "fork"',
        "",
    ])
    pyproject.write_text(text[:start] + table + (text[end:] if end != -1 else ""))


def run_module(module: str, jobs: int, python: str) -> tuple[dict[str, int], list[str]] | None:
    """Run mutmut on one module in a scratch copy: the counts and the survivors' diffs."""
    tests = MODULES.get(module) or ["tests/unit"]
    with tempfile.TemporaryDirectory(prefix="hftune-mutation-") as tmp:
        work = Path(tmp)
        scratch_copy(work)
        set_mutmut_config(work / "pyproject.toml", module, tests)
        env = {**os.environ, "HFTUNE_SHARED_DATA": str(ROOT.parent / "shared" / "data"),
               "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
               "TOKENIZERS_PARALLELISM": "false", "RAY_USAGE_STATS_ENABLED": "0"}
        env.pop("PYTHONPATH", None)  # mutmut puts its mutants/ copy first itself
        mutmut = [python, "-m", "mutmut"]
        run = subprocess.run([*mutmut, "run", "--max-children", str(jobs)], cwd=work, env=env,
                             capture_output=True, text=True)
        if run.returncode != 0:
            print(run.stdout[-4000:], run.stderr[-4000:], sep="\n", file=sys.stderr)
            return None
        results = subprocess.run([*mutmut, "results", "--all", "true"], cwd=work, env=env,
                                 capture_output=True, text=True)
        if results.returncode != 0:  # older mutmut 3: no --all
            results = subprocess.run([*mutmut, "results"], cwd=work, env=env,
                                     capture_output=True, text=True)
        statuses = {m["name"]: m["status"].strip() for line in results.stdout.splitlines()
                    if (m := RESULT.match(line))}
        counts = {"mutants": len(statuses)}
        for status in statuses.values():
            counts[status] = counts.get(status, 0) + 1
        diffs = []
        for name, status in sorted(statuses.items()):
            if status == "survived":
                shown = subprocess.run([*mutmut, "show", name], cwd=work, env=env,
                                       capture_output=True, text=True)
                diffs.append(f"--- {name}\n{shown.stdout.strip()}")
        return counts, diffs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*")
    parser.add_argument("--ci", action="store_true", help="the fixed subset CI runs")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--python", default=sys.executable)
    args = parser.parse_args()
    modules = CI_MODULES if args.ci else (args.modules or list(MODULES))
    failed = False
    for module in modules:
        if not (ROOT / module).is_file():
            print(f"{module}: no such file", file=sys.stderr)
            return 1
        outcome = run_module(module, args.jobs, args.python)
        if outcome is None:
            print(f"{module}: mutmut failed", file=sys.stderr)
            failed = True
            continue
        counts, diffs = outcome
        total = counts["mutants"]
        killed = counts.get("killed", 0)
        score = f"{100.0 * killed / total:.1f}%" if total else "n/a"
        print(f"{module}: {total} mutants, {killed} killed, {counts.get('survived', 0)} "
              f"survived, {counts.get('timeout', 0)} timed out, "
              f"{counts.get('no tests', 0)} not covered; score {score}")
        for diff in diffs:
            print(diff)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
