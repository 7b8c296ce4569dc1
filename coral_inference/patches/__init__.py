"""The built-in patches, each a plugin module registered through the ``coral_inference.patches``
entry points like any third-party patch."""

#: The ``inference`` versions the built-in patches are tested against: the tox matrix runs the
#: 0.54.x line and the newest 1.8.x line.
TESTED_INFERENCE = ">=0.54,<1.9"
