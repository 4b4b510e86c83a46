"""``task.type: causal_lm``: a decoder-only language model, instruction-tuned or trained on text.

One of three row layouts (exactly one is set):

- ``prompt_template`` and ``response_field``: the prompt is the template with the row's fields
  in braces (``"### Instruction:\\n{instruction}\\n\\n### Response:\\n"``), the response the
  field's text. The loss covers the response tokens only (the prompt's labels are -100), as
  trl's completion-only SFT does.
- ``text_field``: plain language modelling; the loss covers the whole text.
- ``messages_field``: chat rows (``[{"role": ..., "content": ...}, ...]``) formatted with the
  tokenizer's chat template (``chat_template``: a Jinja template for a tokenizer without one);
  the last message, the assistant's, is the response and the rest the prompt.

The prompt and the response are tokenized apart (no special tokens) and joined: the tokenizer's
beginning-of-sequence token first where it adds one (Llama), the end of sequence (else the
separator) after the response (not for chat rows: their template ends a turn itself); cut at
``max_length`` tokens. A prompt that leaves no room for a response token is refused, naming the
row. The model is ``AutoModelForCausalLM``. Metrics: ``loss`` and ``perplexity`` over the
response tokens, and with ``evaluation.generation`` the responses generated for the prompts,
scored against the rows' responses (``exact_match`` by default; ROUGE, BLEU).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import pandas as pd

from hftune.errors import ConfigError, DataError
from hftune.tasks._generation import IGNORE, GenerativeTaskType, check_not_empty, end_token_id
from hftune.tasks._rows import check_columns, check_texts, row_name
from hftune.tasks.base import TokenizedSplit

LAYOUTS = ("prompt_template", "text_field", "messages_field")


class CausalLM(GenerativeTaskType):
    name = "causal_lm"
    fields: ClassVar[Mapping[str, Any]] = {
        "prompt_template": None, "response_field": None, "text_field": None,
        "messages_field": None, "chat_template": None}
    model_class = "AutoModelForCausalLM"
    pipeline_tag = "text-generation"
    shifted = True
    default_generation_metrics = ("exact_match",)

    @property
    def layout(self) -> str:
        """``prompt_template``, ``text_field`` or ``messages_field``: the one the task sets."""
        chosen = [k for k in LAYOUTS if self.options.get(k)]
        return chosen[0] if len(chosen) == 1 else ""

    def check_settings(self, max_length: int) -> None:
        """One layout, its fields together, generation only where there is a prompt, and the
        generation metrics' packages installed."""
        chosen = [k for k in LAYOUTS if self.options.get(k)]
        if len(chosen) != 1:
            raise ConfigError(
                "task: a causal_lm task sets exactly one of prompt_template (with "
                "response_field), text_field or messages_field"
                + (f"; it sets {', '.join(chosen)}" if chosen else ""))
        if (self.layout == "prompt_template") != bool(self.options.get("response_field")):
            raise ConfigError("task.response_field: goes with task.prompt_template (the "
                              "response the loss covers, after the prompt); set both")
        if self.options.get("chat_template") and self.layout != "messages_field":
            raise ConfigError("task.chat_template: formats task.messages_field rows; set "
                              "messages_field or remove chat_template")
        if self.settings.generation is not None and self.layout == "text_field":
            raise ConfigError("evaluation.generation: a text_field task has no prompt to "
                              "continue nor a response to compare with; use prompt_template "
                              "and response_field, or messages_field")
        super().check_settings(max_length)

    # -- rows -----------------------------------------------------------------------------
    def normalise(self, frames: Mapping[str, pd.DataFrame], train_split: str,
                  origins: Mapping[str, str]) -> tuple[dict[str, pd.DataFrame], tuple[str, ...]]:
        """Columns ``prompt`` and ``response`` (text; ``prompt`` empty for a text_field task);
        a row the layout cannot read is refused, naming the row and what is missing."""
        self.check_settings(0)
        out = {}
        for split, frame in frames.items():
            origin = origins.get(split, split)
            if self.layout == "prompt_template":
                prompts, responses = self._templated(frame, origin, split)
            elif self.layout == "text_field":
                field = str(self.options["text_field"])
                check_columns(frame, [field], origin, split)
                check_texts(frame[field], field, origin)
                check_not_empty(frame[field], field, origin, "the text to learn")
                prompts, responses = [""] * len(frame), frame[field].tolist()
            else:
                field = str(self.options["messages_field"])
                check_columns(frame, [field], origin, split)
                prompts, responses = [], []
                for i, messages in enumerate(frame[field].tolist()):
                    prompts.append(_messages(messages, f"{origin}: {row_name(i, origin)}"))
                    responses.append("")
            out[split] = pd.DataFrame({"prompt": prompts, "response": responses})
        return out, ()

    def _templated(self, frame: pd.DataFrame, origin: str,
                   split: str) -> tuple[list[str], list[str]]:
        template, response = str(self.options["prompt_template"]), str(
            self.options["response_field"])
        check_columns(frame, [response], origin, split, "set task.response_field")
        check_texts(frame[response], response, origin)
        check_not_empty(frame[response], response, origin, "the response")
        prompts = []
        for i, row in enumerate(frame.to_dict("records")):
            try:
                prompts.append(template.format_map(row))
            except KeyError as exc:
                raise DataError(f"{origin}: {row_name(i, origin)} has no field {exc} that "
                                f"task.prompt_template names; columns: "
                                f"{', '.join(map(str, frame.columns))}") from None
            except (ValueError, IndexError) as exc:
                raise ConfigError(f"task.prompt_template: {exc} (fields go in braces, a "
                                  f"literal brace is doubled: {{{{)") from None
        return prompts, frame[response].tolist()

    # -- tokens ---------------------------------------------------------------------------
    def tokenize(self, frame: pd.DataFrame, tokenizer: Any, max_length: int,
                 label_names: tuple[str, ...], *, training: bool) -> TokenizedSplit:
        import datasets

        prompts, responses = frame["prompt"].tolist(), frame["response"].tolist()
        if self.layout == "messages_field":
            prompts, responses = self._chat(prompts, tokenizer)
        begin = _begin(tokenizer) if self.layout != "messages_field" else []
        end = [] if self.layout == "messages_field" else _end(tokenizer)
        prompt_ids = _ids(tokenizer, prompts)
        response_ids = _ids(tokenizer, responses)
        columns: dict[str, list[Any]] = {"input_ids": [], "attention_mask": [], "labels": []}
        kept_prompts = []
        for i, (p, r) in enumerate(zip(prompt_ids, response_ids, strict=True)):
            prompt = begin + p
            if len(prompt) >= max_length and self.layout != "text_field":
                raise DataError(f"row {i + 1}: its prompt is {len(prompt)} tokens, which leaves "
                                f"no room for the response in max_length {max_length}; raise "
                                f"max_length or shorten the prompt")
            ids = (prompt + r + end)[:max_length]
            if self.layout == "text_field":
                labels = list(ids)
            else:
                labels = ([IGNORE] * len(prompt) + r + end)[:max_length]
            columns["input_ids"].append(ids)
            columns["attention_mask"].append([1] * len(ids))
            columns["labels"].append(labels)
            kept_prompts.append(prompt)
        columns["length"] = [len(ids) for ids in columns["input_ids"]]
        references = None if training else {"prompts": kept_prompts, "targets": responses}
        return TokenizedSplit(datasets.Dataset.from_dict(columns), len(frame), references)

    def _chat(self, conversations: list[Any], tokenizer: Any) -> tuple[list[str], list[str]]:
        """Each conversation's prompt (its messages but the last, and the template's
        assistant prompt) and response (the rest of the formatted text)."""
        template = self.options.get("chat_template") or getattr(tokenizer, "chat_template",
                                                                None)
        if not template:
            raise ConfigError("task.messages_field: the tokenizer has no chat template; set "
                              "task.chat_template (a Jinja template) or use prompt_template")
        prompts, responses = [], []
        for i, messages in enumerate(conversations):
            prompt = tokenizer.apply_chat_template(messages[:-1], tokenize=False,
                                                   add_generation_prompt=True,
                                                   chat_template=template)
            full = tokenizer.apply_chat_template(messages, tokenize=False,
                                                 chat_template=template)
            if not full.startswith(prompt):
                raise DataError(f"row {i + 1}: the chat template does not format the last "
                                f"message as a continuation of the others; hftune takes the "
                                f"last (assistant) message as the response")
            prompts.append(prompt)
            responses.append(full[len(prompt):])
        return prompts, responses

    def end_token(self, tokenizer: Any) -> int | None:
        return end_token_id(tokenizer)

    def describe(self, label_names: tuple[str, ...]) -> str:
        what = "a response per prompt" if self.layout != "text_field" else "text"
        return f"causal language model ({what})"


def _messages(value: Any, where: str) -> Any:
    """A chat row: a list of ``{"role", "content"}`` ending with the assistant's message."""
    messages = value.tolist() if hasattr(value, "tolist") else value
    if isinstance(messages, list) and len(messages) >= 2 and all(
            isinstance(m, Mapping) and isinstance(m.get("role"), str)
            and isinstance(m.get("content"), str) for m in messages) \
            and messages[-1]["role"] == "assistant":
        return [dict(m) for m in messages]
    raise DataError(f"{where} is not a chat: give a list of {{\"role\": ..., \"content\": ...}} "
                    f"messages ending with the assistant's (the response)")


def _ids(tokenizer: Any, texts: list[str]) -> list[list[int]]:
    if not texts:
        return []
    return tokenizer(texts, add_special_tokens=False)["input_ids"]


def _begin(tokenizer: Any) -> list[int]:
    bos = getattr(tokenizer, "bos_token_id", None)
    return [bos] if isinstance(bos, int) and getattr(tokenizer, "add_bos_token", False) else []


def _end(tokenizer: Any) -> list[int]:
    end = end_token_id(tokenizer)
    return [end] if end is not None else []
