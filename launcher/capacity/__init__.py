"""``launch capacity``: open-loop arrival-rate sweeps that find each profile's knee at a latency target.

:mod:`launcher.capacity.model` is pure (schedules, percentiles from scheduled
times, the knee search, sizing, the ``launch.capacity`` JSON schema);
:mod:`launcher.capacity.engine` sends the load; :mod:`launcher.capacity.runner`
starts profiles and runs the search; :mod:`launcher.capacity.report` renders.
"""
