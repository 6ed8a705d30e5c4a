"""The gateway's public API: the service, join tokens, and a twin's portrait in the store.

The CLI, the testkit and the benchmarks use these names; everything else in the package is
its own business and may move.
"""

from twincast_gateway.api.tokens import (
    JoinClaims,
    Role,
    TokenError,
    TokenSigner,
    load_or_create_secret,
)
from twincast_gateway.avatar import PortraitError, create_portrait
from twincast_gateway.avatar.faces import (
    NoPortrait,
    get_portrait,
    mouth_box_for,
    put_portrait,
    seed_portrait_from_dir,
)
from twincast_gateway.handlers import SPEC, GatewayService
from twincast_gateway.session.ice import configure_ice
from twincast_gateway.settings import GatewaySettings

__all__ = [
    "SPEC",
    "GatewayService",
    "GatewaySettings",
    "JoinClaims",
    "NoPortrait",
    "PortraitError",
    "Role",
    "TokenError",
    "TokenSigner",
    "configure_ice",
    "create_portrait",
    "get_portrait",
    "load_or_create_secret",
    "mouth_box_for",
    "put_portrait",
    "seed_portrait_from_dir",
]
