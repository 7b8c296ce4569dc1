"""The ``openvino`` backend adapter: ONNX or OpenVINO IR weights compiled for an OpenVINO
device (CPU, GPU, NPU or AUTO)."""

from __future__ import annotations

import importlib.util
import logging
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from coral_inference.runtime.backends import (
    RANK_ACCELERATOR,
    RANK_TUNED_CPU,
    Availability,
    BackendError,
    BackendRank,
)

from .devices import DeviceReport, check_device, openvino_version, ov_message, probe
from .options import OPTIONS_PATH, resolve
from .session import OvSession

if TYPE_CHECKING:
    from coral_inference.models.package import ModelPackage

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install openvino (or pip install ./coral_inference_openvino)"


def openvino_installed() -> bool:
    """Whether the ``openvino`` package is installed: a regular package, not merely some folder
    named ``openvino`` on ``sys.path`` (a namespace package that has no ``Core``)."""
    spec = importlib.util.find_spec("openvino")
    return spec is not None and spec.origin not in (None, "namespace")


class OpenVinoBackend:
    """Compiles a model package's weights with ``openvino.Core().compile_model``.

    IR weights (``weights.openvino``: ``model.xml`` with ``model.bin`` beside it) are used when
    the package has them, else its ONNX weights (OpenVINO reads ONNX directly). ``openvino``
    itself is imported only when a model is compiled or the devices are probed.
    """

    name = "openvino"
    #: In order of preference when a package has both.
    formats = ("openvino", "onnx")

    def __init__(self) -> None:
        self._core: Any = None  # one openvino.Core per adapter, made on first use

    def _get_core(self) -> Any:
        if self._core is None:
            import openvino as ov

            self._core = ov.Core()
        return self._core

    def devices(self) -> DeviceReport:
        """OpenVINO's version and the devices it sees (imports ``openvino``)."""
        return probe(self._get_core())

    def availability(self) -> Availability:
        """Cheap: is ``openvino`` importable (the devices are checked when a model loads)."""
        if not openvino_installed():
            return Availability(False, f"openvino is not installed: {INSTALL_HINT}")
        return Availability(True, f"openvino {openvino_version()}")

    def auto_rank(self) -> BackendRank:
        """Under ``backends.preferred: auto``: an accelerator when OpenVINO sees an Intel GPU or
        NPU, else a runtime tuned for this CPU (above onnxruntime's CPU provider)."""
        report = self.devices()
        accelerators = report.accelerators()
        if accelerators:
            names = ", ".join(f"{n} ({report.devices[n]})" for n in accelerators)
            return BackendRank(RANK_ACCELERATOR, f"OpenVINO on {names}")
        cpu = report.devices.get("CPU", "no CPU device")
        return BackendRank(RANK_TUNED_CPU, f"OpenVINO on CPU ({cpu})")

    def diagnostics(self) -> dict[str, str]:
        """The OpenVINO section of ``coral doctor``: version and every device's full name."""
        if not openvino_installed():
            return {"openvino": f"not installed: {INSTALL_HINT}"}
        try:
            report = self.devices()
        except Exception as exc:  # noqa: BLE001 - doctor reports a broken install, never raises
            return {"openvino": openvino_version(), "devices": f"probe failed: {ov_message(exc)}"}
        info = {"openvino": report.version, "devices": ", ".join(report.devices) or "none"}
        for name, full in report.devices.items():
            info[f"device {name}"] = full
        return info

    def create_session(self, package: ModelPackage, options: Mapping[str, Any]) -> OvSession:
        """A compiled model on the package's IR (preferred) or ONNX weights, on ``options``'
        device with its performance hint, requests, cache, precision and threads."""
        settings = resolve(options)
        fmt = next((f for f in self.formats if f in package.formats), self.formats[0])
        weights = package.weights_path(fmt)
        core = self._get_core()
        check_device(settings.device, probe(core))
        config = settings.compile_config()
        if settings.cache_dir is not None:
            try:
                settings.cache_dir.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise BackendError(
                    f"{OPTIONS_PATH}.cache_dir: cannot create {settings.cache_dir} ({exc}); "
                    "give a writable directory or null"
                ) from None
        started = time.perf_counter()
        try:
            compiled = core.compile_model(str(weights), settings.device, config)
        except RuntimeError as exc:
            raise BackendError(
                f"{weights}: OpenVINO {openvino_version()} cannot compile this model for "
                f"{settings.device} ({ov_message(exc)}); is the file a complete, valid "
                f"{'OpenVINO IR' if fmt == 'openvino' else 'ONNX'} model, and does the device "
                f"support these settings ({config})?"
            ) from None
        compile_s = time.perf_counter() - started
        requests = settings.num_requests or _optimal_requests(compiled)
        session = OvSession(compiled, requests, weights=str(weights))
        session.compile_seconds = compile_s
        log.info(
            "openvino: %s %s for %s (%s) in %.0f ms, %s, %d request(s)%s",
            weights.name,
            "loaded from the cache" if session.loaded_from_cache else "compiled",
            settings.device,
            ", ".join(session.devices),
            compile_s * 1000,
            settings.performance_hint,
            requests,
            f", cache {settings.cache_dir}" if settings.cache_dir else "",
        )
        return session


def _optimal_requests(compiled: Any) -> int:
    try:
        return max(1, int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")))
    except (RuntimeError, TypeError, ValueError):
        return 1
