"""A plugin written exactly as the original publishing guide shows (compatible)."""
