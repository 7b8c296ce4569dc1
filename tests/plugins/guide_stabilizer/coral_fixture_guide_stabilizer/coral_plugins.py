# my_package/coral_plugins.py
from coral_inference.runtime.plugins import PluginSpec

def register_camera_stabilizer():
    def activate(config):
        # 执行依赖导入、打补丁或注册 Workflow block 等
        return True  # True 表示加载成功，可用于 health 检查

    return PluginSpec(
        name="camera_stabilizer",
        activate=activate,
        description="Improve camera stream stability",
        min_core_version="0.0.4",
        min_inference_version="0.9.0",
    )
