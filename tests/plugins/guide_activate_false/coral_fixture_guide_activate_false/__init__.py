"""A PluginSpec plugin as the original guide shows (activate_false)."""
