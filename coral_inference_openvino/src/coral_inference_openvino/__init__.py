"""OpenVINO backend for coral-inference (entry point group ``coral_inference.backends``)."""
