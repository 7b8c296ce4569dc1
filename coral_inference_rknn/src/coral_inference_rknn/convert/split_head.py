"""Cut a YOLOv8-style ONNX head before its DFL/concat tail (Rockchip model zoo's layout).

A stock export ends in one ``[1, 4 + nc, N]`` output where box coordinates (hundreds of pixels)
and class scores (0..1) share one tensor, so int8 quantisation with one scale flattens every
score to zero. Cut at the last convolutions of the box branch (``/model.N/cv2.i/cv2.i.2/Conv``)
and the class branch (``/model.N/cv3.i/cv3.i.2/Conv``), each stride gets its own outputs: box
DFL logits ``[1, 64, H, W]``, sigmoid class scores ``[1, nc, H, W]`` and their clipped sum
``[1, 1, H, W]``, which :func:`coral_inference.models.decoders.decode_yolov8_split` decodes.
"""

from __future__ import annotations

import re
from pathlib import Path

_BOX = re.compile(r"^/model\.(\d+)/cv2\.(\d+)/cv2\.\2\.2/Conv$")
_CLS = re.compile(r"^/model\.(\d+)/cv3\.(\d+)/cv3\.\2\.2/Conv$")


def head_convs(model) -> list[tuple[str, str]]:
    """``(box_output, class_output)`` tensor names per stride, or [] if not a YOLOv8 head."""
    box, cls = {}, {}
    for node in model.graph.node:
        if (match := _BOX.match(node.name)) is not None:
            box[int(match.group(2))] = node.output[0]
        elif (match := _CLS.match(node.name)) is not None:
            cls[int(match.group(2))] = node.output[0]
    if not box or set(box) != set(cls):
        return []
    return [(box[i], cls[i]) for i in sorted(box)]


def _opset(model) -> int:
    return max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=13)


def cut_head(source: Path, dest: Path) -> int:
    """Write the split-head model to ``dest``; return the number of strides. Raises ValueError
    when ``source`` has no YOLOv8 head."""
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(source))
    levels = head_convs(model)
    if not levels:
        raise ValueError(f"{source}: no YOLOv8 head (/model.N/cv2.i/cv2.i.2/Conv) to cut")
    graph = model.graph
    opset = _opset(model)
    nodes, outputs, constants = [], [], []
    constants.append(numpy_helper.from_array(np.array(0.0, np.float32), "coral_split_zero"))
    constants.append(numpy_helper.from_array(np.array(1.0, np.float32), "coral_split_one"))
    if opset >= 13:
        constants.append(numpy_helper.from_array(np.array([1], np.int64), "coral_split_axes"))
    for i, (box, cls) in enumerate(levels):
        scores, total, clipped = f"scores_{i}", f"score_sum_raw_{i}", f"score_sum_{i}"
        nodes.append(helper.make_node("Sigmoid", [cls], [scores], name=f"/coral/split/sigmoid{i}"))
        if opset >= 13:
            nodes.append(
                helper.make_node(
                    "ReduceSum",
                    [scores, "coral_split_axes"],
                    [total],
                    keepdims=1,
                    name=f"/coral/split/sum{i}",
                )
            )
        else:
            nodes.append(
                helper.make_node(
                    "ReduceSum",
                    [scores],
                    [total],
                    axes=[1],
                    keepdims=1,
                    name=f"/coral/split/sum{i}",
                )
            )
        nodes.append(
            helper.make_node(
                "Clip",
                [total, "coral_split_zero", "coral_split_one"],
                [clipped],
                name=f"/coral/split/clip{i}",
            )
        )
        outputs += [box, scores, clipped]
    graph.node.extend(nodes)
    graph.initializer.extend(constants)
    del graph.output[:]
    graph.output.extend(
        helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None) for name in outputs
    )
    _prune(graph)
    model = onnx.shape_inference.infer_shapes(model)
    onnx.checker.check_model(model)
    onnx.save(model, str(dest))
    return len(levels)


def _prune(graph) -> None:
    """Drop the nodes and initializers the new outputs no longer need (the old tail)."""
    needed = {output.name for output in graph.output}
    keep = []
    for node in reversed(list(graph.node)):
        if any(name in needed for name in node.output):
            keep.append(node)
            needed.update(name for name in node.input if name)
    keep.reverse()
    del graph.node[:]
    graph.node.extend(keep)
    initializers = [init for init in graph.initializer if init.name in needed]
    del graph.initializer[:]
    graph.initializer.extend(initializers)
    value_info = [info for info in graph.value_info if info.name in needed]
    del graph.value_info[:]
    graph.value_info.extend(value_info)
