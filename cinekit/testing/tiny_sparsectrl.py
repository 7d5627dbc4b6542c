"""A tiny randomly initialised ``SparseControlNetModel`` matching ``testing.tiny``'s UNet (tests).

RGB-conditioned without the VAE (``use_simplified_condition_embedding=False``: 3 channels at
image resolution, as the scribble model takes them), output convolutions randomised so the
residuals it adds are not zero."""

from __future__ import annotations

from pathlib import Path


def tiny_sparsectrl(unet, simplified: bool = False):
    """A SparseCtrl model shaped like ``unet`` (a tiny ``UNet2DConditionModel``)."""
    import torch
    from diffusers import SparseControlNetModel

    from cinekit.testing.tiny import _randomise_

    torch.manual_seed(1234)
    cfg = unet.config
    # (SparseControlNetModel.from_unet assigns into the config's tuple of block types: built directly)
    model = SparseControlNetModel(
        in_channels=cfg.in_channels, conditioning_channels=4 if simplified else 3,
        block_out_channels=tuple(cfg.block_out_channels), layers_per_block=cfg.layers_per_block,
        down_block_types=("CrossAttnDownBlockMotion",) * len(cfg.block_out_channels),
        norm_num_groups=cfg.norm_num_groups, cross_attention_dim=cfg.cross_attention_dim,
        attention_head_dim=cfg.attention_head_dim, conditioning_embedding_out_channels=(4, 8, 8, 8),
        motion_num_attention_heads=2, motion_max_seq_length=32, concat_conditioning_mask=True,
        use_simplified_condition_embedding=simplified)
    _randomise_(model.controlnet_down_blocks, 0.2, offset=60)
    _randomise_(model.controlnet_mid_block, 0.2, offset=61)
    _randomise_(model.controlnet_cond_embedding, 0.2, offset=62)
    return model


def write_tiny_sparsectrl(unet, folder: Path) -> Path:
    tiny_sparsectrl(unet).save_pretrained(str(folder))
    return Path(folder)
