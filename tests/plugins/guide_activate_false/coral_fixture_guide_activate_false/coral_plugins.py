# my_package/coral_plugins.py, whose activate reports that it could not start.
from coral_inference.runtime.plugins import PluginSpec

def register_guide_activate_false():
    def activate(config):
        # e.g. only on some platforms; False tells the runtime it did not load
        return config.get("platform") == "rk3588"

    return PluginSpec(
        name="guide_activate_false",
        activate=activate,
        description="Refuses to start off an RK3588",
        min_core_version="0.0.4",
        min_inference_version="0.9.0",
    )
