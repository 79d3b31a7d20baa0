"""OpenCIC: an open, self-hostable Clova Interface Connect implementation."""
__version__ = "0.1.0"
