"""GPU facts through NVML (``nvidia-ml-py``), when it is installed and a GPU is there; nothing otherwise.

Optional: ``pip install 'launch[gpu]'``. Without the package, without a
driver or without a device, :func:`open_gpu` returns None with the reason and
every GPU column is left out. Device 0 is watched (the one torch uses by
default, and the one ``/generate`` runs on).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

SAMPLE_INTERVAL_S = 0.1


@dataclass(kw_only=True)
class Gpu:
    """An initialised NVML handle on device 0."""

    nvml: Any
    handle: Any
    name: str
    memory_mib: float

    def process_memory_mib(self, pids: Iterable[int]) -> dict[str, float]:
        """GPU memory each of ``pids`` holds now (compute processes only); pids without any are left out."""
        wanted = set(pids)
        found: dict[str, float] = {}
        try:
            processes = self.nvml.nvmlDeviceGetComputeRunningProcesses(self.handle)
        except self.nvml.NVMLError:
            return found
        for process in processes:
            used = getattr(process, "usedGpuMemory", None)
            if process.pid in wanted and isinstance(used, int):
                found[str(process.pid)] = round(used / 2**20, 1)
        return found

    def utilisation(self) -> float | None:
        """The device's busy fraction over NVML's last sample period (0-1)."""
        try:
            return float(self.nvml.nvmlDeviceGetUtilizationRates(self.handle).gpu) / 100.0
        except self.nvml.NVMLError:
            return None

    def close(self) -> None:
        """Shut NVML down."""
        try:
            self.nvml.nvmlShutdown()
        except self.nvml.NVMLError:
            pass


def open_gpu() -> tuple[Gpu | None, str]:
    """(the GPU, its description) or (None, why there is none)."""
    try:
        import pynvml
    except ImportError:
        return None, "no GPU (nvidia-ml-py is not installed)"
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        return None, f"no GPU (NVML: {exc})"
    try:
        if pynvml.nvmlDeviceGetCount() < 1:
            pynvml.nvmlShutdown()
            return None, "no GPU (NVML sees no device)"
        handle = pynvml.nvmlDeviceGetHandleByIndex(0)
        name = pynvml.nvmlDeviceGetName(handle)
        memory = pynvml.nvmlDeviceGetMemoryInfo(handle).total / 2**20
    except pynvml.NVMLError as exc:
        pynvml.nvmlShutdown()
        return None, f"no GPU (NVML: {exc})"
    text = name.decode() if isinstance(name, bytes) else str(name)
    return Gpu(nvml=pynvml, handle=handle, name=text, memory_mib=float(memory)), f"{text}, {memory:.0f} MiB"


@dataclass(kw_only=True)
class BusySampler:
    """Samples the GPU's busy fraction every 100 ms on a thread while a step runs; the mean afterwards."""

    gpu: Gpu
    samples: list[float] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> BusySampler:
        def run() -> None:
            while not self._stop.wait(SAMPLE_INTERVAL_S):
                value = self.gpu.utilisation()
                if value is not None:
                    self.samples.append(value)

        self._thread = threading.Thread(target=run, name="launch-gpu-sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)

    @property
    def mean(self) -> float | None:
        """Mean busy fraction, None when nothing was sampled."""
        return round(sum(self.samples) / len(self.samples), 4) if self.samples else None
