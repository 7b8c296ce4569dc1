"""Test boundary of the RKNN backend: a stand-in for ``rknnlite.api.RKNNLite`` (no NPU here)."""
