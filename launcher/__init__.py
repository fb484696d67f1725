"""launch: which server set-up for a model service behaves the way you think.

The library behind the ``launch`` command: embedded server backends
(:mod:`launcher.backends`), serving a profile (:mod:`launcher.server`), the
probe and its verdicts. Library code raises :class:`launcher.errors.LaunchError`;
only :mod:`launcher.cli` turns errors into exit codes.
"""

__version__ = "0.1.0"
