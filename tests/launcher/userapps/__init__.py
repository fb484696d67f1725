"""Small user apps for the ``--app`` tests: good ones and each kind of bad input."""
