from twincast_stt.handlers import SPEC

__all__ = ["SPEC"]
