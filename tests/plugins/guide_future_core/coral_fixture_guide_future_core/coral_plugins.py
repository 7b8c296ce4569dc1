# my_package/coral_plugins.py, with a min_core_version no installed coral-inference has.
from coral_inference.runtime.plugins import PluginSpec

def register_guide_future_core():
    def activate(config):
        raise AssertionError("an incompatible plugin must never be activated")

    return PluginSpec(
        name="guide_future_core",
        activate=activate,
        description="Needs a coral-inference from the future",
        min_core_version="99.0",
        min_inference_version="0.9.0",
    )
