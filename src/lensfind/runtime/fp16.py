"""fp16 copies of float32 ONNX graphs (float32 interface), torch-free.

Used by the exporters (``engine export --precision fp16``) and by the TensorRT
scorer when it builds an fp16 engine from an fp32 model directory.
"""

from typing import TYPE_CHECKING, Any

import numpy as np

from lensfind.errors import MissingExtraError, ModelError
from lensfind.runtime.card import ModelCard

if TYPE_CHECKING:
    import onnx

#: Operators whose fp16 form is the fp32 one with fp16 tensors.
FP16_OPS = frozenset({
    "Add", "AveragePool", "BatchNormalization", "Cast", "Clip", "Concat", "Constant", "Conv",
    "Div", "Dropout", "Elu", "Flatten", "Gather", "Gemm", "GlobalAveragePool",
    "GlobalMaxPool", "Identity", "LeakyRelu", "MatMul", "MaxPool", "Mul", "Pad", "ReduceMean",
    "Relu", "Reshape", "Shape", "Sigmoid", "Slice", "Softmax", "Squeeze", "Sub", "Tanh",
    "Transpose", "Unsqueeze",
})  # fmt: skip
_F16_MAX = float(np.finfo(np.float16).max)


def require_onnx() -> Any:
    """The ``onnx`` module, or a :class:`MissingExtraError` naming the extra."""
    try:
        import onnx
    except ImportError:
        raise MissingExtraError("train", "onnx") from None
    return onnx


def _to_fp16(array: np.ndarray) -> np.ndarray:
    return np.clip(array, -_F16_MAX, _F16_MAX).astype(np.float16)


def convert_fp16(model: "onnx.ModelProto") -> "onnx.ModelProto":
    """An fp16 copy of a float32 graph whose input and output stay float32.

    Float initializers and constants become float16; a ``Cast`` after each graph
    input and before each graph output keeps the interface float32.

    Raises
    ------
    ModelError
        The graph uses an operator outside :data:`FP16_OPS`.
    """
    onnx = require_onnx()
    from onnx import TensorProto, helper, numpy_helper

    m = onnx.ModelProto()
    m.CopyFrom(model)
    g = m.graph
    unknown = sorted({n.op_type for n in g.node} - FP16_OPS)
    if unknown:
        raise ModelError(f"fp16 conversion: unsupported operator(s) {', '.join(unknown)}")
    for init in g.initializer:
        if init.data_type == TensorProto.FLOAT:
            init.CopyFrom(numpy_helper.from_array(_to_fp16(numpy_helper.to_array(init)), init.name))
    for node in g.node:
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.TENSOR and attr.t.data_type == TensorProto.FLOAT:
                attr.t.CopyFrom(numpy_helper.from_array(_to_fp16(numpy_helper.to_array(attr.t))))
            if node.op_type == "Cast" and attr.name == "to" and attr.i == TensorProto.FLOAT:
                attr.i = TensorProto.FLOAT16
    float_io = lambda vi: vi.type.tensor_type.elem_type == TensorProto.FLOAT  # noqa: E731
    renamed = {vi.name: f"{vi.name}__fp16" for vi in [*g.input, *g.output] if float_io(vi)}
    for node in g.node:
        node.input[:] = [renamed.get(x, x) for x in node.input]
        node.output[:] = [renamed.get(x, x) for x in node.output]
    casts_in = [
        helper.make_node("Cast", [vi.name], [renamed[vi.name]], name=f"{vi.name}_to_fp16",
                         to=TensorProto.FLOAT16)
        for vi in g.input if float_io(vi)
    ]  # fmt: skip
    casts_out = [
        helper.make_node("Cast", [renamed[vi.name]], [vi.name], name=f"{vi.name}_to_fp32",
                         to=TensorProto.FLOAT)
        for vi in g.output if float_io(vi)
    ]  # fmt: skip
    nodes = [*casts_in, *g.node, *casts_out]
    del g.node[:]
    g.node.extend(nodes)
    del g.value_info[:]  # stale float32 annotations; shapes are re-inferred on load
    onnx.checker.check_model(m)
    return m


def card_precision(card: ModelCard) -> str:
    """The precision a card's graph runs in (``fp32`` for cards without the entry)."""
    return str(card.raw.get("precision", {}).get("precision", "fp32"))
