"""Captions of the training images: trigger word + view + the character's description.

A caption names what varies (the view) and binds what does not (the look) to the trigger word,
as kohya's dataset captions do: ``"<trigger>, front view, 1girl, short silver hair, ..."``.
"""

from __future__ import annotations

VIEW_WORDS = {"front": "front view", "three_quarter": "three-quarter view", "side": "side view",
              "back": "from behind"}


def trigger_word(name: str, trigger: str | None = None) -> str:
    """The word that calls the character up in prompts (``train.trigger``, else its name)."""
    return trigger or name


def caption(trigger: str, view: str, description: str = "", extra: str = "") -> str:
    """``trigger, <view words>, [extra, ]description`` with empty parts left out."""
    parts = [trigger, VIEW_WORDS.get(view, f"{view} view")]
    parts += [p.strip() for p in (extra, description) if p and p.strip()]
    return ", ".join(parts)


def class_prompt(description: str, class_word: str | None = None) -> str:
    """Prior preservation's prompt: the class the character belongs to, without the character
    (``train.class_word``, else the description's first tag, e.g. ``1girl``)."""
    if class_word:
        return class_word
    first = description.split(",")[0].strip()
    return first or "a person"
