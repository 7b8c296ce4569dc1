# my_package/workflow_plugins.py: the guide's second entry point ("custom_block"), same style.
from coral_inference.runtime.plugins import PluginSpec

#: What each activate(config) call received (the tests read it; a real plugin would not).
ACTIVATIONS = []

def register_block():
    def activate(config):
        ACTIVATIONS.append(config)
        return True

    return PluginSpec(
        name="custom_block",
        activate=activate,
        description="A custom workflow block",
        min_core_version="0.0.4",
        min_inference_version="0.9.0",
    )
