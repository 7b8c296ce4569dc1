"""The live WebRTC preview, one implementation for ``coral serve`` and ``coral run --preview``.

* :mod:`~coral_inference.app.preview.source`: where frames come from (a :class:`FrameSource`:
  ``coral serve``'s slot reader, ``coral run``'s buffer_sink ring);
* :mod:`~coral_inference.app.preview.images`: the annotated image a viewer sees;
* :mod:`~coral_inference.app.preview.hub`: every viewer's peer connection, with the limits;
* :mod:`~coral_inference.app.preview.server`: ``coral run --preview``'s own small HTTP server
  (``coral serve`` mounts the hub in its API).
"""
