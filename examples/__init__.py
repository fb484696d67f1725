"""Example user services for ``launch --app`` and ``launch probe --app`` (not the reference service)."""
