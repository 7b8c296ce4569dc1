"""coral serve on an inference line whose stream manager it does not drive: one clear error."""

from __future__ import annotations

import pytest
from serve_process import inference_supported

pytest.importorskip("inference")

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(inference_supported(), reason="this inference is supported by coral serve"),
]


def test_serve_refuses_with_the_supported_range(coral):
    result = coral("serve", "--port", "0", timeout=180)
    assert result.returncode == 2, result.stdout + result.stderr
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("error:")]
    assert "coral serve drives inference's 0.54-line stream manager" in line
    assert "inference-cpu>=0.54,<1.0" in line
