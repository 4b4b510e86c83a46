"""``hftune export DIR -o OUT``: the study's best model as a loadable Hugging Face folder."""

from __future__ import annotations

from pathlib import Path

import typer

from hftune.cli.options import VERBOSE, libraries_logged


def export(
    study_dir: Path = typer.Argument(..., help="The study folder."),
    output: Path = typer.Option(..., "--output", "-o", help="The model folder to write."),
    trial: str | None = typer.Option(None, "--trial",
                                     help="Export this trial instead of the best one."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a non-empty folder."),
    merge: bool = typer.Option(False, "--merge",
                               help="A peft study: merge the adapter into a whole model."),
    verbose: bool = VERBOSE,
) -> None:
    """Write the best trial's best checkpoint, its tokenizer and a model card to OUTPUT."""
    from hftune.study.export import export_best

    with libraries_logged(verbose, study_dir):
        result = export_best(study_dir, output, trial_id=trial, overwrite=overwrite,
                             merge=merge)
    value = "-" if result.value is None else f"{result.value:.4f}"
    typer.echo(f"exported trial {result.trial_id} (epoch {result.checkpoint.epoch:g}, "
               f"validation {value}) to {result.out}")
    if not result.scored:
        score = "-" if result.scored_value is None else f"{result.scored_value:.4f}"
        typer.echo(f"warning: the checkpoint of trial {result.trial_id}'s scored evaluation "
                   f"({score}) is no longer kept; its next kept checkpoint was exported",
                   err=True)
