"""Frame → tensor: geometry (letterbox, stretch, dynamic), exact inverse mapping, normalisation."""

from __future__ import annotations

import numpy as np
import pytest

from coral_inference.models import InputSpec, Transform, plan_transform, prepare

SOURCES = [(640, 360), (360, 640), (500, 500), (1280, 720), (333, 777), (1, 1), (4096, 17)]
SPECS = {
    "letterbox-center": InputSpec(size=(640, 640)),
    "letterbox-wide": InputSpec(size=(416, 256), align="top-left"),
    "stretch": InputSpec(size=(320, 320), resize="stretch"),
    "dynamic": InputSpec(size=None, stride=32),
    "dynamic-max-side": InputSpec(size=None, stride=32, max_side=512),
    "dynamic-stretch": InputSpec(size=None, resize="stretch"),
}


def random_boxes(rng: np.random.Generator, width: int, height: int, n: int = 50) -> np.ndarray:
    xs = np.sort(rng.uniform(0, width, size=(n, 2)), axis=1)
    ys = np.sort(rng.uniform(0, height, size=(n, 2)), axis=1)
    return np.stack([xs[:, 0], ys[:, 0], xs[:, 1], ys[:, 1]], axis=1).astype(np.float32)


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("spec_name", SPECS)
def test_geometry_and_round_trip(source, spec_name):
    spec = SPECS[spec_name]
    transform = plan_transform(source, spec)
    in_w, in_h = transform.input_size
    new_w, new_h = transform.resized_size
    pad_x, pad_y = transform.pad
    # The resized frame fits inside the input.
    assert 0 <= pad_x and pad_x + new_w <= in_w and 0 <= pad_y and pad_y + new_h <= in_h
    if spec.size is not None:
        assert (in_w, in_h) == spec.size
    else:
        assert in_w % spec.stride == 0 and in_h % spec.stride == 0
        assert in_w - new_w < spec.stride and in_h - new_h < spec.stride
        if spec.max_side:
            assert max(new_w, new_h) <= spec.max_side
    if spec.resize == "letterbox":
        # Aspect ratio is kept up to the rounding of the resized size.
        assert abs(new_w / source[0] - new_h / source[1]) <= 1 / min(source) + 1e-9
        assert new_w == in_w or new_h == in_h or spec.size is None
    else:
        assert (new_w, new_h) == (in_w, in_h)

    rng = np.random.default_rng(0)
    boxes = random_boxes(rng, *source)
    back = transform.to_source(transform.to_model(boxes))
    np.testing.assert_allclose(back, boxes, atol=1e-3)
    # Model-space corners of the resized frame map to the source frame's corners exactly.
    frame = np.array([[pad_x, pad_y, pad_x + new_w, pad_y + new_h]], np.float32)
    np.testing.assert_allclose(transform.to_source(frame), [[0, 0, *source]], atol=1e-4)


def test_to_source_clips_to_the_frame():
    transform = plan_transform((640, 360), InputSpec(size=(640, 640)))
    assert transform.pad == (0, 140)
    boxes = np.array([[-10, 0, 700, 120], [10, 150, 20, 160]], np.float32)
    np.testing.assert_allclose(
        transform.to_source(boxes), [[0, 0, 640, 0], [10, 10, 20, 20]], atol=1e-4
    )


@pytest.mark.parametrize("source", [(640, 360), (360, 640), (500, 500), (1280, 720), (333, 777)])
@pytest.mark.parametrize("spec_name", ["letterbox-center", "letterbox-wide", "stretch", "dynamic"])
def test_pixels_land_where_the_transform_says(source, spec_name):
    """A white rectangle in the frame is found in the tensor at to_model(rectangle)."""
    base = SPECS[spec_name]
    spec = InputSpec(
        size=base.size,
        resize=base.resize,
        align=base.align,
        layout="NHWC",
        color="BGR",
        scale=1,
        dtype="uint8",
        pad_value=0,
    )
    width, height = source
    rect = np.array([width * 0.2, height * 0.3, width * 0.7, height * 0.8]).round()
    image = np.zeros((height, width, 3), np.uint8)
    x1, y1, x2, y2 = rect.astype(int)
    image[y1:y2, x1:x2] = 255
    tensor, transform = prepare(image, spec)
    assert tensor.shape == (1, transform.input_size[1], transform.input_size[0], 3)
    ys, xs = np.nonzero(tensor[0, :, :, 0] >= 128)  # half intensity marks the edges
    found = np.array([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]], np.float32)
    back = transform.to_source(found)[0]
    # Within one model pixel of the truth, in source pixels.
    tolerance = 1.0 / min(transform.scale) + 1e-3
    np.testing.assert_allclose(back, rect, atol=tolerance)


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
@pytest.mark.parametrize("color", ["RGB", "BGR"])
def test_normalisation_layout_colour_and_padding(layout, color):
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, size=(48, 64, 3), dtype=np.uint8)
    spec = InputSpec(
        size=(64, 64),
        layout=layout,
        color=color,
        scale=1 / 255,
        mean=(0.485, 0.456, 0.406),
        std=(0.229, 0.224, 0.225),
        pad_value=114,
    )
    tensor, transform = prepare(image, spec)
    assert tensor.dtype == np.float32
    assert transform.pad == (0, 8) and transform.scale == (1.0, 1.0)
    hwc = tensor[0].transpose(1, 2, 0) if layout == "NCHW" else tensor[0]
    assert hwc.shape == (64, 64, 3)
    pixels = image[..., ::-1] if color == "RGB" else image
    mean, std = np.array(spec.mean), np.array(spec.std)
    expected = (pixels / 255.0 - mean) / std
    np.testing.assert_allclose(hwc[8:56], expected, rtol=1e-5, atol=1e-5)
    pad = (114 / 255.0 - mean) / std
    np.testing.assert_allclose(hwc[:8], np.broadcast_to(pad, (8, 64, 3)), rtol=1e-5)
    np.testing.assert_allclose(hwc[56:], np.broadcast_to(pad, (8, 64, 3)), rtol=1e-5)


def test_identity_normalisation_keeps_raw_pixels():
    image = np.arange(32 * 32 * 3, dtype=np.uint8).reshape(32, 32, 3)
    tensor, _ = prepare(image, InputSpec(size=None, scale=1, color="BGR"))
    np.testing.assert_array_equal(tensor[0], image.transpose(2, 0, 1).astype(np.float32))


def test_grayscale_and_bgra_frames_are_accepted():
    spec = InputSpec(size=(32, 32))
    gray, _ = prepare(np.full((20, 30), 7, np.uint8), spec)
    bgra, _ = prepare(np.full((20, 30, 4), 7, np.uint8), spec)
    np.testing.assert_array_equal(gray, bgra)


@pytest.mark.parametrize(
    "image",
    [np.zeros((10, 10, 3), np.float32), np.zeros((10, 10, 2), np.uint8), [[1, 2, 3]]],
)
def test_bad_frames_are_rejected(image):
    with pytest.raises(ValueError, match="expected"):
        prepare(image, InputSpec(size=(32, 32)))


def test_transform_is_a_plain_value():
    transform = plan_transform((640, 360), InputSpec(size=None, max_side=320))
    assert transform == Transform(
        source_size=(640, 360), input_size=(320, 192), scale=(0.5, 0.5), pad=(0, 6)
    )
