from twincast_gateway.handlers import SPEC

__all__ = ["SPEC"]
