import pytest
from packaging.version import Version

from coral_inference.runtime import compat

pytestmark = pytest.mark.core


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0.54.1", "0.54.1"),
        ("1.8.3rc1", "1.8.3rc1"),
        ("v0.54", "0.54"),
        ("1.2.3-custom+build.7", "1.2.3"),
        ("0.9.23.post1", "0.9.23.post1"),
    ],
)
def test_parse_version_is_lenient(text, expected):
    assert compat.parse_version(text) == Version(expected)


def test_parse_version_gives_none_for_garbage():
    assert compat.parse_version("unknown") is None


def test_check_range():
    assert compat.check_range("0.54.1", ">=0.50,<1.0").ok
    outside = compat.check_range("1.8.3", ">=0.50,<1.0")
    assert not outside.ok and "1.8.3" in outside.reason and "<1.0" in outside.reason
    assert compat.check_range("1.2.3-custom", ">=1.2").ok
    assert compat.check_range("dev-build", ">=1.0").ok  # unparseable: not blocked, but said
    assert "not checked" in compat.check_range("dev-build", ">=1.0").reason
    assert not compat.check_range(None, ">=1.0").ok
    assert not compat.check_range("1.0", ">=>1").ok
    assert compat.check_range("1.0", "").ok


def test_gated_requirements_skip_extras_and_unrelated():
    reqs = compat.gated_requirements(
        ["numpy>=1", "inference-cpu>=0.50", "coral-inference>=0.1", 'inference-gpu; extra == "gpu"']
    )
    assert [str(r) for r in reqs] == ["inference-cpu>=0.50", "coral-inference>=0.1"]


def test_installed_inference_reads_metadata_without_import():
    import importlib.util
    import sys

    if importlib.util.find_spec("inference") is None:
        pytest.skip("no inference installed (tox env 'core')")

    sys.modules.pop("inference", None)
    info = compat.installed_inference()
    assert info.installed and info.distribution in compat.INFERENCE_DISTRIBUTIONS
    assert "inference" not in sys.modules


def test_import_object_names_what_is_missing():
    assert compat.import_object("os.path:join") is __import__("os").path.join
    assert compat.import_object("collections:OrderedDict.fromkeys")
    with pytest.raises(ImportError, match="module 'no_such_module_x' not found"):
        compat.import_object("no_such_module_x:thing")
    with pytest.raises(ImportError, match="'os.path' has no attribute 'nope'"):
        compat.import_object("os.path:nope")
    with pytest.raises(ImportError, match="'os.path:join' has no attribute 'deeper'"):
        compat.import_object("os.path:join.deeper")
