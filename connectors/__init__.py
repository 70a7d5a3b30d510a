"""Edges of the service: files in and out, and (later) the HTTP gateway, broker launcher and sinks."""
