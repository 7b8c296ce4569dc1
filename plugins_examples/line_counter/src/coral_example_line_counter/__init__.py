"""Example coral-inference plugin: line crossing counts per video and per line, bounded state."""
