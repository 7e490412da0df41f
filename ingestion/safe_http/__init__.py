"""Fetching user-given URLs without letting them reach inside our network (SSRF).

Layers, each enough on its own for the case it covers:
- `check_url` (no network, safe in a web thread): scheme, user info, port (80, 443 and
  TWIN_CRAWL_ALLOWED_PORTS; a port past 65535 is refused in words, not a 500) and host
  names that are IP literals, legacy numeric forms ("2130706433", "0x7f.1") included.
- At connect time the host is resolved with a timeout (TWIN_DNS_TIMEOUT) in a helper
  thread, every address is vetted (loopback, private, link-local, reserved, multicast,
  and IPv4 hidden inside IPv6: mapped, compatible, 6to4, Teredo, NAT64), and the socket
  connects to the vetted address itself: no second lookup can rebind the name. TLS
  still verifies the certificate against the host name.
- The address each socket actually reached is checked again (belt and braces).
- Each fetch has a hard wall-clock deadline: a watchdog shuts its sockets when it
  passes, so a server that drips its headers a byte at a time cannot hold a worker;
  connection attempts share it (a name with 20 silent addresses is not 20 timeouts).
- A crawl run keeps its connections open between requests (`FetchSession`, HTTP
  keep-alive): a kept socket is one `connect_vetted` opened, still bound to the
  address that was vetted, so reuse skips no check; the watchdog of every fetch
  watches all of the session's sockets, kept ones included.
- Size is counted on the raw bytes from the wire and on the decoded bytes (gzip bombs),
  redirects are capped and re-checked hop by hop, proxy variables are ignored.

Hosts named in TWIN_CRAWL_ALLOWED_HOSTS skip the address checks (tests serve pages on
loopback; an intranet blog may be listed explicitly), never the port check: their ports
must be 80, 443 or in TWIN_CRAWL_ALLOWED_PORTS, or a tenant could reach the app itself.

By role: addresses.py vets (no network, then at connect time), connections.py opens,
pools and watches sockets, fetching.py makes one GET; this face hands their names on.
"""

from .addresses import address_refusal, check_url, resolve, vetted_addresses
from .connections import FetchSession
from .errors import FetchError, HTTPStatusError
from .fetching import ROBOTS_AGENT, TEXT_CONTENT_TYPES, USER_AGENT, FetchedPage, decode_body, fetch

__all__ = [
    "ROBOTS_AGENT",
    "TEXT_CONTENT_TYPES",
    "USER_AGENT",
    "FetchError",
    "FetchSession",
    "FetchedPage",
    "HTTPStatusError",
    "address_refusal",
    "check_url",
    "decode_body",
    "fetch",
    "resolve",
    "vetted_addresses",
]
