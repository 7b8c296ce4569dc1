"""A plugin whose import fails."""

import coral_fixture_module_that_does_not_exist  # noqa: F401
