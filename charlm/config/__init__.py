"""Configuration: the dataclass schema (every default), options, presets, runtime."""
