"""Model management: registry, versions and their lifecycle, repository scanning (requests: `ovms_rs.request`)."""
