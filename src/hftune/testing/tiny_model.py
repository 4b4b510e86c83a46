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
