"""A YOLOv8-shaped ONNX model built with ``onnx.helper`` (no weights downloaded).

Per stride 8/16/32 a strided convolution averages each colour channel over the cell; the box
branch ends in ``/model.22/cv2.i/cv2.i.2/Conv`` (64 DFL logits) and the class branch in
``/model.22/cv3.i/cv3.i.2/Conv`` (red and green squares score high), and the tail is Ultralytics'
(concat, DFL softmax expectation, anchors and strides, sigmoid) ending in one
``[1, 4 + nc, N]`` output. :func:`square_images` writes images of red and green squares.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

SIZE = 160
STRIDES = (8, 16, 32)
CLASSES = ["red", "green"]
BINS = 16


def build_yolov8_like(path: Path, seed: int = 0) -> Path:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    nc = len(CLASSES)
    nodes, inits = [], []

    def const(name, array):
        inits.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    levels, anchors, strides = [], [], []
    for i, s in enumerate(STRIDES):
        pool = np.zeros((4, 3, s, s), np.float32)
        for k in range(3):
            pool[k, k] = 1 / (s * s)
        pool[3] = 1 / (3 * s * s)
        nodes.append(
            helper.make_node(
                "Conv",
                ["images", const(f"w_feat{i}", pool)],
                [f"feat{i}"],
                strides=[s, s],
                kernel_shape=[s, s],
                name=f"/model.{i}/conv/Conv",
            )
        )
        nodes.append(
            helper.make_node("Relu", [f"feat{i}"], [f"act{i}"], name=f"/model.{i}/act/Relu")
        )
        wb = rng.normal(0, 1.5, (64, 4, 1, 1)).astype(np.float32)
        bb = rng.normal(0, 1.0, 64).astype(np.float32)
        nodes.append(
            helper.make_node(
                "Conv",
                [f"act{i}", const(f"wb{i}", wb), const(f"bb{i}", bb)],
                [f"box{i}"],
                name=f"/model.22/cv2.{i}/cv2.{i}.2/Conv",
            )
        )
        wc = np.array([[12, -12, -12, 0], [-12, 12, -12, 0]], np.float32).reshape(nc, 4, 1, 1)
        bc = np.full(nc, -4.0, np.float32)
        nodes.append(
            helper.make_node(
                "Conv",
                [f"act{i}", const(f"wc{i}", wc), const(f"bc{i}", bc)],
                [f"cls{i}"],
                name=f"/model.22/cv3.{i}/cv3.{i}.2/Conv",
            )
        )
        nodes.append(
            helper.make_node(
                "Concat", [f"box{i}", f"cls{i}"], [f"cat{i}"], axis=1, name=f"/model.22/Concat_{i}"
            )
        )
        nodes.append(
            helper.make_node(
                "Reshape",
                [f"cat{i}", const(f"shape{i}", np.array([1, 64 + nc, -1], np.int64))],
                [f"flat{i}"],
                name=f"/model.22/Reshape_{i}",
            )
        )
        grid = SIZE // s
        ys, xs = np.mgrid[0:grid, 0:grid]
        anchors.append(np.stack([xs.ravel() + 0.5, ys.ravel() + 0.5]))
        strides.append(np.full(grid * grid, s, np.float32))
        levels.append(f"flat{i}")
    n = sum(a.shape[1] for a in anchors)
    nodes += [
        helper.make_node("Concat", levels, ["all"], axis=2, name="/model.22/Concat_3"),
        helper.make_node(
            "Split",
            ["all", const("split", np.array([64, nc], np.int64))],
            ["box_all", "cls_all"],
            axis=1,
            name="/model.22/Split",
        ),
        helper.make_node(
            "Reshape",
            ["box_all", const("dfl_shape", np.array([1, 4, BINS, n], np.int64))],
            ["dfl_in"],
            name="/model.22/dfl/Reshape",
        ),
        helper.make_node("Softmax", ["dfl_in"], ["dfl_p"], axis=2, name="/model.22/dfl/Softmax"),
        helper.make_node(
            "Mul",
            ["dfl_p", const("bins", np.arange(BINS, dtype=np.float32).reshape(1, 1, BINS, 1))],
            ["dfl_w"],
            name="/model.22/dfl/Mul",
        ),
        helper.make_node(
            "ReduceSum",
            ["dfl_w", const("axis2", np.array([2], np.int64))],
            ["dist"],
            keepdims=0,
            name="/model.22/dfl/ReduceSum",
        ),
        helper.make_node(
            "Slice",
            [
                "dist",
                const("s0", np.array([0], np.int64)),
                const("s2", np.array([2], np.int64)),
                const("ax1", np.array([1], np.int64)),
            ],
            ["lt"],
            name="/model.22/Slice",
        ),
        helper.make_node(
            "Slice",
            ["dist", "s2", const("s4", np.array([4], np.int64)), "ax1"],
            ["rb"],
            name="/model.22/Slice_1",
        ),
        helper.make_node(
            "Sub",
            [const("anchors", np.concatenate(anchors, 1)[None].astype(np.float32)), "lt"],
            ["x1y1"],
            name="/model.22/Sub",
        ),
        helper.make_node("Add", ["anchors", "rb"], ["x2y2"], name="/model.22/Add"),
        helper.make_node("Add", ["x1y1", "x2y2"], ["csum"], name="/model.22/Add_1"),
        helper.make_node(
            "Div", ["csum", const("two", np.array(2.0, np.float32))], ["c"], name="/model.22/Div"
        ),
        helper.make_node("Sub", ["x2y2", "x1y1"], ["wh"], name="/model.22/Sub_1"),
        helper.make_node("Concat", ["c", "wh"], ["cwh"], axis=1, name="/model.22/Concat_4"),
        helper.make_node(
            "Mul",
            ["cwh", const("strides", np.concatenate(strides)[None, None])],
            ["boxes"],
            name="/model.22/Mul_2",
        ),
        helper.make_node("Sigmoid", ["cls_all"], ["scores"], name="/model.22/Sigmoid"),
        helper.make_node(
            "Concat", ["boxes", "scores"], ["output0"], axis=1, name="/model.22/Concat_5"
        ),
    ]
    graph = helper.make_graph(
        nodes,
        "yolov8-like",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, SIZE, SIZE])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, 4 + nc, n])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def build_yolov8_package(directory: Path):
    """A model package around :func:`build_yolov8_like` (decoder ``yolov8``)."""
    from coral_inference.models.manifest import ModelManifest
    from coral_inference.models.package import write_package

    directory.mkdir(parents=True, exist_ok=True)
    weights = build_yolov8_like(directory / "model.onnx")
    manifest = ModelManifest.from_dict(
        {
            "name": "squares",
            "task": "object-detection",
            "weights": "model.onnx",
            "input": {"size": [SIZE, SIZE], "scale": "1/255", "color": "RGB", "layout": "NCHW"},
            "classes": CLASSES,
            "decoder": {"type": "yolov8"},
            "thresholds": {"confidence": 0.5, "iou": 0.45},
        }
    )
    return write_package(directory, manifest, weights)


def square_images(directory: Path, count: int, seed: int) -> Path:
    """``count`` PNGs of 1-3 red or green squares on a dark, noisy background."""
    import cv2

    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        image = rng.integers(0, 40, (SIZE, SIZE, 3)).astype(np.uint8)
        for _ in range(rng.integers(1, 4)):
            side = int(rng.integers(16, 48))
            x, y = (int(v) for v in rng.integers(0, SIZE - side, 2))
            colour = (0, 0, 230) if rng.random() < 0.5 else (0, 230, 0)  # BGR red / green
            cv2.rectangle(image, (x, y), (x + side, y + side), colour, thickness=-1)
        cv2.imwrite(str(directory / f"{index:03d}.png"), image)
    return directory
