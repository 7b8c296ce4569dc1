"""``python -m coral_inference.cli`` runs the ``coral`` command."""

from coral_inference.cli import main

main()
