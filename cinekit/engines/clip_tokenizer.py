"""The CLIP BPE tokenizer of SD 1.5 / SDXL, built offline from the merges cinekit ships.

``model_configs/clip_merges.txt.gz`` holds the 48,894 merges that CLIP uses (the first lines of
``bpe_simple_vocab_16e6.txt.gz`` as shipped by the open_clip_torch package, MIT; the file comes
from OpenAI's CLIP, MIT). The vocabulary is derived from the merges exactly as CLIP does it (256
byte symbols, the same with ``</w>``, one token per merge, then the two specials), so the ids
are those of the real ``openai/clip-vit-large-patch14`` tokenizer (``a photo of a cat`` ->
49406 320 1125 539 320 2368 49407): real checkpoints loaded from one file get the tokenizer
their text encoders were trained with, and the tiny test set gets one that reads ordinary prompts.
"""

from __future__ import annotations

import functools
import gzip
import json
from pathlib import Path

MERGES = Path(__file__).resolve().parents[1] / "model_configs" / "clip_merges.txt.gz"
MAX_LENGTH = 77
VOCAB_SIZE = 49408
BOS, EOS = "<|startoftext|>", "<|endoftext|>"


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's reversible byte -> printable character table, in CLIP's order (printables first)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = list(bs)
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


@functools.lru_cache(maxsize=1)
def clip_vocab_and_merges() -> tuple[dict[str, int], list[tuple[str, str]]]:
    """(token -> id, merges) of CLIP's BPE: 49,408 tokens."""
    lines = gzip.open(MERGES, "rt", encoding="utf-8").read().split("\n")
    merges = [tuple(line.split()) for line in lines[1:] if line.strip()]
    symbols = list(_bytes_to_unicode().values())
    tokens = symbols + [s + "</w>" for s in symbols] + ["".join(m) for m in merges] + [BOS, EOS]
    vocab = {t: i for i, t in enumerate(tokens)}
    assert len(vocab) == VOCAB_SIZE, len(vocab)
    return vocab, merges  # type: ignore[return-value]


def clip_tokenizer(pad_token: str = EOS, max_length: int = MAX_LENGTH):
    """A ``transformers.CLIPTokenizer`` with CLIP's vocabulary (SDXL's second one pads with ``!``)."""
    from transformers import CLIPTokenizer

    vocab, merges = clip_vocab_and_merges()
    return CLIPTokenizer(vocab=dict(vocab), merges=list(merges), pad_token=pad_token, model_max_length=max_length)


def write_clip_tokenizer(folder: Path, pad_token: str = EOS, max_length: int = MAX_LENGTH) -> Path:
    """The tokenizer as a folder ``CLIPTokenizer.from_pretrained`` reads (vocab.json + merges.txt)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    vocab, merges = clip_vocab_and_merges()
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(" ".join(m) for m in merges) + "\n")
    config = {"tokenizer_class": "CLIPTokenizer", "model_max_length": max_length, "bos_token": BOS,
              "eos_token": EOS, "unk_token": EOS, "pad_token": pad_token, "do_lower_case": True}
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=1))
    (folder / "special_tokens_map.json").write_text(json.dumps(
        {k: config[k] for k in ("bos_token", "eos_token", "unk_token", "pad_token")}, indent=1))
    return folder
