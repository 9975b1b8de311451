"""The gRPC services (TF Serving API) and the one place errors become statuses."""
