"""``coral serve`` refuses, in one line, an inference outside the lines it is tested with."""

from __future__ import annotations

import importlib.util

import pytest

from coral_inference.app.serve.settings import ServeError, check_inference_supported
from coral_inference.patches import TESTED_INFERENCE

pytestmark = pytest.mark.core


@pytest.mark.parametrize("version", ["0.54.1", "1.8.3"])
def test_the_tested_lines_pass(version):
    check_inference_supported(version)


@pytest.mark.parametrize("version", ["0.50.0", "1.9.0", "2.0.0"])
def test_other_lines_are_refused_naming_both_versions(version):
    with pytest.raises(ServeError) as caught:
        check_inference_supported(version)
    message = str(caught.value)
    assert f"installed inference is {version}" in message
    assert f"install 'inference-cpu{TESTED_INFERENCE}'" in message


def test_without_inference_the_error_says_it_is_not_installed():
    if importlib.util.find_spec("inference") is not None:
        pytest.skip("inference is installed here; the tox env 'core' runs this without it")
    with pytest.raises(ServeError, match="inference is not installed"):
        check_inference_supported()
