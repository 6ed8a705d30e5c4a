from twincast_tts.handlers import SPEC

__all__ = ["SPEC"]
