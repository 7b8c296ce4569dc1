"""``coral rknn convert``: ONNX package -> RKNN package with rknn-toolkit2, and ``--verify``.

The toolkit pins numpy<2 and torch, so it cannot live with ``inference``: :mod:`.cli` runs in the
user's environment and hands the work to :mod:`.tool` inside the toolkit's own environment
(``coral rknn setup-converter DIR`` creates it).
"""
