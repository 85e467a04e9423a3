"""A site of cameras as a service: `srstream serve SITE.toml` and `srstream verify`."""
