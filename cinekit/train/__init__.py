"""`cinekit train`: teach a model the character (a LoRA, or a textual-inversion embedding).

Modules: ``captions`` (prompt per training image), ``augment`` (identity-preserving image
variants, pure numpy), ``dataset`` (references + puppet renders -> a fixed, seeded pool),
``plan`` (what a run will do; ``--dry-run``), ``cost`` (FLOPs and activation memory from the
model's graph on the meta device), ``lora_train`` / ``ti_train`` (the loops), ``checkpoint``
(resumable state incl. RNG), ``kohya`` (kohya/A1111 file layouts, atomic writes),
``yaml_edit`` (add the result to the character's YAML, keeping its comments).
"""
