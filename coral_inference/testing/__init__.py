"""Test helpers: pytest fixtures for plugin authors, and throwaway local servers.

``pip install coral-inference`` registers :mod:`coral_inference.testing.pytest_plugin` as a
``pytest11`` plugin, so its fixtures (``coral_runtime``, ``coral_plugins``, ``coral_output_dir``,
``coral_sample_model``, ``coral_sample_video``, ``coral_sample_frames``,
``coral_assert_patch_reverts``, ``coral_frame_sink_run``) are there in any test suite. Importing
this package imports nothing else: helpers live in :mod:`.plugins`, :mod:`.patches`,
:mod:`.frame_sinks`, :mod:`.influxdb`.
"""
