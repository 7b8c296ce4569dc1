"""coral-inference: run Roboflow ``inference`` on edge chips through explicit plugins.

Importing this package has no side effects; call :func:`init` to load plugins and apply patches.
"""
