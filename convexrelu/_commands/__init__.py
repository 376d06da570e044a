"""Sub-commands of the ``convexrelu`` CLI (one module each) and their shared helpers."""
