"""The HTTP transport for storage and ACS calls: azure-core's pipeline, sending through urllib3 directly.

Why: every message costs about a dozen storage calls and an ACS call, and with azure-core's stock
RequestsTransport a good quarter of each call's CPU goes to the `requests` session around
urllib3 (preparing and merging the request, cookie jars, hooks, wrapping the answer), none
of which storage or ACS uses: `python -m bench send` measured a fifth to a quarter less CPU per
message without it. The SDK clients, their policies (authentication, retries, request ids) and
their models are unchanged: only the last step, putting bytes on the wire, is ours.

Scope, kept small on purpose: a request whose answer is read whole (tables, queues, blob
properties, copies, uploads of bytes, and sending an SMS, which the ACS SDK makes as an
old-style `azure.core.pipeline.transport.HttpRequest`) goes straight to urllib3, and comes back
as the matching kind of response. Anything else, a streamed download, a multipart batch, a body
that is a stream or generator, goes to the stock RequestsTransport this wraps. Errors map to
azure-core's exceptions as RequestsTransport maps them, so the SDKs' retry policies, and the
SMS dispatcher's "may it have been sent?", see the same ones: nothing reached the server is a
ServiceRequestError, an answer lost after the request went out a ServiceResponseError.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, MutableMapping
from typing import Any

import urllib3
from azure.core.exceptions import (
    IncompleteReadError,
    ServiceRequestError,
    ServiceRequestTimeoutError,
    ServiceResponseError,
    ServiceResponseTimeoutError,
)
from azure.core.pipeline.transport import HttpResponse as LegacyHttpResponse
from azure.core.pipeline.transport import HttpTransport, RequestsTransport
from azure.core.rest._http_response_impl import HttpResponseImpl
from azure.core.utils import case_insensitive_dict

#: Connections kept per storage endpoint: one per worker thread that may call at once.
POOL_SIZE = 64
#: Keyword arguments the direct path understands; any other sends the request the stock way.
_DIRECT_OPTIONS = frozenset({"stream", "connection_timeout", "read_timeout", "connection_verify", "connection_cert"})


class BufferedResponse(HttpResponseImpl):
    """An answer read whole: azure-core's response type around urllib3's response."""

    def __init__(self, request: Any, response: urllib3.BaseHTTPResponse, block_size: int) -> None:
        headers = case_insensitive_dict(response.headers)
        super().__init__(
            request=request,
            internal_response=response,
            block_size=block_size,
            status_code=response.status,
            reason=response.reason or "",
            content_type=headers.get("Content-Type"),
            headers=headers,
            stream_download_generator=None,
        )
        self._content = response.data
        self._is_closed = True  # the body is read and the connection back in its pool

    def close(self) -> None:
        """Nothing to release: the connection went back to the pool when the body was read."""
        self._is_closed = True

    def iter_raw(self, **kwargs: Any) -> Iterator[bytes]:
        """The body in blocks (it is already in memory)."""
        return self.iter_bytes(**kwargs)

    def _stream_download(self, pipeline: Any, **kwargs: Any) -> Iterator[bytes]:
        # The older `stream_download` call, for callers that ask a read answer for its stream.
        return self.iter_bytes()


class LegacyBufferedResponse(LegacyHttpResponse):
    """An answer read whole, for an old-style request: what RequestsTransport would return for one."""

    def __init__(self, request: Any, response: urllib3.BaseHTTPResponse, block_size: int) -> None:
        super().__init__(request, response, block_size=block_size)
        self.status_code = response.status
        self.headers = case_insensitive_dict(response.headers)
        self.reason = response.reason or ""
        self.content_type = self.headers.get("Content-Type")
        self._content = response.data

    def body(self) -> bytes:
        """The whole body."""
        return self._content

    def stream_download(self, pipeline: Any, **kwargs: Any) -> Iterator[bytes]:
        """The body in blocks (it is already in memory)."""
        size = self.block_size
        return (self._content[i : i + size] for i in range(0, len(self._content), size))


class DirectTransport(HttpTransport):
    """azure-core transport: buffered REST requests through urllib3, everything else through requests."""

    def __init__(
        self, *, ca_certs: str | None = None, connection_timeout: float | None = None, read_timeout: float | None = None
    ) -> None:
        """`ca_certs`: a CA bundle to trust instead of the usual roots (the SMS emulator's certificate)."""
        # Storage and ACS are reached directly (private endpoints, or the local emulators): no
        # proxy and no netrc, so neither path reads them from the environment.
        ca_certs = ca_certs or None
        config: dict[str, Any] = {"connection_timeout": connection_timeout, "read_timeout": read_timeout}
        if ca_certs:
            config["connection_verify"] = ca_certs
        self._fallback = RequestsTransport(use_env_settings=False, **{k: v for k, v in config.items() if v is not None})
        self._config = self._fallback.connection_config
        if ca_certs is None:
            import certifi  # the CA bundle requests would use, so both paths trust the same roots

            ca_certs = certifi.where()
        self._verify: bool | str = self._config.verify
        self._ca_certs = ca_certs
        # One connection pool per origin (a client talks to one or two), found by the URL's
        # origin: urllib3's PoolManager would parse the URL and build a pool key on every call,
        # a tenth of a call's CPU.
        self._pools: dict[str, urllib3.HTTPConnectionPool] = {}
        self._pools_lock = threading.Lock()

    def __enter__(self) -> DirectTransport:
        return self

    def __exit__(self, *args: Any) -> None:
        # The SDK clients share this transport: one client closing must not close it for all.
        pass

    def open(self) -> None:
        """Nothing to open: connections are made on first use."""

    def close(self) -> None:
        """Drop every pooled connection."""
        with self._pools_lock:
            pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            pool.close()
        self._fallback.close()

    def send(self, request: Any, *, proxies: MutableMapping[str, str] | None = None, **kwargs: Any) -> Any:
        """Send one request; see the module docstring for which path it takes."""
        body = _direct_body(request)
        if body is False or proxies or kwargs.get("stream") or not kwargs.keys() <= _DIRECT_OPTIONS:
            return self._fallback.send(request, proxies=proxies, **kwargs)
        if kwargs.get("connection_verify", self._verify) != self._verify or kwargs.get(
            "connection_cert", self._config.cert
        ):
            return self._fallback.send(request, **kwargs)  # another CA, no checks, or a client certificate
        timeout = urllib3.Timeout(
            connect=kwargs.get("connection_timeout", self._config.timeout),
            read=kwargs.get("read_timeout", self._config.read_timeout),
        )
        try:
            pool, target = self._route(request.url)
            response = pool.urlopen(
                request.method,
                target,
                body=body,
                headers=dict(request.headers),
                timeout=timeout,
                redirect=False,
                retries=False,
                preload_content=True,
                assert_same_host=False,
            )
        except urllib3.exceptions.ConnectTimeoutError as err:
            raise ServiceRequestTimeoutError(err, error=err) from err
        except urllib3.exceptions.ReadTimeoutError as err:
            raise ServiceResponseTimeoutError(err, error=err) from err
        except (
            urllib3.exceptions.NewConnectionError,
            urllib3.exceptions.SSLError,
            urllib3.exceptions.LocationParseError,
        ) as err:
            raise ServiceRequestError(err, error=err) from err
        except urllib3.exceptions.ProtocolError as err:
            # The request went out and the answer broke off: it may have been carried out.
            if "IncompleteRead" in str(err):
                raise IncompleteReadError(err, error=err) from err
            raise ServiceResponseError(err, error=err) from err
        except urllib3.exceptions.HTTPError as err:
            raise ServiceResponseError(err, error=err) from err
        if hasattr(request, "content"):
            return BufferedResponse(request, response, self._config.data_block_size)
        return LegacyBufferedResponse(request, response, self._config.data_block_size)

    def _route(self, url: str) -> tuple[urllib3.HTTPConnectionPool, str]:
        """The connection pool for the URL's origin, and the path and query to ask it for."""
        start = url.find("://") + 3
        end = min((i for i in (url.find("/", start), url.find("?", start)) if i >= 0), default=len(url))
        origin, target = url[:end], url[end:]
        if not target.startswith("/"):
            target = "/" + target  # no path: the root, with any query
        pool = self._pools.get(origin)
        if pool is None:
            with self._pools_lock:
                pool = self._pools.get(origin)
                if pool is None:
                    tls = (
                        {"ca_certs": self._ca_certs, "cert_reqs": "CERT_REQUIRED"}
                        if origin.startswith("https:")
                        else {}
                    )
                    pool = self._pools[origin] = urllib3.connection_from_url(
                        origin, maxsize=POOL_SIZE, block=False, retries=False, **tls
                    )
        return pool, target


def _direct_body(request: Any) -> bytes | None | bool:
    """The request's body as bytes (None for no body), or False when it must go the stock way."""
    if getattr(request, "multipart_mixed_info", None) or request.files:
        return False
    data = request.data
    if data is None or isinstance(data, bytes):
        return data
    if isinstance(data, str):
        return data.encode("utf-8")  # JSON and XML bodies: UTF-8, as their content types say
    return False  # a stream, generator or form: requests knows how to send those
