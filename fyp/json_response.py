"""`JSONBytes`: a FastAPI response for a body that is plain JSON types already, encoded by orjson in one call.

FastAPI's own `ORJSONResponse` did this and is deprecated (FastAPI 0.165 warns on each one made): FastAPI now
encodes through Pydantic when a route declares a response model. The hot routes here (the feed, and the index's
vectors, dots and candidates, which the feed service calls on every feed) return plain dicts and lists of up to
~500 entries with nothing to validate, and a response model would add back the walk over them that these routes
skip (FastAPI's jsonable_encoder walk was most of the index service's CPU per feed, docs/FEED.md). Hence this
subclass of Starlette's `Response`, the same few lines the deprecated class had.

>>> JSONBytes({"ids": ["v1"], "score": 0.5}).body
b'{"ids":["v1"],"score":0.5}'
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

__all__ = ["JSONBytes"]


class JSONBytes(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY)
