"""A local model package served by inference's own HTTP API: offline, no API key."""

import base64

import pytest

import coral_inference

pytestmark = pytest.mark.integration


@pytest.fixture
def client(tmp_path, monkeypatch):
    pytest.importorskip("fastapi.testclient")
    from coral_inference.models.sample import build_sample_package

    package = build_sample_package(tmp_path / "centerface")
    monkeypatch.delenv("ROBOFLOW_API_KEY", raising=False)
    monkeypatch.delenv("API_KEY", raising=False)
    # HttpInterface mounts these static folders relative to the working directory.
    for static in ("inference/landing/out/static", "inference/landing/out/_next/static"):
        (tmp_path / static).mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    coral_inference.init(
        {"plugins": {"only": ["onnx", "local_models"]}, "models": {"faces": str(package.root)}}
    )
    from fastapi.testclient import TestClient
    from inference.core.interfaces.http.http_api import HttpInterface
    from inference.core.managers.base import ModelManager
    from inference.core.registries.roboflow import RoboflowModelRegistry
    from inference.models.utils import ROBOFLOW_MODEL_TYPES

    manager = ModelManager(RoboflowModelRegistry(ROBOFLOW_MODEL_TYPES))
    yield TestClient(HttpInterface(manager).app)
    coral_inference.shutdown()


def test_object_detection_endpoint_uses_the_local_package(client):
    import cv2
    from skimage import data

    from coral_inference.models.sample import ASTRONAUT_FACE_XYXY

    image = data.astronaut()[..., ::-1]
    encoded = base64.b64encode(cv2.imencode(".jpg", image)[1].tobytes()).decode()
    response = client.post(
        "/infer/object_detection",
        json={
            "model_id": "faces",
            "image": {"type": "base64", "value": encoded},
            "confidence": 0.5,
        },
    )
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    assert len(predictions) == 1 and predictions[0]["class"] == "face"
    x1, y1, x2, y2 = ASTRONAUT_FACE_XYXY
    assert abs(predictions[0]["x"] - (x1 + x2) / 2) < 8
    assert abs(predictions[0]["y"] - (y1 + y2) / 2) < 8
