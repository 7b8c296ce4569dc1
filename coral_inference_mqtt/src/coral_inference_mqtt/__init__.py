"""coral-inference-mqtt: per-pipeline detection events and counts to an MQTT broker, with Home
Assistant discovery, built on the ``register_frame_sinks`` hook (see :mod:`.plugin`)."""
