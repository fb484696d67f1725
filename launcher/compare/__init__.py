"""``launch compare``: did a change make serving worse? A regression verdict between two runs.

:mod:`launcher.compare.load` reads either file (probe, app probe or capacity
result, each by its own reader); :mod:`launcher.compare.rules` decides whether
the two can be compared and what changed; :mod:`launcher.compare.model` holds
the typed result and its exit code; :mod:`launcher.compare.render` prints it.
"""
