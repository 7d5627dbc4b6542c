"""MediaPipe's bundled landmark graphs (body pose, face mesh), run offline from its own wheel.

The ``mediapipe==0.10.14`` wheel ships the ``.tflite`` models and ``.binarypb`` graphs of its
legacy solutions (pose landmark "full", face mesh with attention), so a fresh install can
capture poses and faces with no download. We drive those graphs through its
``CalculatorGraph`` binding directly instead of ``mp.solutions.*``: the solutions rewrite the
graph's options through the Python protobuf API, which breaks on protobuf >= 5
(``FieldDescriptor.label`` is gone), while cinekit's environment has protobuf 7 (mediapipe
pins ``protobuf<5``; install it with ``--no-deps``, see docs/capture.md). What remains is
protobuf-agnostic: the graph is parsed in C++, and the only Python protobuf use is parsing
mediapipe's ``NormalizedLandmarkList`` messages, which works with protobuf 4 and 7 alike.

Landmarks come back as ``(K, 5)`` float arrays: x, y in pixels, z in pixels (MediaPipe scales
z like x), visibility and presence (0..1; NaN where the graph gives none); ``None`` for a frame
where nothing was found.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from cinekit.errors import CinekitError, UserError

VERSION = "0.10.14"   # the wheel whose bundled graphs and models this module was written against
INSTALL_HINT = (
    f"install the capture extra: `pip install --no-deps mediapipe=={VERSION}` and "
    "`pip install absl-py flatbuffers matplotlib` (docs/capture.md says why --no-deps)"
)


@dataclass(frozen=True)
class Graph:
    """One bundled graph: its file in the wheel, its output stream, landmark count, side packets."""

    path: str
    output: str
    n_landmarks: int
    many: bool                 # the output is a list of landmark lists (one per face)


POSE = Graph("mediapipe/modules/pose_landmark/pose_landmark_cpu.binarypb", "pose_landmarks", 33, many=False)
FACE = Graph("mediapipe/modules/face_landmark/face_landmark_front_cpu.binarypb", "multi_face_landmarks", 478,
             many=True)


def available() -> bool:
    """Whether mediapipe is installed (without importing it: that costs ~2 s)."""
    return importlib.util.find_spec("mediapipe") is not None


def require(what: str) -> None:
    """``UserError`` naming ``what`` needs mediapipe, with the install recipe, when it is absent."""
    if not available():
        raise UserError(f"{what} needs mediapipe {VERSION}, which is not installed", hint=INSTALL_HINT)


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[list[str]]:
    """Silence MediaPipe's C++ logging (glog/TFLite lines on fd 2) for the block; the captured
    text is handed to the caller so an error can still quote it."""
    log: list[str] = []
    try:
        fd = os.dup(2)
    except OSError:  # no stderr to redirect (a daemon): nothing to hide
        yield log
        return
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield log
        finally:
            os.dup2(fd, 2)
            os.close(fd)
            sink.seek(0)
            log.append(sink.read().decode("utf-8", "replace"))


def _modules():
    os.environ.setdefault("GLOG_minloglevel", "2")
    with _quiet_stderr():
        import mediapipe
        from mediapipe.framework.formats import landmark_pb2
        from mediapipe.python import packet_creator
        from mediapipe.python._framework_bindings import (
            _packet_getter,
            calculator_graph,
            image_frame,
            resource_util,
        )
    if mediapipe.__version__ != VERSION:  # the graphs' side packets and streams are this version's
        raise UserError(f"cinekit's capture needs mediapipe {VERSION}, found {mediapipe.__version__}",
                        hint=INSTALL_HINT)
    root = os.path.dirname(os.path.dirname(mediapipe.__file__))
    resource_util.set_resource_dir(root)   # the graphs name their .tflite files relative to it
    return root, landmark_pb2, packet_creator, _packet_getter, calculator_graph, image_frame


def _array(msg, width: int, height: int) -> np.ndarray:
    out = np.full((len(msg.landmark), 5), np.nan)
    for k, lm in enumerate(msg.landmark):
        out[k, :3] = (lm.x * width, lm.y * height, lm.z * width)
        if lm.HasField("visibility"):
            out[k, 3] = lm.visibility
        if lm.HasField("presence"):
            out[k, 4] = lm.presence
    return out


def run(graph: Graph, frames: Iterable[np.ndarray], tracking: bool = True) -> list[np.ndarray | None]:
    """Landmarks of each RGB frame ``(H, W, 3) uint8`` -> one ``(K, 5)`` array (or ``None``) a frame.

    ``tracking``: frames are consecutive video frames (the graph reuses the last landmarks as
    the next region of interest, as the solutions' video mode); ``False`` detects each frame
    afresh (still images). The graph's own landmark smoothing stays off: callers smooth.
    """
    root, landmark_pb2, packet_creator, getter, calculator_graph, image_frame = _modules()
    if graph is POSE:
        side = {"model_complexity": packet_creator.create_int(1),   # "full": the model the wheel ships
                "smooth_landmarks": packet_creator.create_bool(False),
                "enable_segmentation": packet_creator.create_bool(False),
                "smooth_segmentation": packet_creator.create_bool(False),
                "use_prev_landmarks": packet_creator.create_bool(tracking)}
    else:
        side = {"num_faces": packet_creator.create_int(1),
                "with_attention": packet_creator.create_bool(True),   # refined lips and eyes
                "use_prev_landmarks": packet_creator.create_bool(tracking)}
    got: dict[int, list[bytes]] = {}

    def observe(_name, packet) -> None:
        if not packet.is_empty():   # timestamp-bound updates arrive as empty packets
            data = getter._get_serialized_proto_list(packet) if graph.many else [getter._get_serialized_proto(packet)]
            got[packet.timestamp.value] = data

    sizes: list[tuple[int, int]] = []
    with _quiet_stderr() as log:
        try:
            g = calculator_graph.CalculatorGraph(binary_graph_path=os.path.join(root, graph.path))
            g.observe_output_stream(graph.output, observe, True)
            g.start_run(side)
            for k, rgb in enumerate(frames):
                rgb = np.ascontiguousarray(rgb[..., :3], dtype=np.uint8)
                sizes.append((rgb.shape[1], rgb.shape[0]))
                packet = packet_creator.create_image_frame(image_format=image_frame.ImageFormat.SRGB, data=rgb)
                g.add_packet_to_input_stream("image", packet.at(k + 1))
                g.wait_until_idle()   # one frame at a time, as the solutions do: no frame dropped
            g.close()
        except (RuntimeError, ValueError) as exc:
            failure = exc
        else:
            failure = None
    if failure is not None:
        detail = log[0].strip().splitlines()[-3:] if log and log[0].strip() else []
        raise CinekitError(f"mediapipe failed: {failure}" + ("".join(f"\n    {d}" for d in detail)))
    out: list[np.ndarray | None] = []
    for k, (w, h) in enumerate(sizes):
        data = got.get(k + 1)
        out.append(_array(landmark_pb2.NormalizedLandmarkList.FromString(data[0]), w, h) if data else None)
    return out
