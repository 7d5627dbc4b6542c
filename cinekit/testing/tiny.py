"""Write a complete tiny, randomly initialised, offline model set (seconds on a CPU).

The files have the real formats and layouts (diffusers folders, safetensors, IP-Adapter keys,
peft LoRA keys, an A1111 textual-inversion embedding, CLIP's real BPE tokenizer, so ordinary
prompts tokenise as on a real model), so everything goes through the real loading code. The pictures are noise; the mechanisms are testable:
every layer that diffusers initialises to zero (ControlNet zero convs, LoRA ``B``) is given
small random weights here so that each control visibly changes the output.

Layout under ``DIR``::

    sd15/                 StableDiffusionPipeline folder (unet, vae, text_encoder, tokenizer, scheduler)
    controlnet-openpose/  ControlNetModel folder
    ip-adapter/models/ip-adapter_sd15.safetensors + ip-adapter/models/image_encoder/
    lora/tiny_lora.safetensors        diffusers/peft LoRA for the UNet and text encoder
    embeddings/tiny_embedding.safetensors  textual inversion (2 vectors)
    motion-adapter/       MotionAdapter folder (AnimateDiff)
    sdxl/                 StableDiffusionXLPipeline folder (when ``sdxl=True``)
    single/               the same models as community single files (``single_file=True``,
                          see ``cinekit.testing.tiny_single``)
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SEED = 1234
CROSS_DIM = 32
BLOCKS = (8, 8)
LAYERS = 1
LORA_RANK = 4
EMBEDDING_TOKEN = "<tiny-hero>"


@dataclass(frozen=True)
class TinyModels:
    root: Path
    base: Path
    controlnet: Path
    ip_adapter: Path          # folder holding models/ip-adapter_sd15.safetensors
    image_encoder: Path
    lora: Path
    embedding: Path
    embedding_token: str
    motion_adapter: Path
    sdxl: Path | None
    single: Any = None        # TinySingleFiles (``single_file=True``)


# --------------------------------------------------------------------------- tokenizer
def _byte_table() -> dict[int, str]:
    """GPT-2's reversible byte -> printable unicode character table (256 entries)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    table: dict[int, str] = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def write_tokenizer(folder: Path, max_length: int = 77) -> Path:
    """A valid byte-level ``CLIPTokenizer`` (no merges: one token per character)."""
    folder.mkdir(parents=True, exist_ok=True)
    chars = [_byte_table()[b] for b in range(256)]
    vocab: dict[str, int] = {}
    for c in chars:
        vocab[c] = len(vocab)
    for c in chars:
        vocab[c + "</w>"] = len(vocab)
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    config = {
        "tokenizer_class": "CLIPTokenizer",
        "model_max_length": max_length,
        "bos_token": "<|startoftext|>",
        "eos_token": "<|endoftext|>",
        "unk_token": "<|endoftext|>",
        "pad_token": "<|endoftext|>",
        "do_lower_case": True,
    }
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=1))
    (folder / "special_tokens_map.json").write_text(json.dumps(
        {k: config[k] for k in ("bos_token", "eos_token", "unk_token", "pad_token")}, indent=1))
    return folder


VOCAB = 514  # byte-level tokenizer: 256 bytes + 256 end-of-word bytes + 2 specials


def make_tokenizer(folder: Path, kind: str = "clip"):
    """(tokenizer, vocabulary size): CLIP's BPE (``clip``, the default) or the byte-level one (``bytes``)."""
    from transformers import CLIPTokenizer

    if kind == "clip":
        from cinekit.engines.clip_tokenizer import VOCAB_SIZE, clip_tokenizer

        return clip_tokenizer(), VOCAB_SIZE
    if kind != "bytes":
        raise ValueError(f"tokenizer {kind!r}: clip or bytes")
    return CLIPTokenizer.from_pretrained(write_tokenizer(folder), local_files_only=True), VOCAB


# --------------------------------------------------------------------------- components
def _seed(offset: int = 0):
    import torch

    torch.manual_seed(SEED + offset)


def _randomise_(module, scale: float = 0.05, offset: int = 0) -> None:
    """Give zero-initialised parameters small random values (deterministic)."""
    import torch

    g = torch.Generator().manual_seed(SEED + offset)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * scale)


def tiny_unet(cross_attention_dim: int = CROSS_DIM, sdxl: bool = False):
    from diffusers import UNet2DConditionModel

    _seed(1)
    kwargs: dict[str, Any] = {}
    if sdxl:
        kwargs = dict(addition_embed_type="text_time", addition_time_embed_dim=8,
                      projection_class_embeddings_input_dim=32 + 6 * 8)
    return UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, layers_per_block=LAYERS,
        block_out_channels=BLOCKS, norm_num_groups=2,
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=cross_attention_dim, attention_head_dim=2, **kwargs,
    )


def tiny_vae():
    from diffusers import AutoencoderKL

    _seed(2)
    return AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, sample_size=64,
        block_out_channels=(4, 4, 8, 8), layers_per_block=1, norm_num_groups=2,
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
    )


def tiny_text_encoder(with_projection: bool = False, vocab: int = VOCAB, hidden: int = CROSS_DIM):
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    _seed(3 if not with_projection else 4)
    config = CLIPTextConfig(
        vocab_size=vocab, hidden_size=hidden, intermediate_size=37, num_hidden_layers=2,
        num_attention_heads=4, max_position_embeddings=77, projection_dim=32,
        bos_token_id=vocab - 2, eos_token_id=vocab - 1, pad_token_id=vocab - 1,
    )
    return (CLIPTextModelWithProjection if with_projection else CLIPTextModel)(config)


def tiny_scheduler():
    from diffusers import DDIMScheduler

    return DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                         num_train_timesteps=1000, clip_sample=False, set_alpha_to_one=False,
                         steps_offset=1)


def tiny_controlnet(unet):
    from diffusers import ControlNetModel

    _seed(5)
    cn = ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=(4, 8, 8, 8),
                                   load_weights_from_unet=False)
    # ControlNet's output convs start at zero (no effect); make them matter.
    _randomise_(cn.controlnet_down_blocks, 0.2, offset=50)
    _randomise_(cn.controlnet_mid_block, 0.2, offset=51)
    _randomise_(cn.controlnet_cond_embedding.conv_out, 0.2, offset=52)
    return cn


def tiny_image_encoder():
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    _seed(6)
    config = CLIPVisionConfig(hidden_size=32, intermediate_size=37, num_hidden_layers=2,
                              num_attention_heads=4, image_size=32, patch_size=8, projection_dim=32)
    return CLIPVisionModelWithProjection(config)


def ip_adapter_state_dict(unet, image_embed_dim: int = 32, tokens: int = 4) -> dict:
    """IP-Adapter weights in the original file layout: ``image_proj.*`` + ``ip_adapter.{1,3,..}.*``."""
    import torch

    g = torch.Generator().manual_seed(SEED + 7)
    cross = unet.config.cross_attention_dim
    sd = {
        "image_proj.proj.weight": torch.randn(cross * tokens, image_embed_dim, generator=g) * 0.2,
        "image_proj.proj.bias": torch.zeros(cross * tokens),
        "image_proj.norm.weight": torch.ones(cross),
        "image_proj.norm.bias": torch.zeros(cross),
    }
    key_id = 1
    for name in unet.attn_processors:
        if name.endswith("attn1.processor"):
            continue
        hidden = _hidden_size(unet, name)
        sd[f"ip_adapter.{key_id}.to_k_ip.weight"] = torch.randn(hidden, cross, generator=g) * 0.3
        sd[f"ip_adapter.{key_id}.to_v_ip.weight"] = torch.randn(hidden, cross, generator=g) * 0.3
        key_id += 2
    return sd


def _hidden_size(unet, name: str) -> int:
    blocks = unet.config.block_out_channels
    if name.startswith("mid_block"):
        return blocks[-1]
    if name.startswith("up_blocks"):
        return list(reversed(blocks))[int(name[len("up_blocks.")])]
    return blocks[int(name[len("down_blocks.")])]


def lora_state_dict(unet, text_encoder, rank: int = LORA_RANK) -> dict:
    """A diffusers/peft-format LoRA (``unet.<module>.lora_A.weight`` ...) with non-zero B."""
    import torch

    g = torch.Generator().manual_seed(SEED + 8)
    sd = {}
    targets = (("unet", unet, ("to_q", "to_k", "to_v", "to_out.0")),
               ("text_encoder", text_encoder, ("q_proj", "k_proj", "v_proj", "out_proj")))
    for prefix, model, names in targets:
        for name, module in model.named_modules():
            if not isinstance(module, torch.nn.Linear) or not any(name.endswith(n) for n in names):
                continue
            if "processor" in name:
                continue
            sd[f"{prefix}.{name}.lora_A.weight"] = torch.randn(rank, module.in_features, generator=g) * 0.3
            sd[f"{prefix}.{name}.lora_B.weight"] = torch.randn(module.out_features, rank, generator=g) * 0.3
    return sd


def tiny_motion_adapter():
    from diffusers import MotionAdapter

    _seed(9)
    return MotionAdapter(block_out_channels=BLOCKS, motion_layers_per_block=LAYERS,
                         motion_norm_num_groups=2, motion_num_attention_heads=2,
                         motion_max_seq_length=32)


# --------------------------------------------------------------------------- writer
def write_tiny_models(folder: str | os.PathLike, *, sdxl: bool = True, tokenizer: str = "clip",
                      single_file: bool = False) -> TinyModels:
    """Write the whole tiny set under ``folder`` (deterministic: same bytes every time).

    ``tokenizer``: ``clip`` (CLIP's BPE, 49,408 tokens) or ``bytes`` (one token per character);
    ``single_file``: also write the community single-file layouts under ``single/``."""
    import shutil

    import torch
    from diffusers import StableDiffusionPipeline
    from safetensors.torch import save_file
    from transformers import CLIPImageProcessor

    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)

    tok_dir = root / "_tokenizer"
    tokenizer_obj, vocab = make_tokenizer(tok_dir, tokenizer)
    tokenizer = tokenizer_obj
    unet, vae, text_encoder = tiny_unet(), tiny_vae(), tiny_text_encoder(vocab=vocab)
    pipe = StableDiffusionPipeline(
        vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
        scheduler=tiny_scheduler(), safety_checker=None, feature_extractor=None,
        image_encoder=None, requires_safety_checker=False,
    )
    base = root / "sd15"
    pipe.save_pretrained(base, safe_serialization=True)

    cn_dir = root / "controlnet-openpose"
    tiny_controlnet(unet).save_pretrained(cn_dir, safe_serialization=True)

    ip_models = root / "ip-adapter" / "models"
    ip_models.mkdir(parents=True, exist_ok=True)
    save_file(ip_adapter_state_dict(unet), ip_models / "ip-adapter_sd15.safetensors")
    enc_dir = ip_models / "image_encoder"
    tiny_image_encoder().save_pretrained(enc_dir, safe_serialization=True)
    CLIPImageProcessor(size=32, crop_size=32).save_pretrained(enc_dir)

    lora_dir = root / "lora"
    lora_dir.mkdir(exist_ok=True)
    save_file(lora_state_dict(unet, text_encoder), lora_dir / "tiny_lora.safetensors")

    emb_dir = root / "embeddings"
    emb_dir.mkdir(exist_ok=True)
    g = torch.Generator().manual_seed(SEED + 10)
    save_file({"emb_params": torch.randn(2, CROSS_DIM, generator=g) * 0.5},
              emb_dir / "tiny_embedding.safetensors")

    motion_dir = root / "motion-adapter"
    tiny_motion_adapter().save_pretrained(motion_dir, safe_serialization=True)

    sdxl_dir = None
    if sdxl:
        sdxl_dir = root / "sdxl"
        _write_tiny_sdxl(sdxl_dir, tokenizer, vocab)

    shutil.rmtree(tok_dir, ignore_errors=True)
    models = TinyModels(root=root, base=base, controlnet=cn_dir,
                        ip_adapter=root / "ip-adapter", image_encoder=enc_dir,
                        lora=lora_dir / "tiny_lora.safetensors",
                        embedding=emb_dir / "tiny_embedding.safetensors",
                        embedding_token=EMBEDDING_TOKEN, motion_adapter=motion_dir, sdxl=sdxl_dir)
    if single_file:
        from dataclasses import replace

        from cinekit.testing.tiny_single import write_single_files

        models = replace(models, single=write_single_files(root / "single", pipe, sdxl=True, vocab=vocab))
    return models


def _write_tiny_sdxl(folder: Path, tokenizer, vocab: int = VOCAB) -> None:
    from diffusers import StableDiffusionXLPipeline

    unet = tiny_unet(cross_attention_dim=2 * CROSS_DIM, sdxl=True)
    pipe = StableDiffusionXLPipeline(
        vae=tiny_vae(), text_encoder=tiny_text_encoder(vocab=vocab), text_encoder_2=tiny_text_encoder(True, vocab=vocab),
        tokenizer=tokenizer, tokenizer_2=tokenizer, unet=unet, scheduler=tiny_scheduler(),
        force_zeros_for_empty_prompt=True,
    )
    pipe.save_pretrained(folder, safe_serialization=True)


def modelset_dict(models: TinyModels, root: str | os.PathLike | None = None, *,
                  ip_adapter: bool = True, motion: bool = True) -> dict[str, Any]:
    """A ``ModelSet``-shaped dict for cinekit.yaml (paths relative to ``root`` when given)."""

    def rel(p: Path) -> str:
        if root is None:
            return str(p)
        return os.path.relpath(p, root)

    out: dict[str, Any] = {
        "family": "sd15",
        "base": rel(models.base),
        "controlnet": {"openpose": rel(models.controlnet)},
    }
    if ip_adapter:
        out["ip_adapter"] = {"path": rel(models.ip_adapter), "subfolder": "models",
                             "weight": "ip-adapter_sd15.safetensors"}
    if motion:
        out["motion_adapter"] = rel(models.motion_adapter)
    return out
