"""Request ids, W3C trace context, JSON logs and Prometheus metrics."""
