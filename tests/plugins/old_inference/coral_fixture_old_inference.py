"""An incompatible plugin: version gating must stop it before this module is imported."""

raise RuntimeError("this module must never be imported: its distribution is incompatible")
