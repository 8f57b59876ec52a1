"""Service probes run on open ports: banners, HTTP, TLS, and reverse DNS for the host."""
