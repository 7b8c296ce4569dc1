"""ONNX Runtime backend for coral-inference (registered through ``coral_inference.backends``)."""
