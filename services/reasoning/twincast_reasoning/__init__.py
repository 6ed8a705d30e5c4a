from twincast_reasoning.handlers import SPEC

__all__ = ["SPEC"]
