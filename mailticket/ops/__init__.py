"""For admins: status, metrics, reports, explain, logs, the heartbeat."""
