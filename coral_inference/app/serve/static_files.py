"""Where the dashboard's files are (shipped in the wheel as package data)."""

from pathlib import Path

STATIC_DIR = Path(__file__).resolve().parent / "static"
