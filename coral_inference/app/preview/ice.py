"""The STUN/TURN servers of ``services.webrtc.ice_servers`` as aiortc takes them."""

from __future__ import annotations

from aiortc import RTCIceServer
from aiortc.rtcicetransport import parse_stun_turn_uri


def ice_server(url: str) -> RTCIceServer:
    """A STUN/TURN URL as an RTCIceServer; TURN credentials go in it as
    ``turn:USER:PASSWORD@HOST[:PORT][?transport=tcp]``."""
    scheme, _, rest = url.partition(":")
    username = credential = None
    if "@" in rest:
        login, _, rest = rest.rpartition("@")
        username, _, credential = login.partition(":")
    bare = f"{scheme}:{rest}"
    try:
        parse_stun_turn_uri(bare)
    except ValueError as error:
        raise ValueError(f"ICE server {url!r} is not a stun:/turn: URL ({error})") from None
    return RTCIceServer(urls=bare, username=username, credential=credential)
