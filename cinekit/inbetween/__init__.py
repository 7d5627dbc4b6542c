"""In-betweens between drawn key frames (a shot's ``keys:``; docs/inbetween.md).

- ``check``: ``cinekit check`` rules for keys (times, sizes, paths, characters);
- ``fit``: a key drawing's pose, found by fitting the puppet's rig to the drawing;
- ``track``: the planner's side: keys read, poses fitted (or given), the keyed pose track;
- ``blend``: the drawn keys shown at their frames, their difference to the puppet carried
  between keys along optical flow (cross-dissolve, no pop);
- ``sparsectrl``: the diffusers clip engine's SparseCtrl conditioning on the key frames.
"""
