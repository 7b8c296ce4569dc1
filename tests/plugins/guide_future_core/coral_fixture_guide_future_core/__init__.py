"""A PluginSpec plugin as the original guide shows (future_core)."""
