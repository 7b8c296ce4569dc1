"""Example coral-inference patch: ``render_boxes`` stamps each frame's capture time in UTC."""
