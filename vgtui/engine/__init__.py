"""The torch side: data, models, toggles, telemetry, diagnosis and the training session."""
