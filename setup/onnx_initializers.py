"""Reads the weight tensors (initializers) and the node list of an ONNX model without the
`onnx` package: a minimal reader of the protobuf wire format for the few fields used.

ONNX field numbers (onnx/onnx.proto, Apache-2.0): ModelProto.graph = 7; GraphProto.node = 1,
.initializer = 5; NodeProto.input = 1, .output = 2, .name = 3, .op_type = 4;
TensorProto.dims = 1, .data_type = 2, .float_data = 4, .name = 8, .raw_data = 9,
.data_location = 14 (1 = external, refused).
Used by fetch_assets.py (set-up conversions); imports nothing outside the standard library
and numpy.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field

FLOAT = 1  # TensorProto.DataType.FLOAT


class OnnxError(Exception):
    pass


@dataclass
class Initializer:
    name: str
    dims: list[int]
    data_type: int
    raw: bytes = b""
    floats: list[float] = field(default_factory=list)

    def array(self):
        """The tensor as a float32 numpy array of shape `dims`."""
        import numpy as np

        if self.data_type != FLOAT:
            raise OnnxError(f"initializer {self.name!r}: data type {self.data_type}, expected float")
        count = 1
        for d in self.dims:
            count *= d
        if self.raw:
            arr = np.frombuffer(self.raw, dtype="<f4")
        else:
            arr = np.asarray(self.floats, dtype=np.float32)
        if arr.size != count:
            raise OnnxError(f"initializer {self.name!r}: {arr.size} values for dims {self.dims}")
        return arr.astype(np.float32).reshape(self.dims)


@dataclass
class Node:
    op_type: str
    name: str
    inputs: list[str]
    outputs: list[str]


def _varint(b: bytes, i: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if i >= len(b):
            raise OnnxError("truncated varint")
        c = b[i]
        i += 1
        result |= (c & 0x7F) << shift
        shift += 7
        if c < 0x80:
            return result, i
        if shift > 70:
            raise OnnxError("varint too long")


def _fields(b: bytes, start: int, end: int):
    """Yields (field number, wire type, value); length-delimited values as (start, end)."""
    i = start
    while i < end:
        key, i = _varint(b, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(b, i)
        elif wire == 1:
            value, i = b[i:i + 8], i + 8
        elif wire == 2:
            n, i = _varint(b, i)
            value, i = (i, i + n), i + n
        elif wire == 5:
            value, i = b[i:i + 4], i + 4
        else:
            raise OnnxError(f"unsupported protobuf wire type {wire}")
        if i > end:
            raise OnnxError("a protobuf field runs past its message")
        yield number, wire, value


def _packed_varints(b: bytes, span: tuple[int, int]) -> list[int]:
    out, i = [], span[0]
    while i < span[1]:
        v, i = _varint(b, i)
        out.append(v)
    return out


def _text(b: bytes, span: tuple[int, int]) -> str:
    return b[span[0]:span[1]].decode("utf-8")


def _initializer(b: bytes, span: tuple[int, int]) -> Initializer:
    t = Initializer(name="", dims=[], data_type=0)
    for number, wire, value in _fields(b, *span):
        if number == 1:
            t.dims.extend([value] if wire == 0 else _packed_varints(b, value))
        elif number == 2:
            t.data_type = value
        elif number == 4:
            if wire == 2:
                t.floats.extend(struct.unpack(f"<{(value[1] - value[0]) // 4}f", b[value[0]:value[1]]))
            else:
                t.floats.append(struct.unpack("<f", value)[0])
        elif number == 8:
            t.name = _text(b, value)
        elif number == 9:
            t.raw = b[value[0]:value[1]]
        elif number == 14 and value == 1:
            raise OnnxError("external tensor data is not supported")
    return t


def _node(b: bytes, span: tuple[int, int]) -> Node:
    n = Node(op_type="", name="", inputs=[], outputs=[])
    for number, _, value in _fields(b, *span):
        if number == 1:
            n.inputs.append(_text(b, value))
        elif number == 2:
            n.outputs.append(_text(b, value))
        elif number == 3:
            n.name = _text(b, value)
        elif number == 4:
            n.op_type = _text(b, value)
    return n


def read_graph(data: bytes) -> tuple[dict[str, Initializer], list[Node]]:
    """The initializers by name (unnamed ones under `#<index>`) and the nodes in order."""
    graphs = [value for number, wire, value in _fields(data, 0, len(data)) if number == 7 and wire == 2]
    if len(graphs) != 1:
        raise OnnxError(f"expected one graph, found {len(graphs)}: not an ONNX model?")
    inits: dict[str, Initializer] = {}
    nodes: list[Node] = []
    for number, wire, value in _fields(data, *graphs[0]):
        if number == 5 and wire == 2:
            t = _initializer(data, value)
            key = t.name or f"#{len(inits)}"
            if key in inits:
                raise OnnxError(f"two initializers named {key!r}")
            inits[key] = t
        elif number == 1 and wire == 2:
            nodes.append(_node(data, value))
    return inits, nodes
