"""The page ``coral run --preview`` serves at ``/``: it plays the preview in the browser.

aiortc does not trickle ICE, so the page sends its offer to ``POST /offer`` once candidate
gathering is complete. Its script and style are inline, allowed by their hashes in the page's
Content-Security-Policy (nothing else may run or load on it).
"""

from __future__ import annotations

import base64
import hashlib
import re

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>coral preview</title>
<style>
  body { margin: 0; background: #111; color: #ccc; font: 14px sans-serif; }
  video { display: block; width: 100vw; height: calc(100vh - 2em); object-fit: contain; }
  #status { height: 2em; line-height: 2em; padding: 0 0.5em; }
</style>
</head>
<body>
<video id="video" autoplay muted playsinline></video>
<div id="status">connecting</div>
<script>
const video = document.getElementById("video");
const status = document.getElementById("status");

function show(state) {
  status.textContent = state;
  document.title = state;
}

function gathered(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    pc.addEventListener("icegatheringstatechange", () => {
      if (pc.iceGatheringState === "complete") resolve();
    });
  });
}

async function connect() {
  const pc = new RTCPeerConnection();
  pc.addTransceiver("video", { direction: "recvonly" });
  pc.ontrack = (event) => { video.srcObject = new MediaStream([event.track]); };
  pc.onconnectionstatechange = () => {
    if (pc.connectionState !== "connected") show(pc.connectionState);
  };
  await pc.setLocalDescription(await pc.createOffer());
  await gathered(pc);
  const response = await fetch("/offer", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ sdp: pc.localDescription.sdp, type: pc.localDescription.type }),
  });
  const answer = await response.json();
  if (!response.ok) throw new Error(answer.error || response.statusText);
  await pc.setRemoteDescription(answer);
}

video.addEventListener("playing", () => show("playing"));
connect().catch((error) => show("error: " + error.message));
</script>
</body>
</html>
"""


def _hash_source(text: str) -> str:
    """A CSP source allowing exactly ``text`` inline."""
    digest = hashlib.sha256(text.encode()).digest()
    return f"'sha256-{base64.b64encode(digest).decode()}'"


def _inline(tag: str) -> str:
    """The text of the page's (one) ``<tag>`` element."""
    found = re.search(rf"<{tag}>(.*?)</{tag}>", PAGE, re.DOTALL)
    assert found is not None, tag
    return found.group(1)


#: The page's Content-Security-Policy: its own script and style, requests to this origin.
CSP = (
    f"default-src 'none'; script-src {_hash_source(_inline('script'))}; "
    f"style-src {_hash_source(_inline('style'))}; connect-src 'self'; media-src 'self' blob:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
