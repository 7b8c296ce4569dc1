import types

import pytest

from coral_inference.runtime import compat, patching
from coral_inference.runtime.config import load_config

pytestmark = pytest.mark.core

target = types.SimpleNamespace(value="original")


class Holder:
    def method(self):
        return "original"


def make_context(version="0.54.1", **patches):
    # plugins=False: these patches are declared by the test, not by an installed plugin.
    config = load_config(env={}, data={"patches": patches}, plugins=False)
    return patching.PatchContext(config, compat.InstalledInference("inference-cpu", version), "cpu")


class ValuePatch(patching.Patch):
    name = "value_patch"
    inference = ">=0.50,<1.0"
    targets = (f"{__name__}:target.value",)

    def install(self, patcher, targets, context):
        assert targets[f"{__name__}:target.value"] == "original"
        patcher.replace(target, "value", "patched")


class MethodPatch(patching.Patch):
    name = "method_patch"
    targets = (f"{__name__}:Holder.method",)

    def install(self, patcher, targets, context):
        patcher.wrap(Holder, "method", lambda original: lambda self: original(self).upper())


@pytest.fixture(autouse=True)
def _revert():
    yield
    patching.revert_all()


def test_apply_once_and_revert_identity():
    original_method = Holder.__dict__["method"]
    first = make_context().apply(ValuePatch())
    again = make_context().apply(ValuePatch())
    method = make_context().apply(MethodPatch())
    assert first.status == again.status == method.status == "applied"
    assert again is first and "already applied" in again.reason
    assert target.value == "patched" and Holder().method() == "ORIGINAL"
    assert patching.revert_all() == ["method_patch", "value_patch"]
    assert target.value == "original"
    assert Holder.__dict__["method"] is original_method


def test_out_of_range_is_skipped_with_reason():
    record = make_context(version="1.8.3").apply(ValuePatch())
    assert record.status == "skipped"
    assert "needs inference>=0.50,<1.0, installed inference is 1.8.3" in record.reason
    assert target.value == "original"


def test_disabled_by_config():
    record = make_context(value_patch=False).apply(ValuePatch())
    assert record.status == "disabled" and target.value == "original"


def test_missing_target_skips_before_changing_anything():
    class Missing(ValuePatch):
        name = "missing"
        targets = (f"{__name__}:target.value", f"{__name__}:Holder.gone")

    record = make_context().apply(Missing())
    assert (
        record.status == "skipped"
        and "'test_patching:Holder' has no attribute 'gone'" in record.reason
    )
    assert target.value == "original"


def test_failing_install_rolls_back():
    class Explodes(ValuePatch):
        name = "explodes"

        def install(self, patcher, targets, context):
            patcher.replace(target, "value", "half")
            raise RuntimeError("boom")

    record = make_context().apply(Explodes())
    assert record.status == "failed" and "boom" in record.reason and "rolled back" in record.reason
    assert target.value == "original"
    assert "explodes" not in patching.applied_patches()


def test_disabling_on_reinit_reverts():
    make_context().apply(ValuePatch())
    record = make_context(value_patch=False).apply(ValuePatch())
    assert record.status == "disabled" and target.value == "original"


def test_revert_all_finishes_oldest_first_then_reverts_newest_first():
    """Wrappers nest in the order patches were applied: the outer one (newest) must close
    after the inner ones, as when a pipeline's join returns; attributes come back LIFO."""
    events = []

    def recording(name):
        class Recording(patching.Patch):
            targets = (f"{__name__}:Holder.method",)

            def install(self, patcher, targets, context):
                patcher.wrap(Holder, "method", lambda original: lambda self: original(self))

            def finish(self):
                events.append(("finish", name))

            def uninstall(self):
                events.append(("uninstall", name))

        Recording.name = name
        return Recording()

    for name in ("inner", "middle", "outer"):
        assert make_context().apply(recording(name)).status == "applied"
    assert patching.revert_all() == ["outer", "middle", "inner"]
    assert events == [
        ("finish", "inner"),
        ("finish", "middle"),
        ("finish", "outer"),
        ("uninstall", "outer"),
        ("uninstall", "middle"),
        ("uninstall", "inner"),
    ]
