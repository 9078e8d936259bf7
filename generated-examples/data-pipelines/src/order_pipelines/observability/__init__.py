"""Operating the service: Prometheus metrics, OpenTelemetry tracing, and the `doctor` that reads the cluster."""
