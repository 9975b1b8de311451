"""Model management: registry, versions and their lifecycle, validation, repository scanning."""
