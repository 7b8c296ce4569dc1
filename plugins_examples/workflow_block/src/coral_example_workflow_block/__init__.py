"""Example coral-inference plugin adding the ``coral/detection_count@v1`` workflow block."""
