"""``coral serve``: the board's long-running service.

Process layout and where each number comes from:

* **One server process** runs uvicorn (one asyncio loop), inference's ``HttpInterface`` routes
  with the coral runtime initialised first (so local model ids, sinks and patches apply), the
  ``/coral/...`` routes, and inference's stream manager (its TCP request handler and the
  patched health check) on two daemon threads bound to a free loopback port
  (:mod:`~coral_inference.app.serve.manager`).
* **One process per pipeline**, forked by that stream manager as upstream does; the patches
  (recording, metrics, buffer ring) run *there*, so the server never holds those objects.
* **Live frames** cross with a memory-mapped slot file per pipeline
  (:mod:`~coral_inference.app.serve.relay`): each pipeline process writes its newest frame, boxes
  and counters (frames, fps, model latency and end-to-end time over the last 100 frames, its
  recorder's and metric writer's written/dropped/failed counts) with every frame, never waiting
  for a reader. We do not use inference 0.54's ``WEBRTC`` command: it starts a *new* pipeline
  fed by the browser's camera, with a new thread and event loop per offer, not a preview of a
  running pipeline.
* **Preview** peers all live on the uvicorn loop (:mod:`~coral_inference.app.preview.hub`, the
  hub ``coral run --preview`` uses too, here fed by the slots): one feed task per watched
  pipeline, a bounded queue per viewer.
* **Pipeline counters** in ``GET /coral/pipelines`` and ``/metrics`` are read from the slots;
  **series** for charts from the metrics store; **recordings** from the recording directory.
* **Restore**: pipelines created over HTTP are rows of a SQLite file
  (``services.serve.state_path``), started again at start-up.
"""
