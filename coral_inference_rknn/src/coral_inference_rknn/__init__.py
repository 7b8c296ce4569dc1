"""Rockchip NPU (RKNN) backend for coral-inference (entry point group ``coral_inference.backends``).

Importing this package imports neither ``rknnlite`` nor ``inference``: the board runtime is
loaded on the first ``create_session``.
"""
