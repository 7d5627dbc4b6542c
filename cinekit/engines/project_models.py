"""Every model-caused render failure, found before any render (``cinekit check``, ``models check``).

``check_model_set`` looks at one model set alone; this module looks at what the project's
diffusers shots ask of it, with headers, configs and the model's own tokenizer only (no weight,
no torch):

- each model set's own problems, at its line in cinekit.yaml;
- components the shots need: an openpose ControlNet for shots with characters, a motion module
  for clips, a posed clip on SDXL (diffusers has no SDXL AnimateDiff ControlNet pipeline);
- each character's LoRA and embedding files against the base they are used with (an SDXL LoRA on
  an SD 1.5 base: the LoRA's cross-attention width differs from the UNet's);
- prompts longer than the text encoder takes, counted as the engines count them (the model's
  tokenizer; an embedding token counts as its vectors): stills are chunked up to
  ``MAX_CHUNKS[family]`` windows of 75 tokens, clips take one window.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cinekit.errors import Problem

CLIP_CHUNKS = 1     # the clip engine encodes one window (FreeNoise re-encodes prompts without chunking)


def _at(project, loc: tuple, field: str, message: str, hint: str | None = None, severity: str = "error",
         doc=None, path: str | None = None, key: bool = False) -> Problem:
    doc = doc or project.config_doc
    line, col = doc.mark(loc, key=key) if doc is not None else (None, None)
    return Problem(path or "cinekit.yaml", line, col, field, message, hint, severity)


def relocate(problem: Problem, doc) -> Problem:
    """A model-set problem placed at its key's line in cinekit.yaml (``models.<name>.<key>``)."""
    loc = tuple(problem.field.split("."))
    line, col = doc.mark(loc) if doc is not None else (None, None)
    return Problem("cinekit.yaml", line, col, problem.field, problem.message, problem.hint, problem.severity)


def _shots(project):
    """(list path, shot index, shot, engine, model name) of every shot with a known engine and model."""
    cfg = project.config
    for path, shot_list in project.shotlists.items():
        d = shot_list.defaults
        for i, shot in enumerate(shot_list.shots):
            if shot is None:
                continue
            engine = shot.engine or d.engine or getattr(cfg.engines, shot.kind)
            model = shot.model or d.model or (next(iter(cfg.models)) if len(cfg.models) == 1 else None)
            yield path, i, shot, engine, model


def check_project_models(project, *, allow_pickle: bool = False, unused_as_errors: bool = False) -> list[Problem]:
    """Every problem of the model sets the project's diffusers shots use, and of the others (as
    warnings unless ``unused_as_errors``: a set no shot uses fails no render)."""
    from dataclasses import replace

    from cinekit.engines.model_check import check_model_set

    cfg, root = project.config, project.root
    out: list[Problem] = []
    broken: set[str] = set()
    used = {model for *_, engine, model in _shots(project) if engine == "diffusers"}
    for name, ms in cfg.models.items():
        found = [relocate(p, project.config_doc) for p in check_model_set(name, ms, root, allow_pickle=allow_pickle)]
        if name not in used and not unused_as_errors:
            found = [replace(p, severity="warning", message=p.message + " (no diffusers shot uses this model set)")
                     for p in found]
        out += found
        if any(p.severity == "error" for p in found):
            broken.add(name)

    needs: dict[tuple[str, str], list[str]] = {}
    seen_adapters: set[tuple[str, str]] = set()
    tokenizers: dict[str, Any] = {}
    for path, i, shot, engine, model in _shots(project):
        if engine != "diffusers" or model not in cfg.models:
            continue                    # unknown models are reported by the spec checks
        ms = cfg.models[model]
        where = f"{project.rel(path)}:{shot.id}"
        if shot.characters and ms.controlnet.openpose is None:
            needs.setdefault((model, "controlnet"), []).append(where)
        if shot.kind == "clip" and not ms.motion_adapter:
            needs.setdefault((model, "motion_adapter"), []).append(where)
        if shot.kind == "clip" and ms.family == "sdxl" and shot.characters:
            needs.setdefault((model, "family"), []).append(where)
        out += _global_lora_warning(project, path, i, shot)
        for ch in shot.characters:
            if ch.name in project.characters and (ch.name, model) not in seen_adapters:
                seen_adapters.add((ch.name, model))
                out += _adapters(project, ch.name, model, allow_pickle)
        if model not in broken:
            out += _prompt_length(project, path, i, shot, model, tokenizers)

    texts = {"controlnet": ("has no openpose ControlNet; shots with characters need one",
                            "add `controlnet: {openpose: PATH}` (a ControlNet folder or .safetensors file)"),
             "motion_adapter": ("has no motion module; clips need one",
                                "add `motion_adapter: PATH` (e.g. mm_sd_v15_v2.safetensors or a MotionAdapter folder)"),
             "family": ("is SDXL: posed clips need an SD 1.5 model set (diffusers has no SDXL AnimateDiff "
                        "ControlNet pipeline)", "use an SD 1.5 model set with a motion module for these clips")}
    for (model, what), shots in needs.items():
        listed = ", ".join(shots[:3]) + (f" and {len(shots) - 3} more" if len(shots) > 3 else "")
        message, hint = texts[what]
        out.append(_at(project, ("models", model), f"models.{model}", f"{message} ({listed})", hint, key=True))
    return out


# --------------------------------------------------------------------------- LoRA / embeddings
def _global_lora_warning(project, path: Path, i: int, shot) -> list[Problem]:
    """A LoRA changes the UNet's and text encoder's weights: with several characters in a shot it
    acts on all of them (docs/model-files.md says why it is not confined to its character's region)."""
    names = [c.name for c in shot.characters if c.name in project.characters]
    with_lora = [n for n in names if project.characters[n][0].lora]
    if len(names) < 2 or not with_lora:
        return []
    others = [n for n in names if n not in with_lora] or names
    return [_at(project, ("shots", i, "characters"), f"shots[{i}].characters",
                f"the LoRA of {', '.join(with_lora)} acts on the whole frame (also on {', '.join(others)})",
                "LoRAs are not regional (docs/model-files.md); identity per region comes from the IP-Adapter "
                "and reference attention", severity="warning", doc=project.shot_docs.get(path), path=project.rel(path))]


def base_widths(ms, root: Path) -> tuple[int | None, int | None]:
    """(UNet cross-attention width, first text encoder width) of a model set, headers/configs only."""
    import json

    from cinekit.engines.arch_detect import read_shapes
    from cinekit.engines.model_check import resolve_model_path

    base, _ = resolve_model_path(ms.base, root)
    if base is None:
        return None, None
    if base.is_dir():
        try:
            unet = json.loads((base / "unet" / "config.json").read_text())
            te = json.loads((base / "text_encoder" / "config.json").read_text())
        except (OSError, ValueError):
            return None, None
        return unet.get("cross_attention_dim"), te.get("hidden_size")
    if base.suffix != ".safetensors":
        return None, None
    from cinekit.engines.arch_detect import context_dim

    shapes = read_shapes(base)
    tok = next((s for k, s in shapes.items() if k.endswith("token_embedding.weight")
                and k.startswith(("cond_stage_model.transformer.", "conditioner.embedders.0."))), None)
    return context_dim(shapes, "model.diffusion_model."), (int(tok[1]) if tok else None)


def _adapters(project, name: str, model: str, allow_pickle: bool) -> list[Problem]:
    """A character's LoRA and embedding files against the base model they are used with."""
    from cinekit.engines.arch_detect import (
        CONTEXT_FAMILY,
        FAMILY_NAMES,
        embedding_widths,
        is_lora,
        lora_context_dim,
        read_shapes,
    )
    from cinekit.errors import ModelError

    spec, spec_path = project.characters[name]
    doc = project.character_docs.get(name)
    rel = project.rel(spec_path)
    ms = project.config.models[model]
    unet_width, text_width = base_widths(ms, project.root)
    out: list[Problem] = []

    def label(width):
        fam = CONTEXT_FAMILY.get(width)
        return f"{FAMILY_NAMES[fam]} ({width})" if fam else str(width)

    for kind, items in (("lora", spec.lora), ("embeddings", spec.embeddings)):
        for j, item in enumerate(items):
            path = (spec_path.parent / item.file).resolve()
            if not path.is_file() or (path.suffix != ".safetensors"):
                continue                # missing files and pickle refusal: reported by the spec checks
            try:
                shapes = read_shapes(path, allow_pickle=allow_pickle)
            except ModelError as e:
                out.append(_at(project, (kind, j, "file"), f"{kind}[{j}].file", e.message, e.hint, doc=doc, path=rel))
                continue
            if kind == "lora":
                if not is_lora(shapes):
                    out.append(_at(project, (kind, j, "file"), f"{kind}[{j}].file",
                                   f"{path.name} is not a LoRA (no lora_down / lora_A keys)", doc=doc, path=rel))
                    continue
                width = lora_context_dim(shapes)
                if width and unet_width and width != unet_width:
                    out.append(_at(project, (kind, j, "file"), f"{kind}[{j}].file",
                                   f"{path.name} is a LoRA for cross-attention width {label(width)}; model set "
                                   f"{model!r} ({ms.family}) has {label(unet_width)}",
                                   "use a LoRA trained for this base model's family", doc=doc, path=rel))
            else:
                widths = embedding_widths(shapes)
                if ms.family == "sdxl":
                    out.append(_at(project, (kind, j, "file"), f"{kind}[{j}].file",
                                   f"textual-inversion embeddings are supported on SD 1.5 model sets only "
                                   f"(model set {model!r} is SDXL)", doc=doc, path=rel))
                elif widths.get("clip_l") and text_width and widths["clip_l"] != text_width:
                    out.append(_at(project, (kind, j, "file"), f"{kind}[{j}].file",
                                   f"{path.name} holds {widths['clip_l']}-wide vectors; the text encoder of model "
                                   f"set {model!r} is {text_width} wide", "use an embedding made for this family",
                                   doc=doc, path=rel))
    return out


# --------------------------------------------------------------------------- prompt length
def tokenizer_for_modelset(ms, root: Path):
    """The model set's (first) tokenizer without loading a weight, or None when unreadable."""
    from cinekit.engines.arch_detect import detect, read_shapes
    from cinekit.engines.model_check import resolve_model_path
    from cinekit.engines.single_file import tokenizer_for

    base, _ = resolve_model_path(ms.base, root)
    override = resolve_model_path(ms.config, root)[0] if ms.config else None
    try:
        if base.is_dir():
            from transformers import CLIPTokenizer

            return CLIPTokenizer.from_pretrained(base / "tokenizer", local_files_only=True)
        return tokenizer_for(detect(read_shapes(base), base.name), override)
    except Exception:  # noqa: BLE001 - an unreadable tokenizer is reported by the load, not here
        return None


def _prompt_length(project, path: Path, i: int, shot, model: str, cache: dict) -> list[Problem]:
    from cinekit.engines.diffusers_common import embedding_vectors
    from cinekit.engines.diffusers_still import MAX_CHUNKS
    from cinekit.render.plan import substitute_prompt

    ms = project.config.models[model]
    if model not in cache:
        cache[model] = tokenizer_for_modelset(ms, project.root)
    tok = cache[model]
    if tok is None:
        return []
    text = substitute_prompt(shot.prompt, project.characters)
    negative = ", ".join(n for n in [shot.negative] + [project.characters[c.name][0].negative
                                                        for c in shot.characters if c.name in project.characters] if n)
    vectors = 0
    for c in shot.characters:
        if c.name not in project.characters:
            continue
        spec, spec_path = project.characters[c.name]
        for emb in spec.embeddings:
            file = (spec_path.parent / emb.file).resolve()
            if file.is_file():
                vectors += text.count(emb.token) * embedding_vectors(file)
                text = text.replace(emb.token, " ")
    count = max(len(tok(t, add_special_tokens=False).input_ids) for t in (text, negative)) + vectors
    window = tok.model_max_length - 2
    limit = (MAX_CHUNKS.get(ms.family, 1) if shot.kind == "still" else CLIP_CHUNKS) * window
    if count <= limit:
        return []
    doc = project.shot_docs.get(path)
    what = "clips take" if shot.kind == "clip" else f"the {ms.family} text encoder takes"
    return [_at(project, ("shots", i, "prompt"), f"shots[{i}].prompt",
                f"the prompt is {count} tokens (with the characters' descriptions); {what} at most {limit} "
                f"(model set {model!r})", "shorten the prompt or the characters' descriptions",
                doc=doc, path=project.rel(path))]
