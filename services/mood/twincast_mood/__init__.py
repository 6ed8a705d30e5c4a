from twincast_mood.handlers import SPEC

__all__ = ["SPEC"]
