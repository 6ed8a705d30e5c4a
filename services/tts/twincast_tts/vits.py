"""Piper's VITS graph cut in three, so that a sentence's audio can be made a window at a time.

A Piper voice is one ONNX graph: text encoder and duration predictor, then a normalizing flow,
then the HiFi-GAN decoder, which takes most of the time and grows with the sentence. Cut at the
flow's and the decoder's inputs, the encoder runs once per sentence and the flow and decoder on
windows of latent frames: both are convolutions over time, so a window with enough frames of
context either side gives the samples the whole sentence would (measured: within 3e-5, one step
of 16-bit PCM).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import onnx
import onnxruntime

# Latent frames of context a window needs on each side: the flow's reach, the decoder's.
FLOW_CONTEXT: Final = 32
DECODER_CONTEXT: Final = 12


@dataclass(frozen=True, slots=True)
class Latent:
    """One sentence after the encoder: the flow's input and mask (1 x C x frames), the frames
    of each phoneme id, and what a multi-speaker voice passes on whole (speaker embedding)."""

    z_p: np.ndarray
    mask: np.ndarray
    widths: np.ndarray | None
    extras: Mapping[str, np.ndarray]

    @property
    def frames(self) -> int:
        return int(self.z_p.shape[2])


@dataclass(frozen=True, slots=True)
class Rendered:
    """Audio of a range of frames (hop length samples each) and what making it cost."""

    audio: np.ndarray
    flow_ms: float
    decoder_ms: float


@dataclass(frozen=True, slots=True)
class _Part:
    model: onnx.ModelProto
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]


class VitsVoice:
    """The three parts of one voice, each its own onnxruntime session; one run at a time, so
    that sessions speaking at once take turns chunk by chunk rather than split the cores."""

    def __init__(self, model: Path, options: onnxruntime.SessionOptions) -> None:
        encoder, flow, decoder = _cut(onnx.load(str(model)))
        self.encoder = _session(encoder.model, options)
        self._flow = _session(flow.model, options)
        self._decoder = _session(decoder.model, options)
        self._encoder_outputs = encoder.outputs
        self._flow_inputs = flow.inputs
        self._decoder_inputs = decoder.inputs
        self._lock = threading.Lock()

    def encode(self, inputs: Mapping[str, np.ndarray]) -> Latent:
        """`inputs` as Piper gives them to the whole graph (input, input_lengths, scales…)."""
        with self._lock:
            outputs = self.encoder.run(None, dict(inputs))
        values = dict(zip(self._encoder_outputs, outputs, strict=True))
        z_p, mask = self._flow_inputs[:2]
        widths = values.pop(_WIDTHS, None)
        return Latent(z_p=values.pop(z_p), mask=values.pop(mask), widths=widths, extras=values)

    def render(self, latent: Latent, ranges: Iterable[tuple[int, int]]) -> Iterator[Rendered]:
        """Audio for each range of frames, in order, each made when asked for."""
        frames = latent.frames
        z = np.empty_like(latent.z_p)
        flowed = 0  # z is exact before this frame
        for start, end in ranges:
            began = time.perf_counter()
            need = min(frames, end + DECODER_CONTEXT)
            if need > flowed:
                lo, hi = max(0, flowed - FLOW_CONTEXT), min(frames, need + FLOW_CONTEXT)
                exact = frames if hi == frames else hi - FLOW_CONTEXT
                z[:, :, flowed:exact] = self._flow_window(latent, lo, hi)[
                    :, :, flowed - lo : exact - lo
                ]
                flowed = exact
            decoding = time.perf_counter()
            lo = max(0, start - DECODER_CONTEXT)
            audio = self._decode(latent, z[:, :, lo:need])
            hop = audio.size // (need - lo)
            yield Rendered(
                audio=audio[(start - lo) * hop : (end - lo) * hop],
                flow_ms=1000 * (decoding - began),
                decoder_ms=1000 * (time.perf_counter() - decoding),
            )

    def _flow_window(self, latent: Latent, start: int, end: int) -> np.ndarray:
        z_p, mask, *extras = self._flow_inputs
        feeds = {
            z_p: np.ascontiguousarray(latent.z_p[:, :, start:end]),
            mask: np.ascontiguousarray(latent.mask[:, :, start:end]),
            **{name: latent.extras[name] for name in extras},
        }
        with self._lock:
            return np.asarray(self._flow.run(None, feeds)[0])

    def _decode(self, latent: Latent, z: np.ndarray) -> np.ndarray:
        z_name, *extras = self._decoder_inputs
        feeds = {z_name: np.ascontiguousarray(z), **{n: latent.extras[n] for n in extras}}
        with self._lock:
            return np.asarray(self._decoder.run(None, feeds)[0]).reshape(-1)


# The encoder's output that holds frames per phoneme id (Piper's alignment patch exposes it).
_WIDTHS: Final = "twincast:widths"


def _session(
    model: onnx.ModelProto, options: onnxruntime.SessionOptions
) -> onnxruntime.InferenceSession:
    return onnxruntime.InferenceSession(
        model.SerializeToString(), sess_options=options, providers=["CPUExecutionProvider"]
    )


def _cut(model: onnx.ModelProto) -> tuple[_Part, _Part, _Part]:
    """Encoder (all before the flow), flow and decoder, found by the module names that Piper's
    export gives the nodes (`/flow/…`, `/dec/…`)."""
    model = onnx.shape_inference.infer_shapes(model)
    graph = model.graph
    nodes = list(graph.node)
    after_flow = _downstream(nodes, (i for i, n in enumerate(nodes) if n.name.startswith("/flow/")))
    after_dec = _downstream(nodes, (i for i, n in enumerate(nodes) if n.name.startswith("/dec/")))
    if not after_flow or not after_dec:
        raise ValueError("not a Piper VITS voice: no /flow/ or /dec/ nodes")
    encoder_nodes = [n for i, n in enumerate(nodes) if i not in after_flow]
    flow_nodes = [n for i, n in enumerate(nodes) if i in after_flow and i not in after_dec]
    decoder_nodes = [n for i, n in enumerate(nodes) if i in after_dec]
    types = {v.name: v for v in (*graph.value_info, *graph.input, *graph.output)}
    # Over time (a length that varies) first: the flow's z_p, then its mask (one channel).
    flow_inputs = tuple(sorted(_reads(graph, flow_nodes), key=lambda n: _layout(types[n])))
    decoder_inputs = tuple(sorted(_reads(graph, decoder_nodes), key=lambda n: _layout(types[n])))
    if [_layout(types[n]) for n in (*flow_inputs[:2], decoder_inputs[0])] != [0, 1, 0]:
        raise ValueError("not a Piper VITS voice: unexpected flow or decoder inputs")
    z = decoder_inputs[0]
    # Piper's alignment patch marks the duration predictor's only Ceil as an output.
    ceils = [n for n in encoder_nodes if n.op_type == "Ceil"]
    widths = (
        [onnx.helper.make_node("Identity", [ceils[0].output[0]], [_WIDTHS])]
        if len(ceils) == 1
        else []
    )
    encoder_outputs = tuple(
        dict.fromkeys([*flow_inputs, *decoder_inputs[1:], *(w.output[0] for w in widths)])
    )
    graph_inputs = tuple(i.name for i in graph.input)
    audio = (graph.output[0].name,)
    return (
        _Part(
            _model(model, [*encoder_nodes, *widths], graph_inputs, encoder_outputs, types),
            graph_inputs,
            encoder_outputs,
        ),
        _Part(_model(model, flow_nodes, flow_inputs, (z,), types), flow_inputs, (z,)),
        _Part(_model(model, decoder_nodes, decoder_inputs, audio, types), decoder_inputs, audio),
    )


def _layout(value: onnx.ValueInfoProto) -> int:
    """0: many channels over time; 1: one channel over time; 2: anything else."""
    dims = value.type.tensor_type.shape.dim
    if len(dims) != 3 or dims[2].HasField("dim_value"):
        return 2
    return 1 if dims[1].dim_value == 1 else 0


def _downstream(nodes: Sequence[onnx.NodeProto], start: Iterable[int]) -> set[int]:
    """The start nodes and every node that reads, directly or not, what they make."""
    readers: dict[str, list[int]] = {}
    for i, node in enumerate(nodes):
        for name in node.input:
            readers.setdefault(name, []).append(i)
    seen: set[int] = set()
    stack = list(start)
    while stack:
        i = stack.pop()
        if i not in seen:
            seen.add(i)
            stack.extend(r for name in nodes[i].output for r in readers.get(name, ()))
    return seen


def _reads(graph: onnx.GraphProto, nodes: Sequence[onnx.NodeProto]) -> tuple[str, ...]:
    """Tensors the nodes read that none of them makes and that are not weights, in order."""
    made = {o for n in nodes for o in n.output}
    weights = {i.name for i in graph.initializer}
    names = (i for n in nodes for i in n.input)
    return tuple(dict.fromkeys(i for i in names if i and i not in made and i not in weights))


def _model(
    model: onnx.ModelProto,
    nodes: Sequence[onnx.NodeProto],
    inputs: Sequence[str],
    outputs: Sequence[str],
    types: Mapping[str, onnx.ValueInfoProto],
) -> onnx.ModelProto:
    used = {name for n in nodes for name in n.input}
    graph = onnx.helper.make_graph(
        list(nodes),
        "piper-part",
        inputs=[types[name] for name in inputs],
        outputs=[types.get(name) or onnx.ValueInfoProto(name=name) for name in outputs],
        initializer=[i for i in model.graph.initializer if i.name in used],
    )
    return onnx.helper.make_model(
        graph, opset_imports=list(model.opset_import), ir_version=model.ir_version
    )
