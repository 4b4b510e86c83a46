"""A tiny randomly initialised BERT with a real tokenizer, for tests and benchmarks.

Built offline: the tokenizer is the packaged MiniLM's (uncased WordPiece), the weights are
random (hidden 64, 2 layers by default), saved as safetensors in ``folder``.
"""

from __future__ import annotations

from pathlib import Path


def make_tiny_bert(folder: Path, *, hidden: int = 64, layers: int = 2, heads: int = 2,
                   seed: int = 0, tokenizer_from: str | Path | None = None) -> Path:
    """Write a tiny BERT (config, safetensors weights, tokenizer) to ``folder``; returns it.

    ``tokenizer_from``: a folder with the tokenizer to use (default: the packaged MiniLM's).
    """
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    from hftune.training.model import resolve_model_ref

    folder = Path(folder)
    if (folder / "model.safetensors").is_file():
        return folder
    source = tokenizer_from or resolve_model_ref("packaged:minilm")
    tokenizer = AutoTokenizer.from_pretrained(str(source))
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=hidden,
                        num_hidden_layers=layers, num_attention_heads=heads,
                        intermediate_size=hidden * 4, max_position_embeddings=512)
    torch.manual_seed(seed)
    BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def make_tiny_generative(folder: Path, kind: str = "t5", *, hidden: int = 64, layers: int = 2,
                         heads: int = 2, seed: int = 0) -> Path:
    """Write a tiny random T5 (``kind="t5"``, an encoder-decoder), GPT-2 (``"gpt2"``) or Llama
    (``"llama"``) with the packaged MiniLM tokenizer to ``folder``; returns it. The special
    tokens are the tokenizer's: padding (and T5's decoder start) ``[PAD]``, a sequence's end
    ``[SEP]``, a decoder-only model's beginning ``[CLS]``."""
    import torch
    from transformers import AutoTokenizer

    from hftune.training.model import resolve_model_ref

    folder = Path(folder)
    if (folder / "model.safetensors").is_file():
        return folder
    tokenizer = AutoTokenizer.from_pretrained(resolve_model_ref("packaged:minilm"))
    special = {"pad_token_id": tokenizer.pad_token_id, "eos_token_id": tokenizer.sep_token_id,
               "bos_token_id": tokenizer.cls_token_id}
    torch.manual_seed(seed)
    if kind == "t5":
        from transformers import T5Config, T5ForConditionalGeneration

        config = T5Config(vocab_size=tokenizer.vocab_size, d_model=hidden, d_kv=hidden // heads,
                          d_ff=hidden * 2, num_layers=layers, num_heads=heads,
                          decoder_start_token_id=tokenizer.pad_token_id, **special)
        model = T5ForConditionalGeneration(config)
    elif kind == "gpt2":
        from transformers import GPT2Config, GPT2LMHeadModel

        config = GPT2Config(vocab_size=tokenizer.vocab_size, n_embd=hidden, n_layer=layers,
                            n_head=heads, n_positions=512, **special)
        model = GPT2LMHeadModel(config)
    elif kind == "llama":
        from transformers import LlamaConfig, LlamaForCausalLM

        config = LlamaConfig(vocab_size=tokenizer.vocab_size, hidden_size=hidden,
                             intermediate_size=hidden * 2, num_hidden_layers=layers,
                             num_attention_heads=heads, num_key_value_heads=heads,
                             max_position_embeddings=512, **special)
        model = LlamaForCausalLM(config)
    else:
        raise ValueError(f"unknown kind {kind!r}: t5, gpt2 or llama")
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
