"""What the generative task types share: perplexity over target tokens, the text metrics, and
the generation pass an evaluation runs when ``evaluation.generation`` is set.

*Perplexity* is the exponential of the mean loss per target token over the whole split: each
batch's logits are reduced at once (:func:`token_losses`, given to the ``Trainer`` as
``preprocess_logits_for_metrics``) to two numbers per row, its summed negative log-likelihood
and its number of target tokens, so no vocabulary-wide logits are kept; :func:`perplexity` sums
both over the split. (The mean of batch means, transformers' ``eval_loss``, weighs a short
target's tokens more than a long one's.)

*Generation* (:class:`GenerationScorer`) runs after the ``Trainer``'s loss pass, on the
trial's device, over the first ``max_samples`` rows (all by default): prompts are batched in
length order (little padding), padded on the left for a decoder-only model, generated with
``max_new_tokens`` and ``num_beams``, decoded, and scored against the references
(:func:`text_scores`: ROUGE with rouge-score, BLEU with sacrebleu, exact match after whitespace
and case normalisation; all in percent).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from hftune.errors import ConfigError
from hftune.tasks.base import TaskType, TokenizedSplit

GENERATION_METRICS = ("rouge1", "rouge2", "rougeL", "bleu", "exact_match")
LOSS_METRICS = ("loss", "perplexity")
GENERATION_DEFAULTS: dict[str, Any] = {"max_new_tokens": 64, "num_beams": 1,
                                       "max_samples": None, "metrics": None}
# metric -> (module, PyPI package) that computes it
_ROUGE = ("rouge_score", "rouge-score")
METRIC_PACKAGES = {"rouge1": _ROUGE, "rouge2": _ROUGE, "rougeL": _ROUGE,
                   "bleu": ("sacrebleu", "sacrebleu")}
IGNORE = -100  # the label of a token the loss does not cover (transformers' ignore index)


def token_losses(shifted: bool) -> Any:
    """``preprocess_logits_for_metrics(logits, labels)``: per row, ``[summed NLL, target
    tokens]`` (float32). ``shifted``: a decoder-only model, whose logits at position *t* predict
    the label at *t + 1* (as its own loss shifts them)."""

    def reduce(logits: Any, labels: Any) -> Any:
        import torch

        logits = logits[0] if isinstance(logits, tuple) else logits
        if shifted:
            logits, labels = logits[:, :-1, :], labels[:, 1:]
        nll = torch.nn.functional.cross_entropy(
            logits.float().reshape(-1, logits.shape[-1]), labels.reshape(-1),
            ignore_index=IGNORE, reduction="none").reshape(labels.shape)
        tokens = (labels != IGNORE).sum(dim=1)
        return torch.stack([nll.sum(dim=1), tokens.float()], dim=1)

    return reduce


def perplexity(sums: np.ndarray) -> float:
    """exp(total NLL / total target tokens) of :func:`token_losses`' rows (inf without a
    target token, or when the mean loss overflows)."""
    sums = np.asarray(sums, dtype=np.float64).reshape(-1, 2)
    tokens = float(sums[:, 1].sum())
    if tokens <= 0:
        return math.inf
    mean = float(sums[:, 0].sum()) / tokens
    return math.exp(mean) if mean < 700 else math.inf


def normalise_answer(text: str) -> str:
    """Lower case, whitespace runs made one space, outer whitespace removed."""
    return re.sub(r"\s+", " ", text).strip().lower()


def text_scores(predictions: Sequence[str], references: Sequence[str],
                names: Sequence[str]) -> dict[str, float]:
    """The generation metrics ``names`` (of :data:`GENERATION_METRICS`) of ``predictions``
    against ``references``, in percent: ROUGE F-measures averaged over rows (rouge-score,
    Porter stemming, as transformers' ``run_summarization.py``), corpus BLEU (sacrebleu's
    defaults) and the share of exact matches after :func:`normalise_answer`."""
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions for {len(references)} references")
    unknown = [n for n in names if n not in GENERATION_METRICS]
    if unknown:
        raise ValueError(f"unknown generation metric(s) {unknown}")
    out: dict[str, float] = {}
    rouge = [n for n in names if n.startswith("rouge")]
    if rouge:
        from rouge_score import rouge_scorer

        scorer = rouge_scorer.RougeScorer(rouge, use_stemmer=True)
        totals = dict.fromkeys(rouge, 0.0)
        for pred, ref in zip(predictions, references, strict=True):
            for key, score in scorer.score(ref, pred).items():
                totals[key] += score.fmeasure
        for key in rouge:
            out[key] = 100.0 * totals[key] / len(predictions) if predictions else 0.0
    if "bleu" in names:
        import sacrebleu

        out["bleu"] = float(sacrebleu.corpus_bleu(list(predictions), [list(references)]).score)
    if "exact_match" in names:
        hits = sum(normalise_answer(p) == normalise_answer(r)
                   for p, r in zip(predictions, references, strict=True))
        out["exact_match"] = 100.0 * hits / len(predictions) if predictions else 0.0
    return {n: out[n] for n in names}


def check_not_empty(column: Any, field: str, origin: str, what: str) -> None:
    """Raise a :class:`~hftune.errors.DataError` at the first row whose text in ``column`` is
    empty or blank (nothing to learn or score there), naming the row."""
    from hftune.errors import DataError
    from hftune.tasks._rows import row_name

    for i, value in enumerate(column.tolist()):
        if not str(value).strip():
            raise DataError(f"{origin}: {row_name(i, origin)} has an empty text in column "
                            f"'{field}', which is {what}; give it text or remove the row")


def generation_settings(settings: Mapping[str, Any] | None) -> dict[str, Any]:
    """``evaluation.generation`` with its defaults filled in."""
    return {**GENERATION_DEFAULTS, **{k: v for k, v in (settings or {}).items()
                                      if v is not None}}


class GenerationScorer:
    """Generate for the prompts of a split and score the text against its references.

    ``prompts``: token ids per row (a decoder-only model continues them; an encoder-decoder
    reads them); ``references``: the target text per row; ``settings``:
    :func:`generation_settings`; ``end_token_id``: where a generated text ends (the type's end
    of a target). Calling it with ``(model, batch_size)`` returns the metrics.
    """

    def __init__(self, prompts: Sequence[Sequence[int]], references: Sequence[str],
                 tokenizer: Any, settings: Mapping[str, Any], names: Sequence[str],
                 end_token_id: int | None) -> None:
        limit = settings.get("max_samples")
        rows = len(prompts) if limit is None else min(int(limit), len(prompts))
        self.prompts = [list(p) for p in prompts[:rows]]
        self.references = list(references[:rows])
        self.tokenizer = tokenizer
        self.max_new_tokens = int(settings["max_new_tokens"])
        self.num_beams = int(settings["num_beams"])
        self.names = tuple(names)
        self.end_token_id = end_token_id
        self.last_predictions: list[str] = []

    def __call__(self, model: Any, batch_size: int) -> dict[str, float]:
        predictions = self.generate(model, batch_size)
        self.last_predictions = predictions
        return text_scores(predictions, self.references, self.names)

    def generate(self, model: Any, batch_size: int) -> list[str]:
        """The decoded text generated for every prompt, in the prompts' order."""
        import torch

        pad = self.tokenizer.pad_token_id
        decoder_only = not getattr(model.config, "is_encoder_decoder", False)
        device = next(model.parameters()).device
        order = sorted(range(len(self.prompts)), key=lambda i: -len(self.prompts[i]))
        out: list[str] = [""] * len(self.prompts)
        was_training = model.training
        model.eval()
        try:
            for start in range(0, len(order), max(1, batch_size)):
                rows = order[start:start + batch_size]
                width = max(len(self.prompts[i]) for i in rows)
                ids = torch.full((len(rows), width), pad, dtype=torch.long)
                mask = torch.zeros((len(rows), width), dtype=torch.long)
                for k, i in enumerate(rows):
                    prompt = self.prompts[i]
                    span = slice(width - len(prompt), width) if decoder_only else \
                        slice(0, len(prompt))
                    ids[k, span] = torch.tensor(prompt, dtype=torch.long)
                    mask[k, span] = 1
                with torch.no_grad():
                    generated = model.generate(
                        input_ids=ids.to(device), attention_mask=mask.to(device),
                        max_new_tokens=self.max_new_tokens, num_beams=self.num_beams,
                        do_sample=False, pad_token_id=pad, eos_token_id=self.end_token_id)
                new = generated[:, width:] if decoder_only else generated
                texts = self.tokenizer.batch_decode(new, skip_special_tokens=True)
                for i, text in zip(rows, texts, strict=True):
                    out[i] = text.strip()
        finally:
            model.train(was_training)
        return out


def end_token_id(tokenizer: Any) -> int | None:
    """The token that ends a target: the tokenizer's end of sequence, else its separator (a
    BERT-style vocabulary), else none."""
    for name in ("eos_token_id", "sep_token_id"):
        value = getattr(tokenizer, name, None)
        if isinstance(value, int):
            return value
    return None


class GenerativeTaskType(TaskType):
    """What seq2seq and causal-LM share: no classes, ``loss`` and ``perplexity`` at every
    evaluation (both minimised; the loss is the study's default metric), and with
    ``evaluation.generation`` the generated-text metrics first (the first is then the default
    metric). A subclass tokenizes; it keeps, for an evaluation split, ``references``
    ``{"prompts": token ids per row, "targets": target text per row}``."""

    metric_names = LOSS_METRICS
    minimised = LOSS_METRICS
    with_labels = False
    generates = True
    shifted: ClassVar[bool] = False  # decoder-only: logits at t predict the label at t + 1

    @property
    def metrics(self) -> tuple[str, ...]:
        generation = self.settings.generation
        if generation is None:
            return LOSS_METRICS
        return (*self.generation_metrics(), *LOSS_METRICS)

    def generation_metrics(self) -> tuple[str, ...]:
        """The metrics of the generated text (``evaluation.generation.metrics``, else the
        type's :attr:`default_generation_metrics`)."""
        chosen = generation_settings(self.settings.generation)["metrics"]
        return tuple(chosen) if chosen else self.default_generation_metrics

    default_generation_metrics: ClassVar[tuple[str, ...]] = ("rouge1", "rouge2", "rougeL")

    def check_settings(self, max_length: int) -> None:
        """The packages of the generation metrics are installed (a study would otherwise
        fail in its first evaluation)."""
        if self.settings.generation is None:
            return
        import importlib.util

        for metric in self.generation_metrics():
            package = METRIC_PACKAGES.get(metric)
            if package and importlib.util.find_spec(package[0]) is None:
                raise ConfigError(f"evaluation.generation: the metric {metric} needs the "
                                  f"package {package[1]} (pip install 'hftune[generation]')")

    def model_config(self, label_names: tuple[str, ...]) -> dict[str, Any]:
        return {}

    def collator(self, tokenizer: Any) -> Any:
        """Pads inputs, and labels with -100 (transformers' ``DataCollatorForSeq2Seq``)."""
        from transformers import DataCollatorForSeq2Seq

        return DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=IGNORE)

    def preprocess_logits(self) -> Any:
        return token_losses(self.shifted)

    def compute_metrics(self, split: TokenizedSplit, label_names: tuple[str, ...]) -> Any:
        def compute(eval_pred: Any) -> dict[str, float]:
            return {"perplexity": perplexity(eval_pred.predictions)}

        return compute

    def scorer(self, split: TokenizedSplit, tokenizer: Any) -> GenerationScorer | None:
        if self.settings.generation is None or not split.references:
            return None
        return GenerationScorer(split.references["prompts"], split.references["targets"],
                                tokenizer, generation_settings(self.settings.generation),
                                self.generation_metrics(), self.end_token(tokenizer))

    def end_token(self, tokenizer: Any) -> int | None:
        """The token generation stops at."""
        return end_token_id(tokenizer)
