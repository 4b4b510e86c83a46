"""Seed reruns in the report: the mean ± std column and the seed-noise notes."""

from __future__ import annotations

from pathlib import Path

from hftune.report.data import load_studies
from hftune.report.plan import plan_report
from hftune.report.seed_noise import seed_noise_notes
from hftune.report.tables import comparison_table
from hftune.study.records import TrialRecord
from hftune.testing.records import study_folder, trial_record


def _rerun_study(root: Path, name: str, best: float, reruns: dict | None = None) -> Path:
    """A grid study ``name`` of two trials (``best`` - 0.05 and ``best``), these reruns."""
    records = [trial_record(f"{name}_{i}", [value], config={"lr": i})
               for i, value in enumerate((best - 0.05, best))]
    return study_folder(root / name, records, reruns=reruns)


RERUNS = {"seeds": [43, 44, 45], "seed_std": 0.01,
          "configs": [{"rank": 1, "trial_id": "a_1", "config": {"lr": 1}, "study_score": 0.70,
                       "mean": 0.69, "std": 0.01, "n": 3}]}


def test_notes_say_whether_a_gap_is_within_seed_noise(tmp_path: Path) -> None:
    studies = load_studies([_rerun_study(tmp_path, "a", 0.70, RERUNS),
                            _rerun_study(tmp_path, "b", 0.705), _rerun_study(tmp_path, "c", 0.75)])
    notes = seed_noise_notes(studies)
    assert "0.0100" in notes[0] and "a" in notes[0]
    assert any("0.6900 ± 0.0100 (3 seeds)" in n for n in notes)
    by_pair = {n.split(":")[0]: n for n in notes if " vs " in n}
    assert "within seed noise" in by_pair["a vs b"]  # 0.005 < 0.01
    assert "more than the seed std" in by_pair["a vs c"]  # 0.05 > 0.01
    assert "more than the seed std" in by_pair["b vs c"]  # 0.045 > 0.01
    assert set(notes[-3:]) <= set(plan_report(studies).notes)


def test_table_shows_rerun_column_only_with_reruns(tmp_path: Path) -> None:
    plain = load_studies([_rerun_study(tmp_path, "p", 0.6), _rerun_study(tmp_path, "q", 0.62)])
    headers, _ = comparison_table(plain)
    assert not any("rerun" in h for h in headers)
    assert seed_noise_notes(plain) == []
    mixed = load_studies([_rerun_study(tmp_path, "a", 0.70, RERUNS),
                          _rerun_study(tmp_path, "b", 0.705)])
    headers, rows = comparison_table(mixed)
    col = headers.index("Best config rerun (mean ± std)")
    assert [r[col] for r in rows] == ["0.6900 ± 0.0100 (3 seeds)", "-"]
    assert all(len(r) == len(headers) for r in rows)


def test_rerun_seeds_skip_every_seed_the_study_trained_with() -> None:
    """seeds-then-pbt screened seed+1..seed+4 (one of them won): the reruns take later ones."""
    from hftune.study.rerun import fresh_seeds

    screened = [TrialRecord(f"s{i}", {"seed": 10 + i}) for i in (1, 2, 3, 4)]
    pbt = TrialRecord("p", {"seed": 12, "learning_rate": 1e-5},
                      config_history=[{"epoch": 0.0, "config": {"seed": 13}}])
    assert fresh_seeds(10, [*screened, pbt], 3) == [15, 16, 17]
    assert fresh_seeds(10, [TrialRecord("g", {"learning_rate": 1e-5})], 2) == [11, 12]
