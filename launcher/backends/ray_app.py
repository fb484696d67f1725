"""The reference service as a Ray Serve deployment (imported in the driver and by ``serve deploy``).

The app is built *inside* each replica by a builder function: a FastAPI app
with Gradio mounted cannot be pickled, so ``@serve.ingress(app)`` with a
built app fails; ``serve.ingress`` given a plain function calls it at replica
start. The builder is :func:`launcher.asgi.create_app`, what every other
backend's workers call: the service in the attribution middleware, reporting
``READY`` (with the replica's pid) to the launcher's notify socket from its
lifespan, which Serve runs in the replica.
"""

from __future__ import annotations

from typing import Any

from ray import serve

from launcher.asgi import create_app
from launcher.backends.ray_config import DEPLOYMENT_NAME

LaunchService: Any = serve.deployment(name=DEPLOYMENT_NAME)(serve.ingress(create_app)())
"""The deployment: options (replicas, CPUs, max_ongoing_requests) come from the profile or the config file."""

app: Any = LaunchService.bind()
"""The application ``serve deploy`` imports (``launcher.backends.ray_app:app``); the config sets its options."""
